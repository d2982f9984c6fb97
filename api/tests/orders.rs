//! Payment orders (issue #19, `../shared/FUNDS.md` "Payment orders, checkout and two-phase
//! payments") against the real payd: created, paid once, closed, expired by themselves (also
//! across a kill -9); 50 concurrent payments of one order and a close have exactly one
//! outcome.

use crate::common::*;
use serde_json::{json, Value};

fn start(dir: &std::path::Path) -> Payd {
    Payd::start_unthrottled(dir)
}

fn order(p: &Payd, key: &str, otn: &str, amount: &str, expires_in_s: u64) -> Value {
    let r = p.post(
        key,
        "/v1/orders",
        None,
        &json!({"out_trade_no": otn, "amount": amount, "currency": "CNY",
                "description": "一杯茶", "return_url": "https://shop.example/done",
                "expires_in_s": expires_in_s})
        .to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn pay_order(p: &Payd, key: &str, id: &str, payer: &str) -> Response {
    p.post(
        key,
        &format!("/v1/orders/{id}/payments"),
        None,
        &json!({"payment_method": {"type": "balance", "account_id": payer}}).to_string(),
    )
}

fn get(p: &Payd, key: &str, id: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = p.req(
        "GET",
        &format!("/v1/orders/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn an_order_is_paid_once_and_a_failed_attempt_leaves_it_open() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0"}"#);
    let other = merchant(&p, r#"{"name":"other"}"#);
    let o = order(&p, &shop.key, "o-1", "88.00", 900);
    // The ops page counts it open (issue #19).
    let ops = p.req("GET", "/ops/data.json", &[], b"").json();
    assert_eq!(ops["orders_open"]["count"], 1, "{ops}");
    assert_eq!(ops["orders_open"]["amounts"], json!([["CNY", "88.00"]]));
    let id = o["id"].as_str().unwrap().to_string();
    assert_eq!(
        (&o["status"], &o["attempts"], &o["payment_id"]),
        (&json!("open"), &json!(0), &Value::Null)
    );
    assert!(o["checkout_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/checkout/{id}")));
    // Malformed or duplicate orders change nothing; another merchant does not see it.
    for (body, param) in [
        (
            json!({"out_trade_no":"x","amount":"1.001","currency":"CNY"}),
            "amount",
        ),
        (
            json!({"out_trade_no":"x","amount":"1.00","currency":"CNY","expires_in_s":0}),
            "expires_in_s",
        ),
        (
            json!({"out_trade_no":"x","amount":"1.00","currency":"CNY","return_url":"javascript:alert(1)"}),
            "return_url",
        ),
    ] {
        let r = p.post(&shop.key, "/v1/orders", None, &body.to_string());
        assert_eq!(
            (r.status, &r.json()["error"]["param"]),
            (400, &json!(param)),
            "{body}"
        );
    }
    let r = p.post(
        &shop.key,
        "/v1/orders",
        None,
        r#"{"out_trade_no":"o-1","amount":"1.00","currency":"CNY"}"#,
    );
    assert_eq!(r.error_code(), "duplicate_out_trade_no");
    let auth = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/orders/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);

    // A payer short of money: the attempt fails, the order stays open.
    let poor = funded_account(&p, "10.00");
    let v = pay_order(&p, &shop.key, &id, &poor).json();
    assert_eq!(
        (&v["status"], &v["failure_code"], &v["metadata"]["order_id"]),
        (&json!("failed"), &json!("insufficient_funds"), &json!(id))
    );
    assert_eq!(get(&p, &shop.key, &id)["status"], "open");
    // Paid by another.
    let payer = funded_account(&p, "100.00");
    let r = pay_order(&p, &shop.key, &id, &payer);
    assert_eq!(r.status, 201);
    let v = r.json();
    assert_eq!(v["status"], "succeeded");
    let o = get(&p, &shop.key, &id);
    assert_eq!(
        (&o["status"], &o["payment_id"], &o["attempts"]),
        (&json!("paid"), &v["id"], &json!(2))
    );
    assert_eq!(p.balance(&payer), "12.00");
    // Paid once: another attempt and a close are refused, nothing moves.
    let r = pay_order(&p, &shop.key, &id, &payer);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "order_already_paid")
    );
    let r = p.post(&shop.key, &format!("/v1/orders/{id}/close"), None, "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "order_already_paid")
    );
    assert_eq!(p.balance(&payer), "12.00");

    // Closed unpaid: no payment after.
    let o2 = order(&p, &shop.key, "o-2", "5.00", 900);
    let id2 = o2["id"].as_str().unwrap();
    let r = p.post(&shop.key, &format!("/v1/orders/{id2}/close"), None, "");
    assert_eq!(
        (&r.json()["status"], &r.json()["close_reason"]),
        (&json!("closed"), &json!("closed"))
    );
    let r = pay_order(&p, &shop.key, id2, &payer);
    assert_eq!((r.status, r.error_code().as_str()), (409, "order_closed"));
    assert_eq!(p.balance(&payer), "12.00");
}

