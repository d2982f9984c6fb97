//! Merchants and balance payments over HTTP against the real payd: money exact to the cent,
//! declines as failed payments, out_trade_no uniqueness, visibility, kill -9 under load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

fn balance(p: &Payd, account: &str) -> String {
    p.balance(account)
}

const FEE_ACCOUNT_CNY: &str = "acct_ffffffff00000000000000000002009c";

#[test]
fn a_balance_payment_moves_money_exactly() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"Tea House","fee_rate":"0.006"}"#);
    assert!(shop.key.starts_with("sk_") && shop.id.starts_with("mch_"));
    let payer = funded_account(&p, "100.00");

    let r = pay(&p, &shop.key, "order-1", "12.34", &payer);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let pm = r.json();
    assert_eq!(pm["status"], "succeeded");
    assert_eq!(pm["failure_code"], serde_json::Value::Null);
    assert_eq!(
        (
            pm["amount"].as_str(),
            pm["fee"].as_str(),
            pm["net_amount"].as_str()
        ),
        (Some("12.34"), Some("0.07"), Some("12.27"))
    );
    assert_eq!(pm["merchant_id"], shop.id.as_str());
    assert_eq!(pm["payment_method"]["account_id"], payer.as_str());
    assert_eq!(pm["metadata"]["order"], "order-1");
    assert_eq!(pm["refunded_amount"], "0.00");
    assert!(pm["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(balance(&p, &payer), "87.66");
    assert_eq!(balance(&p, &shop.account), "12.27");
    assert_eq!(balance(&p, FEE_ACCOUNT_CNY), "0.07");

    // The merchant sees its payment and its own account; the admin sees everything.
    let auth = format!("Bearer {}", shop.key);
    let id = pm["id"].as_str().unwrap();
    let got = p
        .req(
            "GET",
            &format!("/v1/payments/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(got["id"], id);
    assert_eq!(
        p.admin("GET", &format!("/v1/payments/{id}"), "").status,
        200
    );
    let listed = p
        .req(
            "GET",
            "/v1/payments?out_trade_no=order-1",
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(listed["data"][0]["id"], id);
    let none = p
        .req(
            "GET",
            "/v1/payments?out_trade_no=order-2",
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        p.req(
            "GET",
            &format!("/v1/accounts/{}", shop.account),
            &[("Authorization", &auth)],
            b""
        )
        .status,
        200
    );
    assert_eq!(
        p.req(
            "GET",
            &format!("/v1/accounts/{payer}"),
            &[("Authorization", &auth)],
            b""
        )
        .status,
        404
    );

    // Another merchant cannot see it: 404, not 403.
    let other = merchant(&p, r#"{"name":"Other"}"#);
    let auth2 = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/payments/{id}"),
        &[("Authorization", &auth2)],
        b"",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "resource_not_found")
    );
}

/// Identifiers whose digits happen to hold a Luhn-valid run of 13-19 digits (one random
/// 32-hex id in ~1,300; as often a UUID) are not card numbers: as `out_trade_no` and in the
/// metadata (an order's payment carries its order id there) they are accepted. The run
/// alone is still refused.
#[test]
fn identifiers_whose_digits_pass_luhn_are_not_card_numbers() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"Ids"}"#);
    let payer = funded_account(&p, "10.00");
    for otn in [
        "98b49196-7163-8755-09af-b15cc7300eef",
        "ord_01a23ca80b1fb7f925a2147647782587",
    ] {
        let r = pay(&p, &shop.key, otn, "1.00", &payer);
        assert_eq!(r.status, 201, "{otn}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "succeeded");
        assert_eq!(r.json()["metadata"]["order"], otn);
    }
    let r = pay(&p, &shop.key, "2147647782587", "1.00", &payer);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "card_number_not_allowed")
    );
    assert_eq!(balance(&p, &payer), "8.00");
}

#[test]
fn declines_are_failed_payments_and_duplicates_are_refused() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"Noodles"}"#);
    let payer = funded_account(&p, "10.00");
    let r = pay(&p, &shop.key, "big", "10.01", &payer);
    assert_eq!(r.status, 201);
    let failed = r.json();
    assert_eq!(
        (failed["status"].as_str(), failed["failure_code"].as_str()),
        (Some("failed"), Some("insufficient_funds"))
    );
    assert_eq!(failed["fee"], "0.00");
    assert_eq!(balance(&p, &payer), "10.00");
    assert_eq!(balance(&p, &shop.account), "0.00");

    let again = pay(&p, &shop.key, "big", "1.00", &payer);
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (409, "duplicate_out_trade_no")
    );
    assert_eq!(again.json()["error"]["payment_id"], failed["id"]);

    // Twenty concurrent twins: one payment, nineteen 409s naming it.
    let p = Arc::new(p);
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (p, key, payer) = (Arc::clone(&p), shop.key.clone(), payer.clone());
            std::thread::spawn(move || pay(&p, &key, "twin", "0.10", &payer))
        })
        .collect();
    let answers: Vec<Response> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let created: Vec<&Response> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1);
    let first = created[0].json()["id"].clone();
    for r in answers.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409);
        assert_eq!(r.json()["error"]["payment_id"], first);
    }
    assert_eq!(balance(&p, &payer), "9.90");
}

