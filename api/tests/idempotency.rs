//! Idempotency-Key over HTTP against the real payd: replay, reuse, in flight, scope, restart.

use std::sync::Arc;

use crate::common::*;

fn post(p: &Payd, token: &str, path: &str, key: Option<&str>, body: &str) -> Response {
    p.post(token, path, key, body)
}

fn balance(p: &Payd, account: &str) -> String {
    p.balance(account)
}

struct World {
    key: String,
    payer: String,
}

fn world(p: &Payd) -> World {
    let m = post(p, ADMIN, "/v1/merchants", None, r#"{"name":"Idem"}"#).json();
    let payer = post(p, ADMIN, "/v1/accounts", None, r#"{"currency":"CNY"}"#).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        post(
            p,
            ADMIN,
            &format!("/v1/accounts/{payer}/deposits"),
            None,
            r#"{"amount":"100.00"}"#
        )
        .status,
        201
    );
    World {
        key: m["secret_key"].as_str().unwrap().to_string(),
        payer,
    }
}

fn payment(payer: &str, otn: &str, amount: &str) -> String {
    format!(
        r#"{{"out_trade_no":"{otn}","amount":"{amount}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#
    )
}

#[test]
fn same_key_same_body_replays_the_first_answer_once() {
    let p = Payd::start();
    let w = world(&p);
    let body = payment(&w.payer, "o-1", "10.00");
    let first = post(&p, &w.key, "/v1/payments", Some("key-1"), &body);
    assert_eq!(first.status, 201);
    assert_eq!(first.header("Idempotent-Replayed"), None);
    let again = post(&p, &w.key, "/v1/payments", Some("key-1"), &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.body, first.body, "byte for byte the first answer");
    assert_eq!(balance(&p, &w.payer), "90.00", "charged once");
    // The payment as it was answered, not as it is now: a refund since changes the
    // payment, not the replay.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let refund = post(
        &p,
        &w.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"amount":"4.00","out_refund_no":"r-1"}"#,
    );
    assert_eq!(refund.status, 201, "{:?}", refund.json());
    let now = p.admin("GET", &format!("/v1/payments/{id}"), "").json();
    assert_eq!(now["refunded_amount"], "4.00");
    let later = post(&p, &w.key, "/v1/payments", Some("key-1"), &body);
    assert_eq!(
        (later.status, later.header("Idempotent-Replayed")),
        (201, Some("true"))
    );
    assert_eq!(later.body, first.body, "byte for byte the first answer");
    assert_eq!(later.json()["refunded_amount"], "0.00");
    assert_eq!(
        balance(&p, &w.payer),
        "94.00",
        "charged once, refunded once"
    );

    let other = post(
        &p,
        &w.key,
        "/v1/payments",
        Some("key-1"),
        &payment(&w.payer, "o-1", "11.00"),
    );
    assert_eq!(
        (other.status, other.error_code().as_str()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(other.json()["error"]["type"], "idempotency_error");

    // A declined payment is replayed as the same declined payment.
    let big = payment(&w.payer, "o-2", "1000.00");
    let declined = post(&p, &w.key, "/v1/payments", Some("key-2"), &big);
    assert_eq!(declined.json()["status"], "failed");
    assert_eq!(
        post(&p, &w.key, "/v1/payments", Some("key-2"), &big).body,
        declined.body
    );

    for bad in ["", &"k".repeat(256), "has space", "tab\tkey"] {
        let r = post(
            &p,
            &w.key,
            "/v1/payments",
            Some(bad),
            &payment(&w.payer, "o-3", "1.00"),
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_idempotency_key"),
            "{bad:?}"
        );
    }
    assert_eq!(balance(&p, &w.payer), "94.00");
}

#[test]
fn keys_are_scoped_to_the_caller_and_survive_kill9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_in(&dir, &env);
    let a = world(&p);
    let b = world(&p);
    let ra = post(
        &p,
        &a.key,
        "/v1/payments",
        Some("shared"),
        &payment(&a.payer, "x", "1.00"),
    );
    let rb = post(
        &p,
        &b.key,
        "/v1/payments",
        Some("shared"),
        &payment(&b.payer, "x", "2.00"),
    );
    assert_eq!((ra.status, rb.status), (201, 201));
    assert_eq!(
        rb.header("Idempotent-Replayed"),
        None,
        "another merchant's key is another key"
    );

    let dep = format!("/v1/accounts/{}/deposits", a.payer);
    let d1 = post(&p, ADMIN, &dep, Some("dep-1"), r#"{"amount":"5.00"}"#);
    let m1 = post(
        &p,
        ADMIN,
        "/v1/merchants",
        Some("mch-1"),
        r#"{"name":"Once"}"#,
    );
    assert!(m1.json()["secret_key"].is_string());
    p.kill9();

    let p = Payd::start_in(&dir, &env);
    // Replayed once the store's key filter is built (storage::keyfilter): the replay's
    // lookup of its idempotency record goes through the filter, not around it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&p.req("GET", "/metrics", &[], b"").body)
        .lines()
        .any(|l| l.starts_with("rongpay_store_key_filter_bytes ") && !l.ends_with(" 0"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the key filter was never built"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let again = post(
        &p,
        &a.key,
        "/v1/payments",
        Some("shared"),
        &payment(&a.payer, "x", "1.00"),
    );
    assert_eq!(
        (again.status, again.header("Idempotent-Replayed")),
        (201, Some("true"))
    );
    assert_eq!(again.body, ra.body);
    let d2 = post(&p, ADMIN, &dep, Some("dep-1"), r#"{"amount":"5.00"}"#);
    assert_eq!(d2.body, d1.body);
    assert_eq!(balance(&p, &a.payer), "104.00", "deposited once, paid once");
    let m2 = post(
        &p,
        ADMIN,
        "/v1/merchants",
        Some("mch-1"),
        r#"{"name":"Once"}"#,
    )
    .json();
    assert_eq!(m2["id"], m1.json()["id"]);
    assert!(
        m2["secret_key"].is_null(),
        "the secret is never stored, so never replayed"
    );
}

#[test]
fn concurrent_requests_with_one_key_apply_once() {
    let p = Arc::new(Payd::start());
    let w = world(&p);
    let body = payment(&w.payer, "race", "3.00");
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (p, key, body) = (Arc::clone(&p), w.key.clone(), body.clone());
            std::thread::spawn(move || post(&p, &key, "/v1/payments", Some("race-key"), &body))
        })
        .collect();
    let answers: Vec<Response> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let fresh = answers
        .iter()
        .filter(|r| r.status == 201 && r.header("Idempotent-Replayed").is_none())
        .count();
    let replayed = answers
        .iter()
        .filter(|r| r.header("Idempotent-Replayed") == Some("true"))
        .count();
    let in_use = answers.iter().filter(|r| r.status == 409).count();
    assert_eq!(fresh, 1, "exactly one request ran");
    assert_eq!(fresh + replayed + in_use, 16);
    for r in answers.iter().filter(|r| r.status == 409) {
        assert_eq!(r.error_code(), "idempotency_key_in_use");
    }
    assert_eq!(balance(&p, &w.payer), "97.00");
}
