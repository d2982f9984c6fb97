//! The real payd over HTTP: health, auth, errors, accounts and deposits, bad inputs, restart.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::*;

fn create_account(p: &Payd, body: &str) -> serde_json::Value {
    let r = p.admin("POST", "/v1/accounts", body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn health_readiness_and_metrics_need_no_token() {
    let p = Payd::start();
    assert_eq!(p.req("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(p.req("GET", "/readyz", &[], b"").json()["status"], "ready");
    let m = p.req("GET", "/metrics", &[], b"");
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("rongpay_ready 1"), "{text}");
    assert!(text.contains("# HELP rongpay_wal_last_seq"), "{text}");
}

#[test]
fn credentials_routes_and_methods_answer_in_the_error_shape() {
    let p = Payd::start();
    let r = p.req(
        "POST",
        "/v1/accounts",
        &[("Content-Type", "application/json")],
        br#"{"currency":"CNY"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_credentials")
    );
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = p.req(
        "GET",
        "/v1/accounts/acct_00000000000000000000000000000001",
        &[("Authorization", "Bearer wrong-token-wrong-token")],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = p.req(
        "GET",
        "/v1/accounts/x",
        &[("Authorization", "Basic abc")],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = p.admin("GET", "/v1/nothing-here", "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "route_not_found")
    );
    let r = p.admin("DELETE", "/v1/accounts", "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (405, "method_not_allowed")
    );
    let r = p.req("POST", "/healthz", &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn accounts_and_deposits_round_trip_exactly() {
    let p = Payd::start();
    let a = create_account(
        &p,
        r#"{"currency":"CNY","owner":"alice","credit_limit":"10.50"}"#,
    );
    assert_eq!(a["currency"], "CNY");
    assert_eq!(a["balance"], "0.00");
    assert_eq!(a["credit_limit"], "10.50");
    assert_eq!(a["available"], "10.50");
    assert_eq!(a["status"], "active");
    assert_eq!(a["owner"], "alice");
    let id = a["id"].as_str().unwrap();
    assert!(id.starts_with("acct_"));

    let d = p.admin(
        "POST",
        &format!("/v1/accounts/{id}/deposits"),
        r#"{"amount":"100.05","reference":"bank-1"}"#,
    );
    assert_eq!(d.status, 201);
    let d = d.json();
    assert!(d["id"].as_str().unwrap().starts_with("dep_"));
    assert_eq!(
        (d["amount"].as_str(), d["balance"].as_str()),
        (Some("100.05"), Some("100.05"))
    );
    p.admin(
        "POST",
        &format!("/v1/accounts/{id}/deposits"),
        r#"{"amount":"0.01"}"#,
    );

    let g = p.admin("GET", &format!("/v1/accounts/{id}"), "").json();
    assert_eq!(g["balance"], "100.06");
    assert_eq!(g["available"], "110.56");
    assert_eq!(g["owner"], "alice");

    let jpy = create_account(&p, r#"{"currency":"JPY"}"#);
    assert_eq!(jpy["balance"], "0");
    assert_eq!(jpy["owner"], serde_json::Value::Null);
    let kwd = create_account(&p, r#"{"currency":"KWD"}"#);
    let k = p.admin(
        "POST",
        &format!("/v1/accounts/{}/deposits", kwd["id"].as_str().unwrap()),
        r#"{"amount":"1.234"}"#,
    );
    assert_eq!(k.json()["balance"], "1.234");

    let r = p.admin(
        "GET",
        "/v1/accounts/acct_ffffffffffffffffffffffffffff0001",
        "",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "resource_not_found")
    );
    let r = p.admin("GET", "/v1/accounts/not-an-id", "");
    assert_eq!(r.status, 404);
}

/// Each bad request gets its status and code, and no money moves.
#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let p = Payd::start();
    let a = create_account(&p, r#"{"currency":"CNY"}"#);
    let id = a["id"].as_str().unwrap().to_string();
    p.admin(
        "POST",
        &format!("/v1/accounts/{id}/deposits"),
        r#"{"amount":"50.00"}"#,
    );
    let dep = format!("/v1/accounts/{id}/deposits");
    let json = "application/json";
    let cases: Vec<(&str, &str, &str, &str, u16, &str)> = vec![
        // (path, content type, body, what, status, code)
        (
            &dep,
            json,
            r#"{"amount":"12.345"}"#,
            "over-precise CNY",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1.230"}"#,
            "trailing zero past the scale",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"-1.00"}"#,
            "negative",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"0"}"#,
            "zero",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"0.00"}"#,
            "zero with scale",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1e3"}"#,
            "exponent",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":" 1"}"#,
            "leading space",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1,00"}"#,
            "comma",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":".5"}"#,
            "no integer part",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"10000000000000.01"}"#,
            "above the maximum",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":"99999999999999999999999999999999999"}"#,
            "huge",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":12.5}"#,
            "JSON number",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":null}"#,
            "null",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{"amount":["1"]}"#,
            "array",
            400,
            "invalid_amount",
        ),
        (
            &dep,
            json,
            r#"{}"#,
            "missing amount",
            400,
            "parameter_missing",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1.00","extra":1}"#,
            "unknown field",
            400,
            "invalid_parameter",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1.00","reference":5}"#,
            "reference not a string",
            400,
            "invalid_parameter",
        ),
        (
            &dep,
            json,
            r#"{"amount":"1.00""#,
            "truncated JSON",
            400,
            "invalid_json",
        ),
        (
            &dep,
            json,
            r#"[1,2,3]"#,
            "not an object",
            400,
            "invalid_parameter",
        ),
        (&dep, json, "", "empty body", 400, "invalid_json"),
        (
            &dep,
            json,
            "\u{feff}{\"amount\":\"1.00\"}",
            "byte order mark",
            400,
            "invalid_json",
        ),
        (
            &dep,
            "text/plain",
            r#"{"amount":"1.00"}"#,
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            &dep,
            "application/x-www-form-urlencoded",
            "amount=1.00",
            "form",
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/accounts/acct_00000000000000000000000000000009/deposits",
            json,
            r#"{"amount":"1.00"}"#,
            "unknown account",
            404,
            "resource_not_found",
        ),
        (
            "/v1/accounts/../deposits",
            json,
            r#"{"amount":"1.00"}"#,
            "dot-dot id",
            404,
            "resource_not_found",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":"XXX"}"#,
            "no-minor-unit currency",
            400,
            "invalid_currency",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":"cny"}"#,
            "lower-case currency",
            400,
            "invalid_currency",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":"HRK"}"#,
            "superseded currency",
            400,
            "invalid_currency",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":"CNY","credit_limit":"-5"}"#,
            "negative credit limit",
            400,
            "invalid_amount",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":"CNY","credit_limit":5}"#,
            "numeric credit limit",
            400,
            "invalid_amount",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"currency":123}"#,
            "numeric currency",
            400,
            "invalid_parameter",
        ),
        (
            "/v1/accounts",
            json,
            r#"{"owner":"bob"}"#,
            "missing currency",
            400,
            "parameter_missing",
        ),
    ];
    let auth = format!("Bearer {ADMIN}");
    for (path, ct, body, what, status, code) in &cases {
        let r = p.req(
            "POST",
            path,
            &[("Authorization", &auth), ("Content-Type", ct)],
            body.as_bytes(),
        );
        assert_eq!(
            (r.status, r.error_code()),
            (*status, code.to_string()),
            "{what}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let long_owner = format!(r#"{{"currency":"CNY","owner":"{}"}}"#, "x".repeat(300));
    assert_eq!(
        p.admin("POST", "/v1/accounts", &long_owner).error_code(),
        "invalid_parameter"
    );
    let big = format!(
        r#"{{"amount":"1.00","reference":"{}"}}"#,
        "x".repeat(100_000)
    );
    let r = p.admin("POST", &dep, &big);
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    println!("{} bad inputs answered as specified", cases.len() + 2);

    let g = p.admin("GET", &format!("/v1/accounts/{id}"), "").json();
    assert_eq!(g["balance"], "50.00", "no bad request moved money");
}

#[test]
fn a_stalled_body_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("d"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_BODY_TIMEOUT_MS", "300"),
        ],
    );
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(&p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"curr");
    s.write_all(head.as_bytes()).unwrap();
    let r = read_response(s).unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (408, "body_timeout"));
}

#[test]
fn restart_recovers_balances_and_sigterm_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Payd::start_in(&dir, &env);
    let id = create_account(&p, r#"{"currency":"USD"}"#)["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..5 {
        assert_eq!(
            p.admin(
                "POST",
                &format!("/v1/accounts/{id}/deposits"),
                r#"{"amount":"1.10"}"#
            )
            .status,
            201
        );
    }
    let status = p.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    let p = Payd::start_in(&dir, &env);
    assert_eq!(
        p.admin("GET", &format!("/v1/accounts/{id}"), "").json()["balance"],
        "5.50"
    );
    p.kill9();
    let p = Payd::start_in(&dir, &env);
    assert_eq!(
        p.admin("GET", &format!("/v1/accounts/{id}"), "").json()["balance"],
        "5.50"
    );
}

#[test]
fn admin_token_is_generated_once_with_mode_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = Payd::start_in(&dir, &[]);
    let path = dir.join("admin_token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&path).unwrap();
    let auth = format!("Bearer {token}");
    let r = p.req(
        "POST",
        "/v1/accounts",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"currency":"CNY"}"#,
    );
    assert_eq!(r.status, 201);
    drop(p);
    let _p = Payd::start_in(&dir, &[]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        token,
        "kept across restarts"
    );
}

