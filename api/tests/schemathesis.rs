//! schemathesis (from PyPI, installed by scripts/setup.sh) fuzzes the live payd from its own
//! `/openapi.json`: as the operator and as a merchant. Checked: no 5xx, and every answer
//! conforms to the document (status codes, content types, bodies, headers), including 405s
//! for undeclared methods. Positive-data acceptance is not asserted: the schema cannot say
//! that "12.345" is over-precise for CNY but fine for KWD.

mod common;

use std::process::Command;

use common::*;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method";

/// The schemathesis command: on PATH, or in the scripts directory of the `python3` that
/// scripts/setup.sh installed it with.
fn schemathesis() -> String {
    if Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "schemathesis".to_string();
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .expect("python3 is on PATH");
    format!(
        "{}/schemathesis",
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

fn run(p: &Payd, token: &str) {
    // schemathesis keeps a cache in its working directory: not in the source tree.
    let workdir = tempfile::tempdir().unwrap();
    let out = Command::new(schemathesis())
        .current_dir(workdir.path())
        .args(["run", &format!("http://{}/openapi.json", p.addr)])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--no-color",
        ])
        .output()
        .expect("schemathesis is installed by scripts/setup.sh (pip install schemathesis)");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("generated") || l.contains("failures") || l.contains("passed"))
        .collect();
    println!("schemathesis as {}: {}", &token[..4], summary.join(" | "));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schemathesis_finds_no_server_error_and_no_nonconforming_answer() {
    // With an SMS gateway: without one, one-time codes are a documented 503.
    let sms = SmsSim::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = sms.env();
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Payd::start_in(&tmp.path().join("data"), &env);
    run(&p, ADMIN);
    let m = p
        .admin("POST", "/v1/merchants", r#"{"name":"Fuzz"}"#)
        .json();
    run(&p, m["secret_key"].as_str().unwrap());
}