#[test]
fn bad_payment_requests_are_refused_and_move_nothing() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"Books","fee_rate":"0.01"}"#);
    let payer = funded_account(&p, "5.00");
    let usd = p
        .admin("POST", "/v1/accounts", r#"{"currency":"USD"}"#)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Bearer {}", shop.key);
    let json = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let cases = [
        (format!(r#"{{"out_trade_no":"a","amount":"1.00","currency":"CNY","payment_method":{{"type":"card","account_id":"{payer}"}}}}"#), 400, "invalid_parameter"),
        (r#"{"out_trade_no":"a","amount":"1.00","currency":"CNY","payment_method":{"type":"balance"}}"#.to_string(), 400, "parameter_missing"),
        (r#"{"out_trade_no":"a","amount":"1.00","currency":"CNY","payment_method":{"type":"balance","account_id":"acct_00000000000000000000000000000042"}}"#.to_string(), 404, "resource_not_found"),
        (format!(r#"{{"out_trade_no":"a","amount":"1.00","currency":"USD","payment_method":{{"type":"balance","account_id":"{usd}"}}}}"#), 400, "invalid_currency"),
        (format!(r#"{{"out_trade_no":"a","amount":"1.001","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#), 400, "invalid_amount"),
        (format!(r#"{{"out_trade_no":"","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#), 400, "invalid_parameter"),
        (format!(r#"{{"out_trade_no":"{}","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#, "x".repeat(65)), 400, "invalid_parameter"),
        (format!(r#"{{"out_trade_no":"a","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}},"metadata":{{"k":5}}}}"#), 400, "invalid_parameter"),
        (format!(r#"{{"out_trade_no":"a","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}},"tip":"1"}}"#), 400, "invalid_parameter"),
    ];
    for (body, status, code) in &cases {
        let r = p.req("POST", "/v1/payments", &json, body.as_bytes());
        assert_eq!(
            (r.status, r.error_code()),
            (*status, code.to_string()),
            "{body}"
        );
    }
    let admin_pays = p.admin("POST", "/v1/payments", &cases[0].0);
    assert_eq!(admin_pays.status, 401);
    assert_eq!(balance(&p, &payer), "5.00");
    assert_eq!(balance(&p, &shop.account), "0.00");
}

/// Concurrent clients record every 201; payd is killed mid-load; after restart every
/// acknowledged payment is there exactly once, as answered, and money is conserved.
#[test]
fn kill9_under_http_load_loses_no_acknowledged_payment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_in(&dir, &env);
    let shop = merchant(&p, r#"{"name":"Load","fee_rate":"0.006"}"#);
    let payers: Vec<String> = (0..8).map(|_| funded_account(&p, "1000.00")).collect();
    let acked: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let addr = p.addr.clone();
    let stop_at = Instant::now() + Duration::from_millis(700);
    let workers: Vec<_> = payers
        .iter()
        .enumerate()
        .map(|(w, payer)| {
            let (acked, key, payer, addr) = (Arc::clone(&acked), shop.key.clone(), payer.clone(), addr.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {key}");
                for i in 0.. {
                    if Instant::now() > stop_at + Duration::from_secs(5) {
                        break;
                    }
                    let body = format!(r#"{{"out_trade_no":"w{w}-{i}","amount":"0.{:02}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#, 1 + i % 99);
                    match try_request(&addr, "POST", "/v1/payments", &[("Authorization", &auth), ("Content-Type", "application/json")], body.as_bytes()) {
                        Ok(r) if r.status == 201 => acked.lock().unwrap().push(r.json()),
                        Ok(_) => {}
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    while Instant::now() < stop_at {
        std::thread::sleep(Duration::from_millis(20));
    }
    p.kill9();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "load ran: {} payments acknowledged",
        acked.len()
    );

    let p = Payd::start_in(&dir, &env);
    let auth = format!("Bearer {}", shop.key);
    let mut paid_total = 0i64;
    for pm in &acked {
        let id = pm["id"].as_str().unwrap();
        let got = p
            .req(
                "GET",
                &format!("/v1/payments/{id}"),
                &[("Authorization", &auth)],
                b"",
            )
            .json();
        assert_eq!(
            &got, pm,
            "acknowledged payment recovered exactly as answered"
        );
        let otn = pm["out_trade_no"].as_str().unwrap();
        let listed = p
            .req(
                "GET",
                &format!("/v1/payments?out_trade_no={otn}"),
                &[("Authorization", &auth)],
                b"",
            )
            .json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "exactly once");
        let cents = |s: &str| s.replace('.', "").parse::<i64>().unwrap();
        if pm["status"] == "succeeded" {
            paid_total += cents(pm["amount"].as_str().unwrap());
        }
    }
    // Conservation: deposits = payers + merchant + fees, to the cent.
    let cents = |s: String| s.replace('.', "").parse::<i64>().unwrap();
    let payers_total: i64 = payers.iter().map(|a| cents(balance(&p, a))).sum();
    let merchant_total = cents(balance(&p, &shop.account));
    let fees = cents(balance(&p, FEE_ACCOUNT_CNY));
    assert_eq!(
        payers_total + merchant_total + fees,
        8 * 100_000,
        "money conserved"
    );
    assert!(
        8 * 100_000 - payers_total >= paid_total,
        "every acknowledged payment is applied"
    );
    println!(
        "{} acknowledged payments recovered after kill -9",
        acked.len()
    );
}
