//! Customers and KYC (issue #18, `../shared/FUNDS.md` "Customers and KYC") against the real
//! payd, sms-sim and identity-sim: resident id numbers classified by GB 11643 and the birth
//! date; phone verification by one-time code; identity verification at the identity
//! service (match, mismatch, outage, latency); each level's limits enforced before money
//! moves, durable across a kill -9, reset at the business-date switch and exact under 200
//! concurrent payments.

use crate::common::*;
use serde_json::{json, Value};

/// Limits of unverified customers in these tests (level 0).
const LIMITS_0: &str = "per_payment=50.00,per_day=100.00,per_year=250.00,balance_cap=300.00";

fn env_with(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()),
        ("RONGPAY_KYC_LIMITS_0", LIMITS_0.to_string()),
    ];
    env.extend(extra.iter().cloned());
    env
}

fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Payd {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Payd::start_in(dir, &env)
}

fn create(p: &Payd, token: &str, body: Value) -> Response {
    p.post(token, "/v1/customers", None, &body.to_string())
}

fn customer(p: &Payd, token: &str, id: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = p.req(
        "GET",
        &format!("/v1/customers/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn resident_id_numbers_are_classified_by_checksum_birth_date_and_form() {
    let p = Payd::start();
    // (number, valid): the GB 11643 example, numbers of several provinces (Macao 82
    // too), a leap day, check characters 0–9 and X, and what must be refused.
    let table: [(&str, bool, &str); 24] = [
        ("11010519491231002X", true, "the standard's own example"),
        ("44030419900307123X", true, "Shenzhen, check X"),
        ("320582198506150413", true, "Jiangsu"),
        (
            "510107200002290037",
            true,
            "born on 2000-02-29 (a leap day)",
        ),
        ("650102197711084564", true, "Xinjiang"),
        ("820000199901010016", true, "Macao"),
        ("310115201007010521", true, "Shanghai, born 2010"),
        ("210202196612310887", true, "Liaoning"),
        (
            "11010519491231002x",
            true,
            "a lower-case final x reads as X",
        ),
        ("110105194912310021", false, "check character 1 for X"),
        ("440304199003071230", false, "check character 0 for X"),
        ("320582198506150414", false, "check character off by one"),
        ("110105194902300020", false, "born on February 30"),
        (
            "110105199902290021",
            false,
            "born on 1999-02-29 (not a leap year)",
        ),
        ("110105194913010029", false, "born in month 13"),
        ("110105194901000026", false, "born on day 0"),
        ("110105209912310029", false, "born in 2099 (after today)"),
        ("110105189912310023", false, "born in 1899"),
        ("990105194912310023", false, "province 99"),
        ("11010519491231002", false, "17 characters"),
        ("11010519491231002X1", false, "19 characters"),
        ("110105491231002", false, "the 15-digit format of 1985"),
        ("1101051949123100AX", false, "a letter in the body"),
        ("1101051949123X0021", false, "X before the end"),
    ];
    let mut valid = 0;
    for (i, (number, ok, why)) in table.iter().enumerate() {
        let r = create(
            &p,
            ADMIN,
            json!({"name": "韩梅梅", "phone": format!("+86138001380{i:02}"), "id_number": number}),
        );
        if *ok {
            valid += 1;
            assert_eq!(r.status, 201, "{number} ({why}): {:?}", r.json());
            let masked = r.json()["id_number"].as_str().unwrap().to_string();
            let upper = number.to_ascii_uppercase();
            assert_eq!(
                masked,
                format!("{}***********{}", &upper[..3], &upper[14..]),
                "{why}"
            );
            assert_eq!(r.json()["kyc_level"], 0);
            assert!(!String::from_utf8_lossy(&r.body).contains(&upper[3..14]));
        } else {
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (400, "invalid_id_number"),
                "{number} ({why}): {:?}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.json()["error"]["param"], "id_number");
            assert!(
                !String::from_utf8_lossy(&r.body).contains(number),
                "the error does not echo the number"
            );
        }
    }
    println!(
        "{} id numbers: {valid} valid, {} refused (invalid_id_number)",
        table.len(),
        table.len() - valid
    );
    // Other malformed customers change nothing.
    for (body, param) in [
        (json!({"name": " ", "phone": "+8613800138000"}), "name"),
        (json!({"name": "x", "phone": "13800138000"}), "phone"),
        (
            json!({"name": "x", "phone": "+8613800138000", "id_number": 110105194912310021u64}),
            "id_number",
        ),
    ] {
        let r = create(&p, ADMIN, body.clone());
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["param"], param, "{body}");
        // A number sent as a JSON number is refused without being quoted back.
        assert!(!String::from_utf8_lossy(&r.body).contains("110105194912310021"));
    }
    let list = p.admin("GET", "/v1/customers?limit=100", "").json();
    assert_eq!(list["data"].as_array().unwrap().len(), valid);
}

#[test]
fn phone_then_identity_verification_raise_the_level() {
    let sms = SmsSim::start();
    let idv = IdentitySim::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut extra = sms.env();
    extra.extend(idv.env());
    let p = start(&tmp.path().join("data"), &env_with(&extra));
    let shop = merchant(&p, r#"{"name":"shop"}"#);
    let other = merchant(&p, r#"{"name":"other"}"#);
    let phone = "+8613912345678";
    let r = create(
        &p,
        &shop.key,
        json!({"name": "李雷", "phone": phone, "id_number": "11010519491231002X"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let c = r.json();
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["merchant_id"], json!(shop.id));
    assert_eq!(c["phone"], "+86139****5678");
    assert_eq!(c["limits"]["per_day"], "100.00");
    // Another merchant does not see it; the operator does.
    let auth = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/customers/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(customer(&p, ADMIN, &id)["name"], "李雷");
    let mine = |key: &str| {
        let auth = format!("Bearer {key}");
        p.req("GET", "/v1/customers", &[("Authorization", &auth)], b"")
            .json()["data"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((mine(&shop.key), mine(&other.key)), (1, 0));

    // Identity before phone: refused.
    let verify = |body: Value| {
        p.post(
            &shop.key,
            &format!("/v1/customers/{id}/identity_verification"),
            None,
            &body.to_string(),
        )
    };
    let r = verify(json!({}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "phone_not_verified")
    );

    // Phone: a code by SMS; a wrong one counts, the right one verifies.
    let r = p.post(
        &shop.key,
        &format!("/v1/customers/{id}/phone_verification"),
        None,
        "",
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let otp = r.json()["id"].as_str().unwrap().to_string();
    let code = sms.last_code(phone);
    let check = |code: &str| {
        p.post(
            &shop.key,
            &format!("/v1/customers/{id}/phone_verification/check"),
            None,
            &json!({"otp_id": otp, "code": code}).to_string(),
        )
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = check(wrong);
    assert_eq!((r.status, r.error_code().as_str()), (400, "otp_incorrect"));
    assert_eq!(customer(&p, ADMIN, &id)["kyc_level"], 0);
    let r = check(&code);
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["kyc_level"], 1);
    assert!(r.json()["phone_verified_at"].is_string());
    assert_eq!(
        r.json()["limits"]["per_day"],
        "2000.00",
        "level 1's default"
    );

    // Identity: the register knows the number under another name → mismatch, counted.
    idv.add("11010519491231002X", "李磊");
    idv.set(json!({"strict": true}));
    let r = verify(json!({}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (422, "identity_mismatch"),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(customer(&p, ADMIN, &id)["kyc_level"], 1);
    // A number the register does not hold → no record.
    let r = verify(json!({"id_number": "320582198506150413"}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (422, "identity_mismatch")
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no record"));
    // A malformed number is refused here, before the service is asked.
    let asked = idv.checks()["data"].as_array().unwrap().len();
    let r = verify(json!({"id_number": "320582198506150414"}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_id_number")
    );
    assert_eq!(idv.checks()["data"].as_array().unwrap().len(), asked);
    // Outage: 503, nothing changes, nothing counted.
    idv.set(json!({"down": true}));
    let r = verify(json!({"id_number": "510107200002290037"}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "identity_service_unavailable")
    );
    let v = customer(&p, ADMIN, &id);
    assert_eq!(
        (&v["kyc_level"], &v["id_number"]),
        (&json!(1), &json!("320***********0413"))
    );
    assert_eq!(idv.checks()["refused"], 1);
    // Slow but within identity_timeout_ms: a match.
    idv.set(json!({"down": false, "latency_ms": 400}));
    idv.add("510107200002290037", "李雷");
    let started = std::time::Instant::now();
    let r = verify(json!({"id_number": "510107200002290037"}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["kyc_level"], 2);
    assert_eq!(v["id_number"], "510***********0037");
    assert_eq!(v["limits"]["balance_cap"], Value::Null, "level 2: no cap");
    let r = verify(json!({}));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "identity_already_verified")
    );
    // Each step is audited, by the merchant that acted; only masked numbers there.
    let audit = p.admin("GET", "/v1/audit", "").json();
    let actions: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == json!(id))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let by = format!("merchant:{}", shop.id);
    assert_eq!(
        actions,
        [
            ("customer.create".to_string(), by.clone()),
            ("customer.verify_phone".to_string(), by.clone()),
            ("customer.identity_mismatch".to_string(), by.clone()),
            ("customer.identity_mismatch".to_string(), by.clone()),
            ("customer.verify_identity".to_string(), by.clone()),
        ]
    );
    assert!(
        !String::from_utf8_lossy(&p.admin("GET", "/v1/audit", "").body)
            .contains("510107200002290037")
    );
}

/// Pays `amount` from `payer` (a customer's account) to `shop`; the payment's JSON.
fn pay_from(p: &Payd, shop: &Shop, otn: &str, amount: &str, payer: &str) -> Value {
    let r = pay(p, &shop.key, otn, amount, payer);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn limits_refuse_before_money_moves_survive_kill_9_and_reset_at_the_day_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = env_with(&[]);
    let p = start(&dir, &env);
    let shop = merchant(&p, r#"{"name":"shop"}"#);
    let r = create(
        &p,
        ADMIN,
        json!({"name": "王芳", "phone": "+8613700000001"}),
    );
    let c = r.json();
    let (id, account) = (
        c["id"].as_str().unwrap().to_string(),
        c["account_id"].as_str().unwrap().to_string(),
    );
    // Balance cap 300.00: a deposit to it passes, one cent more is refused.
    let deposit = |p: &Payd, amount: &str| {
        p.admin(
            "POST",
            &format!("/v1/accounts/{account}/deposits"),
            &json!({ "amount": amount }).to_string(),
        )
    };
    assert_eq!(deposit(&p, "300.00").status, 201);
    let r = deposit(&p, "0.01");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "kyc_limit_exceeded")
    );
    assert_eq!(p.balance(&account), "300.00");

    // Per payment 50.00.
    let v = pay_from(&p, &shop, "over-one", "50.01", &account);
    assert_eq!(
        (&v["status"], &v["failure_code"]),
        (&json!("failed"), &json!("kyc_limit_exceeded"))
    );
    assert_eq!(p.balance(&account), "300.00", "nothing moved");
    // Per day 100.00: 50 + 50 pass, one cent more does not.
    for otn in ["d1-a", "d1-b"] {
        assert_eq!(
            pay_from(&p, &shop, otn, "50.00", &account)["status"],
            "succeeded"
        );
    }
    let v = pay_from(&p, &shop, "d1-over", "0.01", &account);
    assert_eq!(v["failure_code"], "kyc_limit_exceeded");
    assert_eq!(p.balance(&account), "200.00");
    let usage = &customer(&p, ADMIN, &id)["usage"];
    assert_eq!(
        (&usage["day"], &usage["year"]),
        (&json!("100.00"), &json!("100.00"))
    );

    // The counters are durable: after a kill -9 the day is still spent.
    p.kill9();
    let p = start(&dir, &env);
    let v = pay_from(&p, &shop, "after-crash", "0.01", &account);
    assert_eq!(v["failure_code"], "kyc_limit_exceeded");
    assert_eq!(p.balance(&account), "200.00");

    // The day resets at the business-date switch (a day-end), not at a wall-clock
    // midnight: the counters name the business date they count.
    let d1 = close_day(&p);
    let usage = customer(&p, ADMIN, &id)["usage"].clone();
    assert_ne!(usage["business_date"], json!(d1));
    assert_eq!(
        (&usage["day"], &usage["year"]),
        (&json!("0.00"), &json!("100.00"))
    );
    for otn in ["d2-a", "d2-b"] {
        assert_eq!(
            pay_from(&p, &shop, otn, "50.00", &account)["status"],
            "succeeded"
        );
    }
    close_day(&p);
    // Per year 250.00: 200 spent, 50 passes, one cent more does not.
    assert_eq!(
        pay_from(&p, &shop, "d3-a", "50.00", &account)["status"],
        "succeeded"
    );
    let v = pay_from(&p, &shop, "d3-over", "0.01", &account);
    assert_eq!(v["failure_code"], "kyc_limit_exceeded");
    assert_eq!(p.balance(&account), "50.00");
    let usage = &customer(&p, ADMIN, &id)["usage"];
    assert_eq!(
        (&usage["day"], &usage["year"]),
        (&json!("50.00"), &json!("250.00"))
    );
    // An operator's own v1 account keeps working as v1 says: no KYC limit.
    let plain = funded_account(&p, "1000.00");
    assert_eq!(
        pay_from(&p, &shop, "plain", "600.00", &plain)["status"],
        "succeeded"
    );
    close_day(&p);
}

#[test]
fn two_hundred_concurrent_payments_pay_exactly_the_daily_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let env = env_with(&[
        ("RONGPAY_RATE_PAYER_BURST", "1000".into()),
        ("RONGPAY_RATE_MERCHANT_BURST", "10000".into()),
        ("RONGPAY_RATE_IP_BURST", "10000".into()),
    ]);
    let p = start(&tmp.path().join("data"), &env);
    let shop = merchant(&p, r#"{"name":"shop"}"#);
    let c = create(
        &p,
        ADMIN,
        json!({"name": "张伟", "phone": "+8613700000002"}),
    )
    .json();
    let account = c["account_id"].as_str().unwrap().to_string();
    let r = p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        r#"{"amount":"300.00"}"#,
    );
    assert_eq!(r.status, 201);
    // 200 payments of 0.73 at once: the day's 100.00 allows 136 of them (99.28).
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (p, shop, account) = (&p, &shop, &account);
                s.spawn(move || pay_from(p, shop, &format!("c-{i}"), "0.73", account))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let succeeded = answers
        .iter()
        .filter(|a| a["status"] == "succeeded")
        .count();
    let refused = answers
        .iter()
        .filter(|a| a["failure_code"] == "kyc_limit_exceeded")
        .count();
    println!(
        "200 concurrent payments of 0.73: {succeeded} succeeded, {refused} kyc_limit_exceeded"
    );
    assert_eq!((succeeded, refused), (136, 64));
    assert_eq!(p.balance(&account), "200.72");
    let usage = &customer(&p, ADMIN, c["id"].as_str().unwrap())["usage"];
    assert_eq!(usage["day"], "99.28");
}
