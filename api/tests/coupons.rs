//! Coupons (issue #18, `../shared/FUNDS.md` "Coupons") against the real payd: stocks with a
//! budget, coupons issued per account, redemption inside a balance payment as one durable
//! unit with the budget (platform- and merchant-funded), refunds returning money pro rata and
//! the coupon on a full refund, stops returning the budget; 1,000 concurrent redemptions
//! against a budget of 100 coupons, and a kill -9 in the middle of them.

use crate::common::*;
use serde_json::{json, Value};

const IN_A_MONTH: &str = "2099-01-01T00:00:00Z";

fn start(dir: &std::path::Path) -> Payd {
    Payd::start_unthrottled(dir)
}

/// A customer (KYC level 0 limits are far above these tests' amounts once verified... the
/// operator's own level-0 defaults: 200.00 a payment) with `amount` deposited: its account.
fn customer_with(p: &Payd, phone: &str, amount: &str) -> String {
    let r = p.admin(
        "POST",
        "/v1/customers",
        &json!({"name": "顾客", "phone": phone}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let account = r.json()["account_id"].as_str().unwrap().to_string();
    let r = p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        &json!({ "amount": amount }).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    account
}

fn stock(p: &Payd, token: &str, body: Value) -> Value {
    let r = p.post(token, "/v1/coupon_stocks", None, &body.to_string());
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn issue(p: &Payd, token: &str, stock: &str, account: &str) -> Response {
    p.post(
        token,
        &format!("/v1/coupon_stocks/{stock}/coupons"),
        None,
        &json!({ "account_id": account }).to_string(),
    )
}

fn pay_with(p: &Payd, key: &str, otn: &str, amount: &str, payer: &str, coupon: &str) -> Response {
    let body = json!({
        "out_trade_no": otn,
        "amount": amount,
        "currency": "CNY",
        "payment_method": {"type": "balance", "account_id": payer},
        "coupon_id": coupon,
    });
    p.post(key, "/v1/payments", None, &body.to_string())
}

fn get(p: &Payd, token: &str, path: &str) -> Value {
    let auth = format!("Bearer {token}");
    let r = p.req("GET", path, &[("Authorization", &auth)], b"");
    assert_eq!(
        r.status,
        200,
        "{path}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn refund(p: &Payd, key: &str, payment: &str, amount: &str, no: &str) -> Value {
    let r = p.post(
        key,
        &format!("/v1/payments/{payment}/refunds"),
        None,
        &json!({"amount": amount, "out_refund_no": no}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn a_platform_funded_coupon_pays_the_merchant_in_full_and_refunds_give_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    // The platform's money behind its campaigns: capital into the reserve (coverage).
    seed_equity(&p, "100.00");
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0.006"}"#);
    let payer = customer_with(&p, "+8613600000001", "300.00");

    // Malformed stocks change nothing.
    for (body, param) in [
        (
            json!({"name":"x","type":"fixed","percent_off":"10","budget":"1.00","max_coupons":1,"valid_until":IN_A_MONTH,"funded_by":"platform"}),
            "amount",
        ),
        (
            json!({"name":"x","type":"percent","percent_off":"100.5","budget":"1.00","max_coupons":1,"valid_until":IN_A_MONTH,"funded_by":"platform"}),
            "percent_off",
        ),
        (
            json!({"name":"x","type":"fixed","amount":"1.00","budget":"1.001","max_coupons":1,"valid_until":IN_A_MONTH,"funded_by":"platform"}),
            "budget",
        ),
        (
            json!({"name":"x","type":"fixed","amount":"1.00","budget":"1.00","max_coupons":1,"valid_until":"2020-01-01T00:00:00Z","funded_by":"platform"}),
            "valid_until",
        ),
        (
            json!({"name":"x","type":"fixed","amount":"1.00","budget":"1.00","max_coupons":1,"valid_until":IN_A_MONTH,"funded_by":"merchant"}),
            "merchant_id",
        ),
    ] {
        let r = p.post(ADMIN, "/v1/coupon_stocks", None, &body.to_string());
        assert_eq!(
            r.status,
            400,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["param"], param, "{body}");
    }
    // A merchant cannot spend the platform's money.
    let r = p.post(
        &shop.key,
        "/v1/coupon_stocks",
        None,
        &json!({"name":"x","type":"fixed","amount":"1.00","budget":"1.00","max_coupons":1,"valid_until":IN_A_MONTH,"funded_by":"platform"}).to_string(),
    );
    assert_eq!(r.json()["error"]["param"], "funded_by");

    // 15.00 off orders of 100.00 or more, 30.00 in all, two per customer.
    let s = stock(
        &p,
        ADMIN,
        json!({"name":"满100减15","type":"fixed","amount":"15.00","min_order":"100.00","budget":"30.00",
               "max_coupons":10,"max_per_customer":2,"valid_until":IN_A_MONTH,"funded_by":"platform"}),
    );
    let sid = s["id"].as_str().unwrap().to_string();
    let budget = s["budget_account_id"].as_str().unwrap().to_string();
    assert_eq!(
        (&s["status"], &s["remaining"], &s["merchant_id"]),
        (&json!("active"), &json!("30.00"), &Value::Null)
    );
    assert_eq!(p.balance(&budget), "30.00");
    assert_eq!(
        (gl_balance(&p, "2301"), gl_balance(&p, "5002")),
        ("30.00".into(), "30.00".into()),
        "set aside: platform discounts (expense) to the coupon budget (liability)"
    );
    let c1 = issue(&p, ADMIN, &sid, &payer).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c2 = issue(&p, ADMIN, &sid, &payer).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = issue(&p, ADMIN, &sid, &payer);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "coupon_limit_per_customer")
    );

    // Redeemed: the payer pays 85.00, the merchant gets 100.00 less the fee.
    let v = pay_with(&p, &shop.key, "o-1", "100.00", &payer, &c1).json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(
        (
            &v["discount"],
            &v["paid_amount"],
            &v["fee"],
            &v["net_amount"],
            &v["coupon_id"]
        ),
        (
            &json!("15.00"),
            &json!("85.00"),
            &json!("0.60"),
            &json!("99.40"),
            &json!(c1)
        )
    );
    let pay1 = v["id"].as_str().unwrap().to_string();
    assert_eq!(p.balance(&payer), "215.00");
    assert_eq!(p.balance(&budget), "15.00");
    assert_eq!(p.balance(&shop.account), "99.40");
    let c = get(&p, ADMIN, &format!("/v1/coupons/{c1}"));
    assert_eq!(
        (&c["status"], &c["payment_id"]),
        (&json!("redeemed"), &json!(pay1))
    );
    // Used again: failed, nothing moves. Under its minimum: refused.
    let v = pay_with(&p, &shop.key, "o-2", "100.00", &payer, &c1).json();
    assert_eq!(
        (&v["status"], &v["failure_code"], &v["discount"]),
        (
            &json!("failed"),
            &json!("coupon_unavailable"),
            &json!("0.00")
        )
    );
    let r = pay_with(&p, &shop.key, "o-3", "99.99", &payer, &c2);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "coupon_min_order_not_met")
    );
    // Another account's coupon is not found.
    let other = customer_with(&p, "+8613600000002", "100.00");
    let r = pay_with(&p, &shop.key, "o-4", "100.00", &other, &c2);
    assert_eq!(r.status, 404);
    assert_eq!(p.balance(&payer), "215.00");

    // A partial refund returns money pro rata: 40.00 = 34.00 to the payer, 6.00 to the
    // budget; the coupon stays redeemed.
    let r = refund(&p, &shop.key, &pay1, "40.00", "r-1");
    assert_eq!(
        (&r["amount"], &r["to_payer"]),
        (&json!("40.00"), &json!("34.00"))
    );
    assert_eq!(p.balance(&payer), "249.00");
    assert_eq!(p.balance(&budget), "21.00");
    assert_eq!(p.balance(&shop.account), "59.64");
    // The rest completes it: the coupon comes back (its stock is active and valid).
    let r = refund(&p, &shop.key, &pay1, "60.00", "r-2");
    assert_eq!(r["to_payer"], "51.00");
    assert_eq!(p.balance(&payer), "300.00");
    assert_eq!(p.balance(&budget), "30.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    assert_eq!(
        get(&p, ADMIN, &format!("/v1/coupons/{c1}"))["status"],
        "available"
    );
    let s = get(&p, ADMIN, &format!("/v1/coupon_stocks/{sid}"));
    assert_eq!(
        (&s["spent"], &s["redeemed"], &s["issued"]),
        (&json!("0.00"), &json!(0), &json!(2))
    );

    // Redeemed again, then the stock is stopped: what is left returns to the platform.
    let v = pay_with(&p, &shop.key, "o-5", "120.00", &payer, &c2).json();
    assert_eq!(
        (&v["status"], &v["paid_amount"]),
        (&json!("succeeded"), &json!("105.00"))
    );
    let pay5 = v["id"].as_str().unwrap().to_string();
    let r = p.admin(
        "PATCH",
        &format!("/v1/coupon_stocks/{sid}"),
        r#"{"status":"stopped"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        (
            &r.json()["status"],
            &r.json()["returned"],
            &r.json()["remaining"]
        ),
        (&json!("stopped"), &json!("15.00"), &json!("0.00"))
    );
    assert_eq!(p.balance(&budget), "0.00");
    assert_eq!(
        gl_balance(&p, "5002"),
        "15.00",
        "the expense is what was given"
    );
    assert_eq!(
        get(&p, ADMIN, &format!("/v1/coupons/{c1}"))["status"],
        "void"
    );
    let v = pay_with(&p, &shop.key, "o-6", "100.00", &payer, &c1).json();
    assert_eq!(v["failure_code"], "coupon_unavailable");
    // A refund after the stop returns the coupon's part to the platform, not the budget:
    // 12.00 of 120.00 = 10.50 to the payer, 1.50 off the expense.
    let r = refund(&p, &shop.key, &pay5, "12.00", "r-3");
    assert_eq!(r["to_payer"], "10.50");
    assert_eq!(p.balance(&budget), "0.00");
    assert_eq!(gl_balance(&p, "5002"), "13.50");
    // The customer's coupons, as its owner sees them.
    let list = get(
        &p,
        ADMIN,
        &format!("/v1/customers/{}/coupons", customer_id_of(&p, &payer)),
    );
    // By id: two coupons issued in the same millisecond list in either order (ids are
    // time-ordered to the millisecond, random below).
    let status_of = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].clone())
    };
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        (status_of(&c1), status_of(&c2)),
        (Some(json!("void")), Some(json!("redeemed")))
    );
    // Every day's books balance.
    close_day(&p);
}

