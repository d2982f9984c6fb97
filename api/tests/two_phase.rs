//! Two-phase payments (issue #19, `../shared/FUNDS.md` "Payment orders, checkout and
//! two-phase payments") against the real payd: authorize 100.00, capture 60.00 → the payer
//! is charged 60.00 and 40.00 is released, the merchant credited only at the capture; a void
//! releases everything; an authorization left alone is voided at its ttl, also across a
//! kill -9; captures and voids racing on one authorization have exactly one outcome; the
//! trial balance holds throughout.

use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

fn authorize(p: &Payd, key: &str, otn: &str, amount: &str, payer: &str) -> Value {
    let r = p.post(
        key,
        "/v1/payments",
        None,
        &json!({"out_trade_no": otn, "amount": amount, "currency": "CNY", "capture": false,
                "payment_method": {"type": "balance", "account_id": payer}})
        .to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["status"], "authorized", "{v}");
    v
}

fn capture(p: &Payd, key: &str, id: &str, amount: Option<&str>) -> Response {
    let body = amount.map_or(String::new(), |a| json!({ "amount": a }).to_string());
    p.post(key, &format!("/v1/payments/{id}/capture"), None, &body)
}

fn void(p: &Payd, key: &str, id: &str) -> Response {
    p.post(key, &format!("/v1/payments/{id}/void"), None, "")
}

