//! The customer checkout (issue #19) in a real browser: Debian's headless Chromium, driven
//! by Playwright's core from npm (`browser/checkout.mjs`), against the real payd, sms-sim,
//! channel-sim and a shop's return page served here. The walk opens the order's link, signs
//! in with the code sms-sim delivered, pays by balance, sees the result and lands on the
//! shop's `return_url`; a second tab paying the same order is told it is paid; a poor
//! balance, an expired order and a declined card are said plainly; a new card pays through
//! channel-sim; axe-core finds no serious accessibility violation. Screenshots of each step
//! are kept in `target/tmp/checkout-shots/`. Then the money is checked through the API, and
//! the card number is looked for (and not found) in payd's log and data files.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::*;
use serde_json::{json, Value};

const PHONE: &str = "+8613800138000";
const CARD: &str = "4111111111111111";

/// The shop's return page: answers every request with a small page and records the paths.
fn shop() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(path) = head.split_whitespace().nth(1) {
                log.lock().unwrap().push(path.to_string());
            }
            let body = "<!doctype html><title>Tea House</title><h1>Back at the shop</h1>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

fn order(p: &Payd, key: &str, otn: &str, amount: &str, expires_in_s: u64, ret: &str) -> Value {
    let r = p.post(
        key,
        "/v1/orders",
        None,
        &json!({"out_trade_no": otn, "amount": amount, "currency": "CNY",
                "description": "两杯茶", "return_url": ret, "expires_in_s": expires_in_s})
        .to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn get(p: &Payd, key: &str, path: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = p.req("GET", path, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../browser")
}

#[test]
fn a_customer_pays_an_order_in_chromium_by_balance_and_by_new_card() {
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "browser/node_modules is missing: scripts/setup.sh test runs `npm ci --prefix browser`"
    );
    let sms = SmsSim::start();
    let sim = Sim::start(&["bank"]);
    let (shop_addr, returns) = shop();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let log = tmp.path().join("payd.log");
    let mut env: Vec<(&str, String)> = sms.env();
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()));
    env.push(("RONGPAY_CHANNEL_TIMEOUT_MS", "2000".to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Payd::start_logging(&dir, &env, &log);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop_m = merchant(&p, r#"{"name":"Tea House","fee_rate":"0"}"#);

    // The customer: the merchant's, with 200.00 in the balance account.
    let r = p.post(
        &shop_m.key,
        "/v1/customers",
        None,
        &json!({"name": "韩梅梅", "phone": PHONE}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let customer = r.json();
    let account = customer["account_id"].as_str().unwrap().to_string();
    let r = p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        &json!({"amount": "200.00"}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));

    let ret = format!("http://{shop_addr}/orders/back");
    let paid = order(&p, &shop_m.key, "tea-1", "88.00", 900, &ret);
    let by_card = order(&p, &shop_m.key, "tea-2", "66.60", 900, &ret);
    let poor = order(&p, &shop_m.key, "tea-3", "150.00", 900, &ret);
    let expired = order(&p, &shop_m.key, "tea-4", "10.00", 1, &ret);
    let url = |o: &Value| o["checkout_url"].as_str().unwrap().to_string();
    assert!(url(&paid).starts_with(&format!("http://{}/checkout/ord_", p.addr)));
    eventually(10, "the short order expires", || {
        get(
            &p,
            &shop_m.key,
            &format!("/v1/orders/{}", expired["id"].as_str().unwrap()),
        )["status"]
            == "closed"
    });

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("checkout-shots");
    let _ = std::fs::remove_dir_all(&shots);
    let walk = json!({
        "balance_url": url(&paid), "card_url": url(&by_card), "poor_url": url(&poor),
        "expired_url": url(&expired), "return_url": ret, "phone": PHONE,
        "sms_sim": format!("http://{}", sms.addr),
        "channel_sim": format!("http://{}", sim.control), "channel": "bank",
        "card_number": CARD, "shots": shots,
    });
    let out = Command::new("node")
        .arg(browser_dir().join("checkout.mjs"))
        .env("WALK", walk.to_string())
        .current_dir(browser_dir())
        .output()
        .expect("node (Debian's nodejs) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the walk failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    for want in [
        "balance-order-opened",
        "balance-code-sent",
        "balance-signed-in",
        "balance-paid",
        "second-tab-already-paid",
        "balance-returned-to-shop",
        "insufficient-funds",
        "expired-order",
        "card-declined",
        "card-paid",
        "card-returned-to-shop",
        "axe",
    ] {
        assert!(names.contains(&want), "step {want} missing from {names:?}");
    }
    for s in steps.iter().filter(|s| s["screenshot"].is_string()) {
        let file = PathBuf::from(s["screenshot"].as_str().unwrap());
        let png = std::fs::read(&file).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", file.display());
    }
    let pages: Vec<String> = returns
        .lock()
        .unwrap()
        .iter()
        .filter(|p| *p != "/favicon.ico")
        .cloned()
        .collect();
    assert_eq!(
        pages,
        ["/orders/back", "/orders/back"],
        "the shop's return page was reached twice"
    );

    // The money, through the API: the balance order paid once (the second tab moved
    // nothing), the poor one failed and stays open, the card one paid through channel-sim.
    let o = get(
        &p,
        &shop_m.key,
        &format!("/v1/orders/{}", paid["id"].as_str().unwrap()),
    );
    assert_eq!(
        (&o["status"], &o["attempts"]),
        (&json!("paid"), &json!(1)),
        "{o}"
    );
    assert_eq!(p.balance(&account), "112.00");
    let o = get(
        &p,
        &shop_m.key,
        &format!("/v1/orders/{}", poor["id"].as_str().unwrap()),
    );
    assert_eq!(
        (&o["status"], &o["attempts"]),
        (&json!("open"), &json!(1)),
        "{o}"
    );
    let o = get(
        &p,
        &shop_m.key,
        &format!("/v1/orders/{}", by_card["id"].as_str().unwrap()),
    );
    assert_eq!(
        (&o["status"], &o["attempts"]),
        (&json!("paid"), &json!(2)),
        "{o}"
    );
    let pay = get(
        &p,
        &shop_m.key,
        &format!("/v1/payments/{}", o["payment_id"].as_str().unwrap()),
    );
    assert_eq!(
        (
            &pay["payment_method"]["type"],
            &pay["payment_method"]["last4"]
        ),
        (&json!("bank_card"), &json!("1111"))
    );
    let charges = sim.records("bank");
    let statuses: Vec<&str> = charges
        .iter()
        .filter_map(|c| c["status"].as_str())
        .collect();
    assert_eq!(statuses, ["declined", "succeeded"], "{charges:?}");
    assert_eq!(p.balance(&shop_m.account), "154.60");

    // The card number went to the tokenizer only: not in payd's log, not in its files. A
    // clean stop, so that the log writer has written every line.
    assert!(p.terminate().success());
    let logged = std::fs::read(&log).unwrap();
    assert!(!logged.is_empty());
    assert!(!contains(&logged, CARD), "the card number is in payd's log");
    for (name, bytes) in files(&dir) {
        assert!(!contains(&bytes, CARD), "the card number is in {name}");
    }
}

/// The checkout's forms over plain HTTP, with the cookie kept by hand.
struct Visitor<'a> {
    p: &'a Payd,
    cookie: String,
}

impl Visitor<'_> {
    fn go(&mut self, method: &str, path: &str, form: &str) -> Response {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        let sent = self.cookie.clone();
        if !sent.is_empty() {
            headers.push(("Cookie", &sent));
        }
        let r = self.p.req(method, path, &headers, form.as_bytes());
        if let Some(set) = r.header("set-cookie") {
            self.cookie = set.split(';').next().unwrap().to_string();
        }
        r
    }
}

fn csrf_of(r: &Response) -> String {
    let html = String::from_utf8_lossy(&r.body).to_string();
    let mark = r#"name="csrf" value=""#;
    let at = html.find(mark).unwrap() + mark.len();
    html[at..at + 32].to_string()
}

#[test]
fn a_coupon_is_offered_and_redeemed_at_the_checkout_and_forms_without_the_token_change_nothing() {
    let sms = SmsSim::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = sms.env();
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Payd::start_in(&tmp.path().join("data"), &env);
    let shop = merchant(&p, r#"{"name":"Tea House","fee_rate":"0"}"#);
    let r = p.post(
        &shop.key,
        "/v1/customers",
        None,
        &json!({"name": "韩梅梅", "phone": PHONE}).to_string(),
    );
    let account = r.json()["account_id"].as_str().unwrap().to_string();
    p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        &json!({"amount": "100.00"}).to_string(),
    );
    let s = p.post(
        ADMIN,
        "/v1/coupon_stocks",
        None,
        &json!({"name": "满20减5", "type": "fixed", "amount": "5.00", "min_order": "20.00",
                "budget": "50.00", "max_coupons": 10, "valid_until": "2099-01-01T00:00:00Z",
                "funded_by": "platform"})
        .to_string(),
    );
    assert_eq!(s.status, 201, "{:?}", String::from_utf8_lossy(&s.body));
    let sid = s.json()["id"].as_str().unwrap().to_string();
    let c = p.post(
        ADMIN,
        &format!("/v1/coupon_stocks/{sid}/coupons"),
        None,
        &json!({ "account_id": account }).to_string(),
    );
    let coupon = c.json()["id"].as_str().unwrap().to_string();
    let r = p.post(
        &shop.key,
        "/v1/orders",
        None,
        &json!({"out_trade_no": "tea-c", "amount": "30.00", "currency": "CNY"}).to_string(),
    );
    let order = r.json()["id"].as_str().unwrap().to_string();
    let page = format!("/checkout/{order}");

    let mut v = Visitor {
        p: &p,
        cookie: String::new(),
    };
    let r = v.go("GET", &page, "");
    assert_eq!(r.status, 200);
    let token = csrf_of(&r);
    // Without the page's token, or from another site, nothing is sent.
    let r = v.go(
        "POST",
        &format!("{page}/code"),
        "csrf=00&phone=%2B8613800138000",
    );
    assert_eq!(r.status, 403);
    assert!(sms.messages(Some(PHONE)).is_empty(), "no code was sent");
    let r = p.req(
        "POST",
        &format!("{page}/code"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &v.cookie),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        format!("csrf={token}&phone=%2B8613800138000").as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert!(sms.messages(Some(PHONE)).is_empty(), "no code was sent");
    // Signed in: the coupon is offered with its discount.
    let r = v.go(
        "POST",
        &format!("{page}/code"),
        &format!("csrf={token}&phone=%2B8613800138000"),
    );
    assert_eq!(r.status, 303);
    let code = sms.last_code(PHONE);
    let r = v.go(
        "POST",
        &format!("{page}/signin"),
        &format!("csrf={token}&code={code}"),
    );
    assert_eq!(r.status, 303);
    let r = v.go("GET", &page, "");
    let html = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        html.contains(&coupon) && html.contains("满20减5 (−5.00)"),
        "{html}"
    );
    assert!(html.contains("Available: CNY 100.00"), "{html}");
    // Paid with it: 25.00 from the balance, the order paid with the coupon's payment.
    let r = v.go(
        "POST",
        &format!("{page}/pay"),
        &format!("csrf={token}&method=balance&coupon_id={coupon}"),
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(p.balance(&account), "75.00");
    let auth = format!("Bearer {}", shop.key);
    let o = p
        .req(
            "GET",
            &format!("/v1/orders/{order}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(o["status"], "paid");
    let pay = p
        .req(
            "GET",
            &format!("/v1/payments/{}", o["payment_id"].as_str().unwrap()),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(
        (&pay["coupon_id"], &pay["discount"], &pay["paid_amount"]),
        (&json!(coupon), &json!("5.00"), &json!("25.00"))
    );
    // The merchant gets the full 30.00 (the platform funds the coupon).
    assert_eq!(p.balance(&shop.account), "30.00");
    // The signed-in customer sees the next order's ways to pay; a forged session cookie
    // is a new, signed-out session.
    let r = p.post(
        &shop.key,
        "/v1/orders",
        None,
        &json!({"out_trade_no": "tea-d", "amount": "1.00", "currency": "CNY"}).to_string(),
    );
    let next = format!("/checkout/{}", r.json()["id"].as_str().unwrap());
    let r = v.go("GET", &next, "");
    assert!(String::from_utf8_lossy(&r.body).contains("Signed in as"));
    let mut forged = Visitor {
        p: &p,
        cookie: format!("rp_checkout={}", "ab".repeat(80)),
    };
    let r = forged.go("GET", &next, "");
    assert_eq!(r.status, 200);
    let html = String::from_utf8_lossy(&r.body).to_string();
    assert!(!html.contains("Signed in as") && html.contains("Sign in to pay"));
}