/// The customer whose balance account is `account`.
fn customer_id_of(p: &Payd, account: &str) -> String {
    let list = p.admin("GET", "/v1/customers?limit=100", "").json();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["account_id"] == account)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_merchant_funded_coupon_lowers_what_the_merchant_receives() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0.006"}"#);
    let other = merchant(&p, r#"{"name":"other","fee_rate":"0.006"}"#);
    let payer = customer_with(&p, "+8613600000003", "300.00");
    // The merchant's own: 10% off, at most 25.00 given in all.
    let s = stock(
        &p,
        &shop.key,
        json!({"name":"九折","type":"percent","percent_off":"10","budget":"25.00","max_coupons":5,
               "max_per_customer":5,"valid_until":IN_A_MONTH,"funded_by":"merchant"}),
    );
    let sid = s["id"].as_str().unwrap().to_string();
    assert_eq!(
        (&s["merchant_id"], &s["funded_by"], &s["budget_account_id"]),
        (&json!(shop.id), &json!("merchant"), &Value::Null)
    );
    // Another merchant sees nothing of it, and its coupons do not apply there.
    let auth = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/coupon_stocks/{sid}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);
    let coupons: Vec<String> = (0..3)
        .map(|_| {
            let r = issue(&p, &shop.key, &sid, &payer);
            assert_eq!(r.status, 201, "{:?}", r.json());
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    let r = pay_with(&p, &other.key, "x-1", "100.00", &payer, &coupons[0]);
    assert_eq!(r.error_code(), "coupon_not_applicable");

    // 100.00 at 10% off: the payer pays 90.00, the merchant receives 90.00 less the fee
    // on it (0.54).
    let v = pay_with(&p, &shop.key, "m-1", "100.00", &payer, &coupons[0]).json();
    assert_eq!(
        (
            &v["discount"],
            &v["paid_amount"],
            &v["fee"],
            &v["net_amount"]
        ),
        (
            &json!("10.00"),
            &json!("90.00"),
            &json!("0.54"),
            &json!("89.46")
        )
    );
    assert_eq!(p.balance(&payer), "210.00");
    assert_eq!(p.balance(&shop.account), "89.46");
    // 150.00: 15.00 off; the budget's 25.00 is spent.
    let v = pay_with(&p, &shop.key, "m-2", "150.00", &payer, &coupons[1]).json();
    assert_eq!(v["discount"], "15.00");
    // Nothing left for a third: failed, nothing moved.
    let v = pay_with(&p, &shop.key, "m-3", "100.00", &payer, &coupons[2]).json();
    assert_eq!(v["failure_code"], "coupon_unavailable");
    assert_eq!(p.balance(&payer), "75.00");
    let r = issue(&p, &shop.key, &sid, &payer);
    assert_eq!(r.error_code(), "coupon_stock_exhausted");
    // A refund of half: the payer gets half of what it paid; the merchant gives back what
    // it received of it.
    let pay1 = get(&p, &shop.key, "/v1/payments?out_trade_no=m-1")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = refund(&p, &shop.key, &pay1, "50.00", "h-1");
    assert_eq!(r["to_payer"], "45.00");
    assert_eq!(p.balance(&payer), "120.00");
    let s = get(&p, &shop.key, &format!("/v1/coupon_stocks/{sid}"));
    assert_eq!(
        (&s["spent"], &s["remaining"]),
        (&json!("20.00"), &json!("5.00"))
    );
    close_day(&p);
}

/// What [`thousand_at_once`] leaves: the stock, its budget account, each payment's answer
/// by out_trade_no (`None`: no answer), the merchant and the payd.
struct Run {
    stock: String,
    budget: String,
    answers: Vec<(String, Option<Value>)>,
    shop: Shop,
    payd: Payd,
}

/// Ten customers hold 100 coupons each of a stock whose budget covers 100 redemptions;
/// their 1,000 payments are sent at once (and payd is killed with SIGKILL once `kill_at`
/// of them were acknowledged succeeded, when given). Returns the stock id, the budget
/// account, the answers (`None`: no answer), the merchant and the payd.
fn thousand_at_once(dir: &std::path::Path, kill_at: Option<usize>) -> Run {
    let p = start(dir);
    seed_equity(&p, "100.00");
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0"}"#);
    let s = stock(
        &p,
        ADMIN,
        json!({"name":"立减1元","type":"fixed","amount":"1.00","budget":"100.00","max_coupons":1000,
               "max_per_customer":100,"valid_until":IN_A_MONTH,"funded_by":"platform"}),
    );
    let sid = s["id"].as_str().unwrap().to_string();
    let budget = s["budget_account_id"].as_str().unwrap().to_string();
    let mut jobs = Vec::new();
    for c in 0..10 {
        let payer = customer_with(&p, &format!("+86136000001{c:02}"), "1000.00");
        for i in 0..100 {
            let r = issue(&p, ADMIN, &sid, &payer);
            assert_eq!(r.status, 201, "{:?}", r.json());
            jobs.push((
                format!("t-{c}-{i}"),
                payer.clone(),
                r.json()["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    let addr = p.addr.clone();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killer = kill_at.map(|at| {
        let pid = p.child.id().to_string();
        let acked = acked.clone();
        std::thread::spawn(move || {
            while acked.load(std::sync::atomic::Ordering::SeqCst) < at {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            let killed = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap();
            assert!(killed.success());
        })
    });
    let answers: Vec<(String, Option<Value>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(otn, payer, coupon)| {
                let (addr, key, acked) = (&addr, &shop.key, &acked);
                scope.spawn(move || {
                    let body = json!({
                        "out_trade_no": otn, "amount": "2.00", "currency": "CNY",
                        "payment_method": {"type": "balance", "account_id": payer},
                        "coupon_id": coupon,
                    })
                    .to_string();
                    let auth = format!("Bearer {key}");
                    let r = try_request(
                        addr,
                        "POST",
                        "/v1/payments",
                        &[
                            ("Authorization", &auth),
                            ("Content-Type", "application/json"),
                        ],
                        body.as_bytes(),
                    );
                    let answer = r.ok().filter(|r| r.status == 201).map(|r| r.json());
                    if answer.as_ref().is_some_and(|a| a["status"] == "succeeded") {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    (otn.clone(), answer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    if let Some(k) = killer {
        k.join().unwrap();
    }
    Run {
        stock: sid,
        budget,
        answers,
        shop,
        payd: p,
    }
}

#[test]
fn a_thousand_concurrent_redemptions_against_a_budget_of_a_hundred_redeem_exactly_a_hundred() {
    let tmp = tempfile::tempdir().unwrap();
    let Run {
        stock: sid,
        budget,
        answers,
        payd: p,
        ..
    } = thousand_at_once(&tmp.path().join("data"), None);
    let succeeded: Vec<&Value> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| a["status"] == "succeeded")
        .collect();
    let unavailable = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| a["failure_code"] == "coupon_unavailable")
        .count();
    println!(
        "1000 concurrent redemptions, budget for 100: {} succeeded, {unavailable} coupon_unavailable",
        succeeded.len()
    );
    assert_eq!((succeeded.len(), unavailable), (100, 900));
    assert_eq!(
        p.balance(&budget),
        "0.00",
        "the budget account ends at zero"
    );
    let s = get(&p, ADMIN, &format!("/v1/coupon_stocks/{sid}"));
    assert_eq!(
        (&s["spent"], &s["remaining"], &s["redeemed"]),
        (&json!("100.00"), &json!("0.00"), &json!(100))
    );
    // No coupon redeemed twice: 100 distinct coupons, each naming its one payment.
    let mut coupons: Vec<&str> = succeeded
        .iter()
        .map(|a| a["coupon_id"].as_str().unwrap())
        .collect();
    coupons.sort();
    coupons.dedup();
    assert_eq!(coupons.len(), 100);
    for a in &succeeded {
        let c = get(
            &p,
            ADMIN,
            &format!("/v1/coupons/{}", a["coupon_id"].as_str().unwrap()),
        );
        assert_eq!(
            (&c["status"], &c["payment_id"]),
            (&json!("redeemed"), &a["id"])
        );
    }
    close_day(&p);
}

#[test]
fn a_kill_9_during_redemptions_loses_no_acknowledged_one_and_leaks_no_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let Run {
        stock: sid,
        budget,
        answers,
        shop,
        payd: p,
    } = thousand_at_once(&dir, Some(30));
    drop(p);
    let acknowledged: Vec<&Value> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| a["status"] == "succeeded")
        .collect();
    let answered = answers.iter().filter(|(_, a)| a.is_some()).count();
    let p = start(&dir);
    // Every acknowledged redemption is there, with its coupon redeemed by it.
    for a in &acknowledged {
        let v = get(
            &p,
            &shop.key,
            &format!("/v1/payments/{}", a["id"].as_str().unwrap()),
        );
        assert_eq!(v["status"], "succeeded");
        let c = get(
            &p,
            ADMIN,
            &format!("/v1/coupons/{}", a["coupon_id"].as_str().unwrap()),
        );
        assert_eq!(c["payment_id"], a["id"]);
    }
    // The stock, the budget account and the payments agree: what the stock says it spent is
    // exactly what left the budget, and exactly the discounts of the succeeded payments.
    let mut discounts = 0;
    let mut redeemed = 0;
    for (otn, _) in &answers {
        let list = get(&p, &shop.key, &format!("/v1/payments?out_trade_no={otn}"));
        if let Some(v) = list["data"].as_array().unwrap().first() {
            if v["status"] == "succeeded" {
                discounts += cents(v["discount"].as_str().unwrap());
                redeemed += 1;
            }
        }
    }
    let s = get(&p, ADMIN, &format!("/v1/coupon_stocks/{sid}"));
    println!(
        "kill -9 after 30 acknowledged: {answered} answered, {} acknowledged redemptions; after restart {redeemed} redeemed, stock spent {}, budget left {}",
        acknowledged.len(),
        s["spent"],
        p.balance(&budget)
    );
    assert!(redeemed >= acknowledged.len());
    assert_eq!(cents(s["spent"].as_str().unwrap()), discounts);
    assert_eq!(s["redeemed"], json!(redeemed));
    assert_eq!(cents(&p.balance(&budget)), 10_000 - discounts);
    close_day(&p);
}

#[test]
fn a_stock_past_its_validity_is_stopped_by_the_day_end_and_its_budget_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    seed_equity(&p, "50.00");
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0"}"#);
    let payer = customer_with(&p, "+8613600000004", "100.00");
    let until = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3),
    )
    .to_string();
    let s = stock(
        &p,
        ADMIN,
        json!({"name":"限时","type":"fixed","amount":"5.00","budget":"50.00","max_coupons":10,
               "max_per_customer":2,"valid_until": until,"funded_by":"platform"}),
    );
    let sid = s["id"].as_str().unwrap().to_string();
    let budget = s["budget_account_id"].as_str().unwrap().to_string();
    let c = issue(&p, ADMIN, &sid, &payer).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = pay_with(&p, &shop.key, "e-1", "20.00", &payer, &c).json();
    assert_eq!(v["paid_amount"], "15.00");
    let unused = issue(&p, ADMIN, &sid, &payer).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Past its validity: its coupons are expired, and the next day-end stops the stock and
    // returns the 45.00 not spent.
    std::thread::sleep(std::time::Duration::from_millis(3_200));
    assert_eq!(
        get(&p, ADMIN, &format!("/v1/coupons/{unused}"))["status"],
        "expired"
    );
    let v = pay_with(&p, &shop.key, "e-2", "20.00", &payer, &unused).json();
    assert_eq!(v["failure_code"], "coupon_unavailable");
    let date = close_day(&p);
    let d = p.admin("GET", &format!("/v1/gl/day_end/{date}"), "").json();
    let step = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "coupon_expiry")
        .unwrap()
        .clone();
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 stocks expired, 4500 minor units"),
        "{step}"
    );
    let s = get(&p, ADMIN, &format!("/v1/coupon_stocks/{sid}"));
    assert_eq!(
        (&s["status"], &s["returned"], &s["spent"]),
        (&json!("stopped"), &json!("45.00"), &json!("5.00"))
    );
    assert_eq!(p.balance(&budget), "0.00");
    assert_eq!(gl_balance(&p, "5002"), "5.00");
    // The audit log names the system as the actor.
    let audit = p
        .admin("GET", "/v1/audit?action=coupon_stock.expire", "")
        .json();
    assert_eq!(audit["data"][0]["actor"], "system");
    close_day(&p);
}
