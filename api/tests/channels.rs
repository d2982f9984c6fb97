//! Channel configuration over HTTP against the real payd: create, list with live state,
//! change, durable across a crash, and every bad request refused without a change.

use crate::common::*;
use serde_json::Value;

fn create(p: &Payd, body: &str, key: Option<&str>) -> Response {
    p.post(ADMIN, "/v1/channels", key, body)
}

fn channel(name: &str, priority: u32) -> String {
    format!(
        r#"{{"name":"{name}","endpoint":"http://127.0.0.1:9101","methods":["bank_card"],"currency":"CNY",
            "fee_rate":"0.003","fee_fixed":"0.10","min_amount":"0.01","max_amount":"50000.00",
            "daily_limit":"1000000.00","priority":{priority}}}"#
    )
}

fn list(p: &Payd) -> Vec<Value> {
    let r = p.admin("GET", "/v1/channels", "");
    assert_eq!(r.status, 200);
    r.json()["data"].as_array().unwrap().clone()
}

#[test]
fn channels_are_configured_listed_changed_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_in(&dir, &env);
    assert!(list(&p).is_empty());

    let b = create(&p, &channel("bank_b", 2), Some("ch-1"));
    assert_eq!(b.status, 201, "{:?}", String::from_utf8_lossy(&b.body));
    let replay = create(&p, &channel("bank_b", 2), Some("ch-1"));
    assert_eq!(
        (replay.header("Idempotent-Replayed"), &replay.body),
        (Some("true"), &b.body)
    );
    let a = create(&p, &channel("bank_a", 1), None).json();
    assert_eq!(a["fee_rate"], "0.003");
    assert_eq!(a["fee_fixed"], "0.10");
    assert_eq!(a["max_amount"], "50000.00");
    assert_eq!(a["enabled"], true);
    assert_eq!(a["health"]["breaker"], "closed");
    assert_eq!(a["health"]["success_rate"], "1.0000");
    assert_eq!(a["health"]["volume_today"], "0.00");

    let names: Vec<_> = list(&p)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["bank_a", "bank_b"]);

    let id = a["id"].as_str().unwrap();
    let r = p.admin(
        "PATCH",
        &format!("/v1/channels/{id}"),
        r#"{"enabled":false,"fee_rate":"0.0025","priority":7}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        (r.json()["enabled"].as_bool(), r.json()["fee_rate"].as_str()),
        (Some(false), Some("0.0025"))
    );

    // Bad requests: precise codes, nothing changed.
    for (body, status, code) in [
        (channel("bank_a", 1), 409, "duplicate_channel_name"),
        (channel("Bank A", 1), 400, "invalid_parameter"),
        (
            channel("c1", 1).replace("http://127.0.0.1:9101", "ftp://x"),
            400,
            "invalid_parameter",
        ),
        (
            channel("c2", 1).replace(r#"["bank_card"]"#, r#"["cash"]"#),
            400,
            "invalid_parameter",
        ),
        (
            channel("c3", 1).replace(r#""0.003""#, r#""1.5""#),
            400,
            "invalid_parameter",
        ),
        (
            channel("c4", 1).replace(r#""0.01""#, r#""60000.00""#),
            400,
            "invalid_parameter",
        ),
        (
            channel("c5", 1).replace(r#""0.10""#, r#""0.101""#),
            400,
            "invalid_amount",
        ),
        (
            channel("c6", 1).replace(r#""CNY""#, r#""XXX""#),
            400,
            "invalid_currency",
        ),
        (
            channel("c7", 1).replace(r#","priority":1"#, r#","priority":"high""#),
            400,
            "invalid_parameter",
        ),
    ] {
        let r = create(&p, &body, None);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
    }
    for (path, body, status, code) in [
        (
            format!("/v1/channels/{id}"),
            r#"{"min_amount":"90000.00"}"#,
            400,
            "invalid_parameter",
        ),
        (
            format!("/v1/channels/{id}"),
            r#"{"inflight_max":0}"#,
            400,
            "invalid_parameter",
        ),
        (
            format!("/v1/channels/{id}"),
            r#"{"name":"renamed"}"#,
            400,
            "invalid_parameter",
        ),
        (
            "/v1/channels/chn_nope".to_string(),
            r#"{"enabled":true}"#,
            404,
            "resource_not_found",
        ),
    ] {
        let r = p.admin("PATCH", &path, body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{path} {body}"
        );
    }
    let shop = merchant(&p, r#"{"name":"NotAnOperator"}"#);
    let auth = format!("Bearer {}", shop.key);
    assert_eq!(
        p.req("GET", "/v1/channels", &[("Authorization", &auth)], b"")
            .status,
        401
    );
    assert_eq!(list(&p).len(), 2);

    // Configuration is durable: a crash keeps it; live state starts fresh.
    p.kill9();
    let p = Payd::start_in(&dir, &env);
    let after = list(&p);
    assert_eq!(after.len(), 2);
    let a = after.iter().find(|c| c["name"] == "bank_a").unwrap();
    assert_eq!(
        (
            a["enabled"].as_bool(),
            a["priority"].as_u64(),
            a["fee_rate"].as_str()
        ),
        (Some(false), Some(7), Some("0.0025"))
    );
    let r = create(&p, &channel("bank_a", 1), None);
    assert_eq!(r.status, 409, "names stay unique across restarts");
}

#[test]
fn channels_from_the_config_file_are_added_once_then_left_to_the_admin_api() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = tmp.path().join("payd.toml");
    let file = |fee: &str| {
        format!(
            r#"
[[channels]]
name = "filed"
endpoint = "http://127.0.0.1:9101"
methods = ["bank_card"]
currency = "CNY"
fee_rate = "{fee}"
max_amount = "50000.00"
daily_limit = "1000000.00"
"#
        )
    };
    std::fs::write(&config, file("0.003")).unwrap();
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_with_config(&dir, &env, &config);
    let all = list(&p);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0]["name"].as_str(), all[0]["fee_rate"].as_str()),
        (Some("filed"), Some("0.003"))
    );
    let id = all[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        p.admin("PATCH", &format!("/v1/channels/{id}"), r#"{"priority":5}"#)
            .status,
        200
    );
    assert!(p.terminate().success());

    // Restarted with a changed file: the channel exists, so the admin API's state stands.
    std::fs::write(&config, file("0.009")).unwrap();
    let p = Payd::start_with_config(&dir, &env, &config);
    let all = list(&p);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0]["fee_rate"].as_str(), all[0]["priority"].as_u64()),
        (Some("0.003"), Some(5))
    );
    assert!(p.terminate().success());

    // A bad channel in the file stops payd with the channel named.
    std::fs::write(&config, file("2.5").replace("filed", "broken")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .arg("--config")
        .arg(&config)
        .args(["--listen", &free_addr()])
        .env("RONGPAY_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"broken\""),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression (#13 item 7): the OpenAPI document calls these fields integers, and JSON
/// Schema's integers include `220.0`; schemathesis sent such requests and payd refused them.
/// An integral float is the integer; a fractional one is still refused, naming the field.
#[test]
fn integer_fields_take_integral_floats_and_refuse_fractions() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let body = channel("bank_f", 2).replace(
        r#""priority":2"#,
        r#""priority":2.0,"weight":3.0,"inflight_max":220.0"#,
    );
    let r = create(&p, &body, None);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    assert_eq!(
        (&c["priority"], &c["weight"], &c["inflight_max"]),
        (&Value::from(2), &Value::from(3), &Value::from(220))
    );
    let fractional = channel("bank_g", 2).replace(r#""priority":2"#, r#""priority":2.5"#);
    let r = create(&p, &fractional, None);
    assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["param"], "priority");
    assert_eq!(list(&p).len(), 1, "the refused channel changed nothing");
}
