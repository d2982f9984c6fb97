//! Risk scoring over HTTP against the real payd with a rules file: every payment carries its
//! assessment; velocity abuse and blocklisted IPs are rejected with nothing moved; a large
//! payment in a risky category is held for review and decided by the operator (surviving a
//! restart); rules reload at run time, and a bad file changes nothing.

use crate::common::*;

const RULES: &str = r#"
review_at = 50
reject_at = 80
[[amount]]
category = "gaming"
currency = "CNY"
above = "500.00"
points = 60
[[velocity]]
subject = "payer"
window_secs = 3600
max_count = 3
points = 90
[blocklist]
ips = ["198.51.100.66"]
"#;

fn pay_from(p: &Payd, key: &str, otn: &str, amount: &str, payer: &str, extra: &str) -> Response {
    let body = format!(
        r#"{{"out_trade_no":"{otn}","amount":"{amount}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}{extra}}}"#
    );
    p.post(key, "/v1/payments", None, &body)
}

fn review(p: &Payd, payment: &str, decision: &str) -> Response {
    p.admin(
        "POST",
        &format!("/v1/payments/{payment}/review"),
        &format!(r#"{{"decision":"{decision}"}}"#),
    )
}

#[test]
fn payments_are_scored_rejected_held_and_reviewed() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("risk.toml");
    std::fs::write(&rules, RULES).unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_RISK_RULES_FILE", rules.to_str().unwrap()),
    ];
    let p = Payd::start_in(&dir, &env);
    let shop = merchant(
        &p,
        r#"{"name":"Arcade","fee_rate":"0.01","category":"gaming"}"#,
    );
    let plain = merchant(&p, r#"{"name":"Bakery","fee_rate":"0.01"}"#);
    let payer = funded_account(&p, "2000.00");

    // Every payment carries its assessment.
    let r = pay_from(&p, &plain.key, "ok-1", "10.00", &payer, "").json();
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["risk"]["score"], 0);
    assert_eq!(r["risk"]["decision"], "approve");
    assert_eq!(r["risk"]["reasons"], serde_json::json!([]));

    // A blocklisted IP: rejected, nothing moved.
    let r = pay_from(
        &p,
        &plain.key,
        "ip-1",
        "10.00",
        &payer,
        r#","payer_ip":"198.51.100.66""#,
    )
    .json();
    assert_eq!(
        (r["status"].as_str(), r["failure_code"].as_str()),
        (Some("failed"), Some("risk_rejected"))
    );
    assert_eq!(r["risk"]["reasons"], serde_json::json!(["blocklisted_ip"]));
    assert_eq!(p.balance(&payer), "1990.00");
    let r = pay_from(
        &p,
        &plain.key,
        "ip-2",
        "10.00",
        &payer,
        r#","payer_ip":"not-an-ip""#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_parameter")
    );

    // Large and risky: held for review, nothing moved, not refundable meanwhile.
    let held = pay_from(&p, &shop.key, "big-1", "600.00", &payer, "").json();
    assert_eq!(held["status"], "processing");
    assert_eq!(held["risk"]["decision"], "review");
    assert_eq!(held["risk"]["reasons"], serde_json::json!(["large_amount"]));
    let held_id = held["id"].as_str().unwrap().to_string();
    assert_eq!(p.balance(&payer), "1990.00");
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{held_id}/refunds"),
        None,
        r#"{"out_refund_no":"r1"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "payment_not_refundable")
    );
    // Only the operator decides.
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "POST",
        &format!("/v1/payments/{held_id}/review"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"decision":"approve"}"#,
    );
    assert_eq!(r.status, 401);
    let r = review(&p, &held_id, "maybe");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_parameter")
    );

    // The hold survives a crash; approved after it, the money moves exactly once.
    p.kill9();
    let p = Payd::start_in(&dir, &env);
    let r = review(&p, &held_id, "approve");
    assert_eq!(r.status, 200, "{:?}", r.json());
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["risk"]["review"].as_str()),
        (Some("succeeded"), Some("approve"))
    );
    assert_eq!(p.balance(&payer), "1390.00");
    assert_eq!(p.balance(&shop.account), "594.00");
    let r = review(&p, &held_id, "reject");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "payment_not_in_review")
    );

    // A second held payment, rejected by the operator.
    let held = pay_from(&p, &shop.key, "big-2", "700.00", &payer, "").json();
    assert_eq!(held["status"], "processing");
    let v = review(&p, held["id"].as_str().unwrap(), "reject").json();
    assert_eq!(
        (v["status"].as_str(), v["failure_code"].as_str()),
        (Some("failed"), Some("risk_rejected"))
    );
    assert_eq!(p.balance(&payer), "1390.00");

    // Velocity: a fresh payer's first three attempts within the hour pass; the fourth is
    // over the limit of 3 and rejected. (The memory is in process: a restart empties it.)
    let fresh = funded_account(&p, "100.00");
    for n in 0..3 {
        let r = pay_from(&p, &plain.key, &format!("v-{n}"), "1.00", &fresh, "").json();
        assert_eq!(r["status"], "succeeded", "attempt {n}");
    }
    let r = pay_from(&p, &plain.key, "v-3", "1.00", &fresh, "").json();
    assert_eq!(
        (r["failure_code"].as_str(), r["risk"]["reasons"][0].as_str()),
        (Some("risk_rejected"), Some("velocity_payer_count"))
    );
    assert_eq!(p.balance(&fresh), "97.00");
}

#[test]
fn rules_reload_at_run_time_and_a_bad_file_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("risk.toml");
    std::fs::write(&rules, "review_at = 50\nreject_at = 80\n").unwrap();
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_RISK_RULES_FILE", rules.to_str().unwrap()),
    ];
    let p = Payd::start_in(&tmp.path().join("data"), &env);
    let shop = merchant(&p, r#"{"name":"Shop"}"#);
    let payer = funded_account(&p, "100.00");
    assert_eq!(
        pay_from(&p, &shop.key, "a", "1.00", &payer, "").json()["status"],
        "succeeded"
    );

    std::fs::write(&rules, format!("[blocklist]\naccounts = [\"{payer}\"]\n")).unwrap();
    let r = p.admin("POST", "/v1/risk/rules/reload", "");
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["blocklisted"], 1);
    let r = pay_from(&p, &shop.key, "b", "1.00", &payer, "").json();
    assert_eq!(r["failure_code"], "risk_rejected");

    std::fs::write(&rules, "review_at = 95\nreject_at = 10\n").unwrap();
    let r = p.admin("POST", "/v1/risk/rules/reload", "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_risk_rules")
    );
    // The previous rules still hold.
    let r = pay_from(&p, &shop.key, "c", "1.00", &payer, "").json();
    assert_eq!(r["failure_code"], "risk_rejected");
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "POST",
        "/v1/risk/rules/reload",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 401);

    // A bad rules file refuses to start.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(tmp.path().join("other"))
        .env("RONGPAY_ADMIN_TOKEN", ADMIN)
        .env("RONGPAY_RISK_RULES_FILE", rules.to_str().unwrap())
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("risk_rules_file"));
}
