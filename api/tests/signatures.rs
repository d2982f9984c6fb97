//! Signed merchant requests and credential rotation (issue #6) against the real payd:
//! `Rongpay-Signature` checked before any handler runs, replays, skew and tampering refused
//! with precise codes, secrets rotated with an overlap, revoked, sealed at rest and kept
//! across a restart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use serde_json::Value;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request by merchant key `key`, signed with `(secret, t, nonce)` (or not signed).
fn signed(
    p: &Payd,
    key: &str,
    sig: Option<(&str, u64, &str)>,
    method: &str,
    target: &str,
    body: &str,
) -> Response {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Authorization", auth.clone()),
        ("Content-Type", "application/json".to_string()),
    ];
    if let Some((secret, t, nonce)) = sig {
        headers.push((
            "Rongpay-Signature",
            api::signing::sign(secret.as_bytes(), t, nonce, method, target, body.as_bytes()),
        ));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.req(method, target, &headers, body.as_bytes())
}

fn payment_body(otn: &str, payer: &str) -> String {
    format!(
        r#"{{"out_trade_no":"{otn}","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#
    )
}

fn new_secret(p: &Payd, merchant: &str, kind: &str, overlap: u64) -> (String, Value) {
    let r = p.admin(
        "POST",
        &format!("/v1/merchants/{merchant}/{kind}"),
        &format!(r#"{{"overlap_seconds":{overlap}}}"#),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let v = r.json();
    (v["secret"].as_str().unwrap().to_string(), v)
}

#[test]
fn signed_requests_replays_skew_tampering_rotation_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = Payd::start_in(&dir, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let shop = merchant(&p, r#"{"name":"Signer"}"#);
    let payer = funded_account(&p, "100.00");
    let get = "/v1/payments?out_trade_no=none";

    // Requiring signatures needs a signing secret first.
    let r = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", shop.id),
        r#"{"require_signature":true}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "no_signing_secret")
    );
    let (ss1, v) = new_secret(&p, &shop.id, "signing_secrets", 86_400);
    assert!(ss1.starts_with("ss_"), "{v}");
    assert_eq!(v["number"], 1);

    // Not required yet: unsigned requests pass, but a signature that is sent is checked.
    assert_eq!(signed(&p, &shop.key, None, "GET", get, "").status, 200);
    let r = signed(
        &p,
        &shop.key,
        Some(("ss_wrong", now_s(), "n0")),
        "GET",
        get,
        "",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_signature")
    );

    let r = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", shop.id),
        r#"{"require_signature":true}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["require_signature"], true);

    // Required: unsigned is refused, signed goes through.
    let r = signed(&p, &shop.key, None, "GET", get, "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_signature")
    );
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let t = now_s();
    assert_eq!(
        signed(&p, &shop.key, Some((&ss1, t, "n1")), "GET", get, "").status,
        200
    );
    let body = payment_body("o-1", &payer);
    let r = signed(
        &p,
        &shop.key,
        Some((&ss1, t, "n2")),
        "POST",
        "/v1/payments",
        &body,
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(p.balance(&payer), "99.00");

    // The same signed request again: nonce_reused, and nothing moves.
    let r = signed(
        &p,
        &shop.key,
        Some((&ss1, t, "n2")),
        "POST",
        "/v1/payments",
        &body,
    );
    assert_eq!((r.status, r.error_code().as_str()), (401, "nonce_reused"));
    // Outside ±300 s either way: signature_expired. Ten seconds past the window, from a
    // fresh clock reading: `t` is older by the requests above, and on a slow run a second
    // of that brought `t + 301` back inside it.
    let now = now_s();
    for skew in [now - 310, now + 310] {
        let body = payment_body("o-skew", &payer);
        let r = signed(
            &p,
            &shop.key,
            Some((&ss1, skew, "n-skew")),
            "POST",
            "/v1/payments",
            &body,
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (401, "signature_expired")
        );
    }
    // A body or path other than the one signed: invalid_signature.
    let auth = format!("Bearer {}", shop.key);
    let header = api::signing::sign(
        ss1.as_bytes(),
        t,
        "n3",
        "POST",
        "/v1/payments",
        payment_body("o-2", &payer).as_bytes(),
    );
    let tampered = payment_body("o-2", &payer).replace("1.00", "9.00");
    let r = p.req(
        "POST",
        "/v1/payments",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Rongpay-Signature", &header),
        ],
        tampered.as_bytes(),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_signature")
    );
    let r = signed(&p, &shop.key, Some((&ss1, t, "n4")), "GET", get, "");
    assert_eq!(r.status, 200);
    let r = p.req(
        "GET",
        "/v1/payments?out_trade_no=other",
        &[
            ("Authorization", &auth),
            (
                "Rongpay-Signature",
                &api::signing::sign(ss1.as_bytes(), t, "n5", "GET", get, b""),
            ),
        ],
        b"",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_signature")
    );
    assert_eq!(p.balance(&payer), "99.00", "no refused request moved money");

    // Rotation with a 2 s overlap: both secrets work, then only the new one.
    let (ss2, v) = new_secret(&p, &shop.id, "signing_secrets", 2);
    assert_eq!(v["number"], 2);
    let ok = |secret: &str, nonce: &str| {
        signed(
            &p,
            &shop.key,
            Some((secret, now_s(), nonce)),
            "GET",
            get,
            "",
        )
        .status
    };
    assert_eq!((ok(&ss1, "r1"), ok(&ss2, "r2")), (200, 200));
    std::thread::sleep(Duration::from_millis(2_200));
    assert_eq!((ok(&ss1, "r3"), ok(&ss2, "r4")), (401, 200));

    // The secret key, revoked at once by a rotation with no overlap.
    let (sk2, v) = new_secret(&p, &shop.id, "secret_keys", 0);
    assert!(sk2.starts_with("sk_"), "{v}");
    let r = signed(&p, &shop.key, Some((&ss2, now_s(), "k1")), "GET", get, "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_credentials")
    );
    let r = signed(&p, &sk2, Some((&ss2, now_s(), "k2")), "GET", get, "");
    assert_eq!(r.status, 200);
    let m = p
        .admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json();
    let active = |list: &Value| -> Vec<bool> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["active"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(active(&m["secret_keys"]), vec![false, true], "{m}");
    assert_eq!(active(&m["signing_secrets"]), vec![false, true], "{m}");

    // Across a restart: the setting, the sealed secret and the revocation hold.
    p.terminate();
    let p = Payd::start_in(&dir, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let r = signed(&p, &sk2, None, "GET", get, "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_signature")
    );
    let r = signed(&p, &sk2, Some((&ss2, now_s(), "after-1")), "GET", get, "");
    assert_eq!(r.status, 200);
    let r = signed(
        &p,
        &shop.key,
        Some((&ss2, now_s(), "after-2")),
        "GET",
        get,
        "",
    );
    assert_eq!(r.status, 401);
    // Secrets are at rest only sealed (signing) or hashed (keys).
    p.terminate();
    let mut found = Vec::new();
    for (name, bytes) in files(&dir) {
        for secret in [&ss1, &ss2, &sk2, &shop.key] {
            if contains(&bytes, secret) {
                found.push(name.clone());
            }
        }
    }
    assert!(found.is_empty(), "secrets in clear in {found:?}");
}