fn get(p: &Payd, key: &str, id: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = p.req(
        "GET",
        &format!("/v1/payments/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The trial balance balances, and GL 2002 (customer funds on hold) holds `held`.
fn trial_balance(p: &Payd, held: &str) {
    let r = p.admin("GET", "/v1/gl/trial_balance", "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let tb = r.json();
    assert_eq!(tb["balanced"], true, "{tb}");
    // The holds account's row (present once anything was held; absent means 0).
    let balance = tb["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "2002")
        .map_or("0.00".to_string(), |r| {
            r["closing"]
                .as_str()
                .unwrap()
                .trim_start_matches('-')
                .to_string()
        });
    assert_eq!(balance, held, "GL 2002 in {tb}");
}

#[test]
fn authorize_capture_part_release_the_rest_and_void_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let shop = merchant(&p, r#"{"name":"Hotel","fee_rate":"0.01"}"#);
    let other = merchant(&p, r#"{"name":"Other"}"#);
    let payer = funded_account(&p, "100.00");

    // Authorize 100.00: held on the payer, nothing at the merchant.
    let a = authorize(&p, &shop.key, "room-1", "100.00", &payer);
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["authorization"]["authorized_amount"], "100.00", "{a}");
    assert_eq!(p.balance(&payer), "0.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    trial_balance(&p, "100.00");
    // The ops page counts it outstanding.
    let ops = p.req("GET", "/ops/data.json", &[], b"").json();
    assert_eq!(ops["authorizations_outstanding"]["count"], 1, "{ops}");
    assert_eq!(
        ops["authorizations_outstanding"]["amounts"],
        json!([["CNY", "100.00"]])
    );
    // Held money is not available to the payer.
    let r = pay(&p, &shop.key, "minibar", "0.01", &payer);
    assert_eq!(r.json()["failure_code"], "insufficient_funds");
    // Not the other merchant's to capture; not more than authorized.
    assert_eq!(capture(&p, &other.key, &id, None).status, 404);
    let r = capture(&p, &shop.key, &id, Some("100.01"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "capture_exceeds_authorization")
    );

    // Capture 60.00: the payer is charged 60.00, 40.00 is released, the merchant credited
    // 60.00 less its 1% fee.
    let r = capture(&p, &shop.key, &id, Some("60.00"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    assert_eq!(
        (&c["status"], &c["amount"], &c["fee"], &c["net_amount"]),
        (
            &json!("succeeded"),
            &json!("60.00"),
            &json!("0.60"),
            &json!("59.40")
        ),
        "{c}"
    );
    assert_eq!(c["authorization"]["authorized_amount"], "100.00");
    assert_eq!(p.balance(&payer), "40.00");
    assert_eq!(p.balance(&shop.account), "59.40");
    trial_balance(&p, "0.00");
    let ops = p.req("GET", "/ops/data.json", &[], b"").json();
    assert_eq!(ops["authorizations_outstanding"]["count"], 0, "{ops}");
    // A repeated capture answers the same and moves nothing; anything else is refused.
    let again = capture(&p, &shop.key, &id, Some("60.00"));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["amount"], "60.00");
    let r = capture(&p, &shop.key, &id, Some("10.00"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "payment_already_captured")
    );
    assert_eq!(
        void(&p, &shop.key, &id).error_code(),
        "payment_already_captured"
    );
    assert_eq!(p.balance(&payer), "40.00");
    // A captured payment refunds like any other.
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"out_refund_no":"r-1","amount":"10.00"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(p.balance(&payer), "50.00");

    // Authorize 30.00 and void it: everything back; then it cannot be captured.
    let b = authorize(&p, &shop.key, "room-2", "30.00", &payer);
    let bid = b["id"].as_str().unwrap().to_string();
    assert_eq!(p.balance(&payer), "20.00");
    trial_balance(&p, "30.00");
    let r = void(&p, &shop.key, &bid);
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (&v["status"], &v["authorization"]["void_reason"]),
        (&json!("canceled"), &json!("voided")),
        "{v}"
    );
    assert_eq!(p.balance(&payer), "50.00");
    assert_eq!(void(&p, &shop.key, &bid).status, 200, "a repeated void");
    assert_eq!(
        capture(&p, &shop.key, &bid, None).error_code(),
        "payment_canceled"
    );
    assert_eq!(p.balance(&shop.account), "49.50");
    trial_balance(&p, "0.00");

    // What cannot be two-phase is refused up front.
    let r = p.post(
        &shop.key,
        "/v1/payments",
        None,
        &json!({"out_trade_no": "room-3", "amount": "1.00", "currency": "CNY", "capture": false,
                "payment_method": {"type": "bank_card", "card_token": format!("tok_{}", "0".repeat(32))}})
        .to_string(),
    );
    assert!(r.status == 400 || r.status == 404, "{}", r.status);
    // A plain payment is not an authorization.
    let plain = pay(&p, &shop.key, "plain", "1.00", &payer).json();
    let pid = plain["id"].as_str().unwrap();
    assert_eq!(
        capture(&p, &shop.key, pid, None).error_code(),
        "payment_not_authorized"
    );
}

#[test]
fn captures_and_voids_racing_on_one_authorization_have_one_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_unthrottled(&tmp.path().join("data"));
    let shop = merchant(&p, r#"{"name":"Race","fee_rate":"0"}"#);
    let payer = funded_account(&p, "100.00");
    let a = authorize(&p, &shop.key, "race-1", "100.00", &payer);
    let id = a["id"].as_str().unwrap().to_string();
    let outcomes: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let (p, key, id) = (&p, &shop.key, &id);
                s.spawn(move || {
                    let r = if i % 2 == 0 {
                        capture(p, key, id, Some("70.00"))
                    } else {
                        void(p, key, id)
                    };
                    let status = if r.status == 200 {
                        r.json()["status"].as_str().unwrap().to_string()
                    } else {
                        r.error_code()
                    };
                    (r.status, status)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let final_status = get(&p, &shop.key, &id)["status"]
        .as_str()
        .unwrap()
        .to_string();
    // Every 200 names the one outcome; every refusal is the other one's.
    for (status, what) in &outcomes {
        match *status {
            200 => assert_eq!(what, &final_status, "{outcomes:?}"),
            409 => assert!(
                what == "payment_already_captured" || what == "payment_canceled",
                "{outcomes:?}"
            ),
            other => panic!("unexpected {other}: {outcomes:?}"),
        }
    }
    if final_status == "succeeded" {
        assert_eq!(
            (p.balance(&payer), p.balance(&shop.account)),
            ("30.00".to_string(), "70.00".to_string())
        );
    } else {
        assert_eq!(final_status, "canceled");
        assert_eq!(
            (p.balance(&payer), p.balance(&shop.account)),
            ("100.00".to_string(), "0.00".to_string())
        );
    }
    trial_balance(&p, "0.00");
}

#[test]
fn an_authorization_left_alone_is_voided_at_its_ttl_also_across_a_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_AUTHORIZATION_TTL_S", "2"),
    ];
    let p = Payd::start_in(&dir, &env);
    let shop = merchant(&p, r#"{"name":"Car hire","fee_rate":"0"}"#);
    let payer = funded_account(&p, "100.00");

    // Left alone: voided by itself after 2 s.
    let a = authorize(&p, &shop.key, "car-1", "10.00", &payer);
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(p.balance(&payer), "90.00");
    // A void payd makes on its own is seen in two steps: the payment's record is readable
    // once the unit is durable, the balances once the ledger commits it right after.
    eventually(10, "the authorization expires", || {
        get(&p, &shop.key, &id)["status"] == "canceled" && p.balance(&payer) == "100.00"
    });
    let v = get(&p, &shop.key, &id);
    assert_eq!(v["authorization"]["void_reason"], "expired", "{v}");
    assert_eq!(p.balance(&payer), "100.00");
    assert_eq!(
        capture(&p, &shop.key, &id, None).error_code(),
        "payment_canceled"
    );

    // Authorized, then payd is killed before the ttl; the restarted payd voids it on time.
    let b = authorize(&p, &shop.key, "car-2", "20.00", &payer);
    let bid = b["id"].as_str().unwrap().to_string();
    assert_eq!(p.balance(&payer), "80.00");
    let shop_key = shop.key.clone();
    p.kill9();
    std::thread::sleep(Duration::from_secs(3));
    let p = Payd::start_in(&dir, &env);
    eventually(
        10,
        "the restarted payd voids the expired authorization",
        || get(&p, &shop_key, &bid)["status"] == "canceled" && p.balance(&payer) == "100.00",
    );
    assert_eq!(
        get(&p, &shop_key, &bid)["authorization"]["void_reason"],
        "expired"
    );
    assert_eq!(p.balance(&payer), "100.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    trial_balance(&p, "0.00");
}

fn sim_authorizations(sim: &Sim, name: &str) -> Vec<Value> {
    let r = json_request(
        &sim.control,
        "GET",
        &format!("/_sim/channels/{name}/authorizations"),
        &Value::Null,
    );
    assert_eq!(r.status, 200);
    r.json()["data"].as_array().unwrap().clone()
}

#[test]
fn card_authorizations_are_captured_or_voided_exactly_once_at_channel_sim() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_CHANNEL_TIMEOUT_MS", "2000"),
        ("RONGPAY_AUTHORIZATION_TTL_S", "4"),
    ];
    let p = Payd::start_in(&dir, &env);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(&p, r#"{"name":"Car hire","fee_rate":"0.01"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");
    let card_auth = |otn: &str, amount: &str| -> String {
        let r = p.post(
            &shop.key,
            "/v1/payments",
            None,
            &json!({"out_trade_no": otn, "amount": amount, "currency": "CNY", "capture": false,
                    "payment_method": {"type": "bank_card", "card_token": token}})
            .to_string(),
        );
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["status"], "authorized", "{v}");
        v["id"].as_str().unwrap().to_string()
    };

    // Authorized at the channel: nothing charged there, nothing booked here.
    let a = card_auth("car-a", "100.00");
    assert!(
        sim.records("bank").is_empty(),
        "no charge before the capture"
    );
    assert_eq!(p.balance(&shop.account), "0.00");
    // Captured 60.00 there once, then booked: merchant net of its 1% fee.
    let r = capture(&p, &shop.key, &a, Some("60.00"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (&v["status"], &v["amount"], &v["fee"]),
        (&json!("succeeded"), &json!("60.00"), &json!("0.60"))
    );
    assert_eq!(p.balance(&shop.account), "59.40");
    assert_eq!(
        capture(&p, &shop.key, &a, Some("60.00")).status,
        200,
        "a repeat"
    );
    assert_eq!(
        void(&p, &shop.key, &a).error_code(),
        "payment_already_captured"
    );
    let charges = sim.records("bank");
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        (&charges[0]["status"], &charges[0]["amount_minor"]),
        (&json!("succeeded"), &json!(6000))
    );
    // The captured charge refunds through the channel like any card payment.
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{a}/refunds"),
        None,
        r#"{"out_refund_no":"car-a-r","amount":"10.00"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "succeeded");

    // Voided there once.
    let b = card_auth("car-b", "30.00");
    let r = void(&p, &shop.key, &b);
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "canceled");
    assert_eq!(void(&p, &shop.key, &b).status, 200, "a repeat");
    assert_eq!(
        capture(&p, &shop.key, &b, None).error_code(),
        "payment_canceled"
    );

    // Left alone: one expires while payd runs, one across a kill -9.
    let c = card_auth("car-c", "10.00");
    eventually(15, "the card authorization expires", || {
        get(&p, &shop.key, &c)["status"] == "canceled"
    });
    let d = card_auth("car-d", "20.00");
    let key = shop.key.clone();
    p.kill9();
    std::thread::sleep(Duration::from_secs(5));
    let p = Payd::start_in(&dir, &env);
    eventually(15, "the restarted payd voids it at the channel", || {
        get(&p, &key, &d)["status"] == "canceled"
    });
    assert_eq!(get(&p, &key, &d)["authorization"]["void_reason"], "expired");

    // At the channel: four authorizations, each captured or voided exactly once.
    let auths = sim_authorizations(&sim, "bank");
    let summary: Vec<(i64, Option<i64>, bool, i64)> = auths
        .iter()
        .map(|x| {
            (
                x["authorized_minor"].as_i64().unwrap(),
                x["captured_minor"].as_i64(),
                x["voided"].as_bool().unwrap(),
                x["changes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (10_000, Some(6_000), false, 1),
            (3_000, None, true, 1),
            (1_000, None, true, 1),
            (2_000, None, true, 1),
        ]
    );
    assert_eq!(sim.records("bank").len(), 2, "one charge and its refund");
    // 59.40 less the 10.00 refunded plus the 0.10 of fee the refund returned.
    assert_eq!(p.balance(&shop.account), "49.50");
    trial_balance(&p, "0.00");
}