#[test]
fn fifty_concurrent_payments_of_one_order_and_a_close_have_exactly_one_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0"}"#);
    let payers: Vec<String> = (0..50).map(|_| funded_account(&p, "100.00")).collect();
    let mut outcomes = Vec::new();
    for round in 0u64..3 {
        let o = order(&p, &shop.key, &format!("race-{round}"), "30.00", 900);
        let id = o["id"].as_str().unwrap().to_string();
        let (pays, close): (Vec<Response>, Response) = std::thread::scope(|s| {
            let handles: Vec<_> = payers
                .iter()
                .map(|payer| {
                    let (p, key, id) = (&p, &shop.key, &id);
                    s.spawn(move || {
                        // Round 0 lets the close go first; the others race it.
                        if round == 0 {
                            std::thread::sleep(std::time::Duration::from_millis(30));
                        }
                        pay_order(p, key, id, payer)
                    })
                })
                .collect();
            let closer = {
                let (p, key, id) = (&p, &shop.key, &id);
                s.spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(
                        (round * 5).saturating_sub(5),
                    ));
                    p.post(key, &format!("/v1/orders/{id}/close"), None, "")
                })
            };
            (
                handles.into_iter().map(|h| h.join().unwrap()).collect(),
                closer.join().unwrap(),
            )
        });
        let succeeded: Vec<&Response> = pays
            .iter()
            .filter(|r| r.status == 201 && r.json()["status"] == "succeeded")
            .collect();
        let final_order = get(&p, &shop.key, &id);
        // Exactly one outcome: paid by one payment (and the close refused), or closed with
        // no payment.
        match final_order["status"].as_str().unwrap() {
            "paid" => {
                assert_eq!(succeeded.len(), 1);
                assert_eq!(final_order["payment_id"], succeeded[0].json()["id"]);
                assert_eq!(close.error_code(), "order_already_paid");
            }
            "closed" => {
                assert!(succeeded.is_empty());
                assert_eq!(close.status, 200);
            }
            other => panic!("order {other}"),
        }
        for r in &pays {
            assert!(
                r.status == 201
                    || (r.status == 409
                        && ["order_already_paid", "order_closed"]
                            .contains(&r.error_code().as_str())),
                "{} {:?}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        outcomes.push(final_order["status"].as_str().unwrap().to_string());
    }
    // Money moved exactly once per paid order.
    let total: i64 = payers.iter().map(|a| cents(&p.balance(a))).sum();
    let paid = outcomes.iter().filter(|o| *o == "paid").count() as i64;
    println!("3 rounds of 50 payments and a close: {outcomes:?}");
    assert_eq!(total, 50 * 10_000 - paid * 3_000);
    assert_eq!(cents(&p.balance(&shop.account)), paid * 3_000);
}

#[test]
fn an_order_expires_by_itself_also_across_a_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = start(&dir);
    let shop = merchant(&p, r#"{"name":"shop"}"#);
    let payer = funded_account(&p, "100.00");
    let o = order(&p, &shop.key, "soon", "1.00", 1);
    let id = o["id"].as_str().unwrap().to_string();
    eventually(10, "the order expires", || {
        get(&p, &shop.key, &id)["status"] == "closed"
    });
    let o = get(&p, &shop.key, &id);
    assert_eq!(o["close_reason"], "expired");
    let r = pay_order(&p, &shop.key, &id, &payer);
    assert_eq!((r.status, r.error_code().as_str()), (409, "order_closed"));

    // Its timer is durable: killed before it fires, the restarted payd closes it.
    let o = order(&p, &shop.key, "across", "1.00", 2);
    let id = o["id"].as_str().unwrap().to_string();
    p.kill9();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let p = start(&dir);
    eventually(10, "the order expires after the restart", || {
        get(&p, &shop.key, &id)["status"] == "closed"
    });
    assert_eq!(get(&p, &shop.key, &id)["close_reason"], "expired");
    assert_eq!(p.balance(&payer), "100.00");
}

/// The order's QR code (`GET /v1/orders/{id}/qr`, SVG), drawn into pixels and decoded by an
/// independent reader (rqrr): it is the order's checkout URL.
#[test]
fn the_qr_code_decodes_to_the_checkout_url() {
    let tmp = tempfile::tempdir().unwrap();
    let p = start(&tmp.path().join("data"));
    let shop = merchant(&p, r#"{"name":"shop"}"#);
    let o = order(&p, &shop.key, "qr-1", "8.80", 900);
    let id = o["id"].as_str().unwrap();
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "GET",
        &format!("/v1/orders/{id}/qr"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    let svg = String::from_utf8(r.body.clone()).unwrap();
    let size = regex_lite::Regex::new(r#"width="(\d+)" height="(\d+)""#)
        .unwrap()
        .captures(&svg)
        .unwrap();
    let (w, h): (usize, usize) = (size[1].parse().unwrap(), size[2].parse().unwrap());
    assert!(w >= 240 && h >= 240, "{w}x{h}");
    let mut dark = vec![false; w * h];
    let rect = regex_lite::Regex::new(r"M(\d+) (\d+)h(\d+)v(\d+)").unwrap();
    for c in rect.captures_iter(&svg) {
        let n = |i: usize| c[i].parse::<usize>().unwrap();
        let (left, top, rw, rh) = (n(1), n(2), n(3), n(4));
        for y in top..top + rh {
            for x in left..left + rw {
                dark[y * w + x] = true;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(
            w,
            h,
            |x, y| if dark[y * w + x] { 0 } else { 255 },
        );
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, o["checkout_url"].as_str().unwrap());
    // Another merchant's order has no QR code for it.
    let other = merchant(&p, r#"{"name":"other"}"#);
    let auth = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/orders/{id}/qr"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);
}
