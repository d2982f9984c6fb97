//! payd's JSON logs, read with the `jq` one-liners of docs/ops/LOGS.md (`scripts/logs.sh`):
//! every line is one JSON object; every request has one access line (request id, client,
//! route, status, error code, latency, merchant, payment); a card payment's whole path —
//! the request, the routing, the channel call, the status sync after a timeout, the ledger's
//! and the account actor's work, the webhook delivery — is found by its id; no secret is
//! logged.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::{json, Value};

fn logs(question: &str, log: &Path, arg: Option<&str>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/logs.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(question).arg(log);
    if let Some(a) = arg {
        cmd.arg(a);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "logs.sh {question}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_request_is_one_json_access_line_and_a_payment_is_followed_by_its_id() {
    let sim = Sim::start(&[r#"slow={"timeout_rate":1}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let log = tmp.path().join("payd.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_CHANNEL_TIMEOUT_MS", "300"),
        ("RONGPAY_STATUS_SYNC_MS", "100"),
        ("RONGPAY_LOG", "info,actors=debug"),
    ];
    let mut p = Payd::spawn_with_stderr(&dir, &env, Stdio::from(stderr));
    p.wait_ready();
    channel(&p, "slow", &format!("http://{}", sim.addr("slow")), "0.002");
    let shop = merchant(&p, r#"{"name":"Logged","fee_rate":"0.006"}"#);
    let r = p.req(
        "PUT",
        "/v1/webhook_endpoint",
        &[
            ("Authorization", &format!("Bearer {}", shop.key)),
            ("Content-Type", "application/json"),
        ],
        br#"{"url":"http://127.0.0.1:9/hook"}"#,
    );
    assert_eq!(r.status, 200);
    let card = tokenize(&p, &shop.key, "4111111111111111");
    let paid = card_pay(&p, &shop.key, "l-1", "12.00", &card);
    assert_eq!(paid["status"], "processing", "{paid}");
    let id = paid["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&p, &shop.key, &id)["status"], "succeeded");
    let payer = funded_account(&p, "1.00");
    let declined = pay(&p, &shop.key, "l-2", "5.00", &payer);
    assert_eq!(declined.json()["failure_code"], "insufficient_funds");
    let r = p.req(
        "GET",
        "/v1/payments/pay_nothing",
        &[
            ("Authorization", "Bearer sk_wrong"),
            ("X-Request-Id", "trace-me-42"),
        ],
        b"",
    );
    assert_eq!(
        (r.status, r.header("request-id")),
        (401, Some("trace-me-42"))
    );
    let r = p.req(
        "POST",
        "/v1/payments",
        &[
            ("Authorization", &format!("Bearer {}", shop.key)),
            ("Content-Type", "application/json"),
        ],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    // The webhook's first try (to a closed port) is logged as it happens.
    eventually(10, "the webhook delivery line", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("webhook delivery")
    });
    p.terminate();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["timestamp"].is_string() && l["level"].is_string()));
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    assert!(access.len() >= 10, "{access:?}");
    for a in &access {
        for field in [
            "request_id",
            "client",
            "method",
            "route",
            "status",
            "latency_us",
        ] {
            assert!(!a[field].is_null(), "{field} missing in {a}");
        }
    }
    let first = access
        .iter()
        .find(|a| a["payment_id"] == id.as_str() && a["method"] == "POST")
        .unwrap();
    assert_eq!(
        (&first["route"], &first["status"], &first["merchant"]),
        (&json!("/v1/payments"), &json!(201), &json!(shop.id))
    );

    // docs/ops/LOGS.md's questions.
    let path = logs("payment", &log, Some(&id));
    let messages: Vec<String> = path
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    // In this order; the webhook deliveries and the ledger's line interleave with them.
    let ordered = [
        "channel call",
        "request",
        "status sync resolved the payment",
    ];
    let mut at = 0;
    for m in &messages {
        if at < ordered.len() && m == ordered[at] {
            at += 1;
        }
    }
    assert_eq!(
        at,
        ordered.len(),
        "the path of {id} misses {:?}:\n{path}",
        &ordered[at..]
    );
    for also in ["transfer durable", "webhook delivery"] {
        assert!(
            messages.iter().any(|m| m == also),
            "no {also:?} in the path of {id}:\n{path}"
        );
    }
    assert!(path.contains(r#""outcome":"no_answer""#), "{path}");
    // The first channel call says how the payment was routed (no line of its own).
    assert!(path.contains(r#""ranked":"#), "{path}");
    println!(
        "the path of {id} from the logs ({} lines):\n{path}",
        messages.len()
    );

    let errors = logs("errors", &log, None);
    assert!(errors.contains("401 invalid_credentials"), "{errors}");
    assert!(errors.contains("400 invalid_json"), "{errors}");
    println!("errors by code:\n{errors}");
    let slowest = logs("slowest", &log, Some("3"));
    let latencies: Vec<u64> = slowest
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["latency_us"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(latencies.len(), 3);
    assert!(latencies.windows(2).all(|w| w[0] >= w[1]), "{slowest}");
    let traced = logs("request", &log, Some("trace-me-42"));
    assert!(traced.contains(r#""status":401"#), "{traced}");
    let routes = logs("routes", &log, None);
    assert!(
        routes.lines().any(|l| l.starts_with("/v1/payments\t")),
        "{routes}"
    );
    println!("per route:\n{routes}");

    // Nothing secret: keys, tokens, the card number.
    for secret in [shop.key.as_str(), ADMIN, "4111111111111111"] {
        assert!(!text.contains(secret), "the log holds a secret");
    }
}
