//! Anti-abuse rate limits (issue #6) against the real payd: per merchant key, per payer
//! account and per source IP; a 429 carries `Retry-After`, changes nothing, and leaves the
//! others (and the health probes) served.

use std::time::Duration;

use crate::common::*;

fn get_as(p: &Payd, key: &str, path: &str) -> Response {
    let auth = format!("Bearer {key}");
    p.req("GET", path, &[("Authorization", &auth)], b"")
}

#[test]
fn a_merchant_key_over_its_rate_gets_429_with_retry_after_and_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_RATE_MERCHANT_PER_S", "1"),
            ("RONGPAY_RATE_MERCHANT_BURST", "3"),
        ],
    );
    let busy = merchant(&p, r#"{"name":"Busy"}"#);
    let calm = merchant(&p, r#"{"name":"Calm"}"#);
    let path = "/v1/payments?out_trade_no=nothing";
    let statuses: Vec<u16> = (0..5).map(|_| get_as(&p, &busy.key, path).status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let r = get_as(&p, &busy.key, path);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(r.error_code(), "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    assert_eq!(
        get_as(&p, &calm.key, path).status,
        200,
        "keys are limited apart"
    );
    // The operator is not a merchant key.
    assert_eq!(
        p.admin("GET", &format!("/v1/accounts/{}", busy.account), "")
            .status,
        200
    );
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        get_as(&p, &busy.key, path).status,
        200,
        "one more a second later"
    );
}

#[test]
fn a_payer_over_its_rate_is_refused_and_nothing_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_RATE_PAYER_PER_S", "1"),
            ("RONGPAY_RATE_PAYER_BURST", "2"),
        ],
    );
    let shop = merchant(&p, r#"{"name":"Shop"}"#);
    let payer = funded_account(&p, "100.00");
    let other = funded_account(&p, "100.00");
    assert_eq!(pay(&p, &shop.key, "a", "1.00", &payer).status, 201);
    assert_eq!(pay(&p, &shop.key, "b", "1.00", &payer).status, 201);
    let r = pay(&p, &shop.key, "c", "1.00", &payer);
    assert_eq!((r.status, r.error_code().as_str()), (429, "rate_limited"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        p.balance(&payer),
        "98.00",
        "the refused payment moved nothing"
    );
    let auth = format!("Bearer {}", shop.key);
    let none = p
        .req(
            "GET",
            "/v1/payments?out_trade_no=c",
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(
        none["data"].as_array().unwrap().len(),
        0,
        "and created nothing"
    );
    assert_eq!(pay(&p, &shop.key, "d", "1.00", &other).status, 201);
    // The same order, retried after Retry-After, goes through once.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(pay(&p, &shop.key, "c", "1.00", &payer).status, 201);
    assert_eq!(p.balance(&payer), "97.00");
}

#[test]
fn one_source_ip_over_its_rate_is_refused_while_health_probes_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_RATE_IP_PER_S", "1"),
            ("RONGPAY_RATE_IP_BURST", "20"),
        ],
    );
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let r = p.req("GET", "/v1/payments/pay_nope", &[], b"");
        *statuses.entry(r.status).or_insert(0) += 1;
        if r.status == 429 {
            assert_eq!(r.error_code(), "rate_limited");
            assert!(r.header("retry-after").is_some());
        }
    }
    // 20 at once (401: no token), then refused before anything else is looked at.
    assert_eq!(
        statuses,
        [(401, 20), (429, 20)].into_iter().collect(),
        "{statuses:?}"
    );
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(p.req("GET", path, &[], b"").status, 200, "{path}");
    }
}