#[test]
fn a_bad_configuration_is_refused_before_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(tmp.path())
        .env("RONGPAY_BODY_LIMIT_BYTES", "12")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("body_limit_bytes: 12"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--listen", "not-an-address", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen: \"not-an-address\""));
}

#[test]
fn config_file_then_environment_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("payd.toml");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:1\"\nadmin_token = \"{ADMIN}\"\nbody_limit_bytes = 2048\ndefault_currency = \"USD\"\n"),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let body = format!(r#"{{"currency":"CNY","owner":"{}"}}"#, "x".repeat(2_100));
    // The file's token and limit apply; --listen (given by the harness) wins over its listen.
    let p = Payd::start_in(&tmp.path().join("a"), &[("RONGPAY_CONFIG", config)]);
    let r = p.admin("POST", "/v1/accounts", &body);
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    let m = p
        .admin("POST", "/v1/merchants", r#"{"name":"usd shop"}"#)
        .json();
    let acct = p
        .admin(
            "GET",
            &format!("/v1/accounts/{}", m["account_id"].as_str().unwrap()),
            "",
        )
        .json();
    assert_eq!(acct["currency"], "USD", "default_currency from the file");
    drop(p);
    // The environment overrides the file.
    let p = Payd::start_in(
        &tmp.path().join("b"),
        &[
            ("RONGPAY_CONFIG", config),
            ("RONGPAY_BODY_LIMIT_BYTES", "8192"),
        ],
    );
    let r = p.admin("POST", "/v1/accounts", &body);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_parameter"),
        "past the limit: the owner is too long"
    );
    drop(p);
    // A typo in the file is refused, naming it.
    std::fs::write(&file, "body_limit_byte = 10\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(tmp.path().join("c"))
        .env("RONGPAY_CONFIG", config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("body_limit_byte"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
