//! The audit log (issue #6) against the real payd: every operator action — who, what, when,
//! before and after — kept in its own column family across kill -9, readable by the
//! operator only, with no secret in it.

use crate::common::*;
use serde_json::Value;

fn audit(p: &Payd, query: &str) -> Value {
    let r = p.admin("GET", &format!("/v1/audit{query}"), "");
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json()
}

#[test]
fn operator_actions_are_audited_durably_with_before_and_after() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_in(&dir, &env);
    let account = funded_account(&p, "50.00"); // account.create, deposit.create
    let r = p.admin(
        "PATCH",
        &format!("/v1/accounts/{account}"),
        r#"{"status":"frozen"}"#,
    );
    assert_eq!(r.status, 200);
    let shop = merchant(&p, r#"{"name":"Audited"}"#);
    let r = p.admin(
        "POST",
        &format!("/v1/merchants/{}/signing_secrets", shop.id),
        "{}",
    );
    let signing_secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = p.admin(
        "POST",
        &format!("/v1/merchants/{}/secret_keys", shop.id),
        r#"{"overlap_seconds":0}"#,
    );
    let new_key = r.json()["secret"].as_str().unwrap().to_string();
    let r = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", shop.id),
        r#"{"require_signature":true}"#,
    );
    assert_eq!(r.status, 200);
    let r = p.post(
        ADMIN,
        "/v1/channels",
        None,
        &format!(
            r#"{{"name":"bank","endpoint":"http://{}","methods":["bank_card"],"currency":"CNY","fee_rate":"0.002","max_amount":"50000.00","daily_limit":"1000000.00"}}"#,
            sim.addr("bank")
        ),
    );
    let channel = r.json()["id"].as_str().unwrap().to_string();
    let r = p.admin(
        "PATCH",
        &format!("/v1/channels/{channel}"),
        r#"{"enabled":false}"#,
    );
    assert_eq!(r.status, 200);
    // A merchant's own actions are not operator actions; a merchant cannot read the log.
    let r = p.req(
        "GET",
        "/v1/audit",
        &[("Authorization", &format!("Bearer {new_key}"))],
        b"",
    );
    assert_eq!(r.status, 401);

    // Kept across a crash.
    p.kill9();
    let p = Payd::start_in(&dir, &env);
    let log = audit(&p, "");
    let entries = log["data"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    println!("audit after kill -9: {actions:?}");
    assert_eq!(
        actions,
        vec![
            "account.create",
            "deposit.create",
            "account.update",
            "merchant.create",
            "merchant.rotate_signing_secret",
            "merchant.rotate_secret_key",
            "merchant.update",
            "channel.create",
            "channel.update",
        ]
    );
    for e in entries {
        assert!(e["actor"].as_str().unwrap().starts_with("admin:"), "{e}");
        assert_eq!(e["source_ip"], "127.0.0.1");
        assert!(e["id"].as_str().unwrap().starts_with("aud_"));
        assert!(e["at"].as_str().unwrap().starts_with("20"));
    }
    let frozen = &entries[2];
    assert_eq!(frozen["target"], account.as_str());
    assert_eq!(frozen["before"]["status"], "active");
    assert_eq!(frozen["after"]["status"], "frozen");
    let update = &entries[6];
    assert_eq!(update["before"]["require_signature"], false);
    assert_eq!(update["after"]["require_signature"], true);
    assert_eq!(entries[8]["before"]["enabled"], true);
    assert_eq!(entries[8]["after"]["enabled"], false);
    assert_eq!(entries[3]["after"]["secret_key"], Value::Null);
    let text = log.to_string();
    for secret in [&shop.key, &new_key, &signing_secret, &ADMIN.to_string()] {
        assert!(!text.contains(secret.as_str()), "a secret in the audit log");
    }

    // Filtered and paged.
    let only = audit(&p, "?action=merchant.update");
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let after = entries[6]["id"].as_str().unwrap();
    let rest = audit(&p, &format!("?after={after}"));
    let rest: Vec<&str> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(rest, vec!["channel.create", "channel.update"]);
    let r = p.admin("GET", "/v1/audit?after=nope", "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_parameter")
    );
}
