//! The channel simulator (`channel-sim`) as a real process over HTTP: idempotent charges,
//! status queries, refunds within the charge, its own record, technical errors that charge
//! nothing, declines, a channel going down (connection refused) and coming back, timeouts
//! whose outcome is decided and later notified with a valid signature, and its latency.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{json_request, read_response, try_request, Response, Sim};
use serde_json::{json, Value};

fn charge(addr: &str, id: &str, amount: i64, notify: Option<&str>) -> Response {
    json_request(
        addr,
        "POST",
        "/charges",
        &json!({"request_id": id, "amount_minor": amount, "currency": "CNY",
                "instrument": "tok_test", "notify_url": notify}),
    )
}

fn refund(addr: &str, id: &str, charge: &str, amount: i64) -> Value {
    let r = json_request(
        addr,
        "POST",
        "/refunds",
        &json!({"request_id": id, "charge_request_id": charge, "amount_minor": amount}),
    );
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn charges_are_idempotent_refunds_bounded_and_recorded() {
    let sim = Sim::start(&["bank_a"]);
    let a = sim.addr("bank_a");
    let first = charge(&a, "c1", 10_000, None);
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["status"], "succeeded");
    // The same request id: the same recorded answer, nothing charged twice.
    assert_eq!(charge(&a, "c1", 10_000, None).json(), first.json());
    let status = try_request(&a, "GET", "/charges/c1", &[], b"").unwrap();
    assert_eq!(status.json()["channel_ref"], first.json()["channel_ref"]);
    assert_eq!(
        try_request(&a, "GET", "/charges/nope", &[], b"")
            .unwrap()
            .status,
        404
    );

    assert_eq!(refund(&a, "r1", "c1", 6_000)["status"], "succeeded");
    assert_eq!(refund(&a, "r1", "c1", 6_000)["status"], "succeeded"); // replay
    let over = refund(&a, "r2", "c1", 4_001);
    assert_eq!(
        (over["status"].as_str(), over["decline_reason"].as_str()),
        (Some("declined"), Some("exceeds_charge"))
    );
    assert_eq!(refund(&a, "r3", "c1", 4_000)["status"], "succeeded");
    assert_eq!(
        refund(&a, "r4", "nope", 1)["decline_reason"],
        "unknown_charge"
    );
    let status = try_request(&a, "GET", "/charges/c1", &[], b"")
        .unwrap()
        .json();
    assert_eq!(status["refunded_minor"], 10_000);

    let kinds: Vec<(String, String)> = sim
        .records("bank_a")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["request_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("charge", "c1"),
        ("refund", "r1"),
        ("refund", "r2"),
        ("refund", "r3"),
        ("refund", "r4"),
    ]
    .iter()
    .map(|(k, i)| (k.to_string(), i.to_string()))
    .collect();
    assert_eq!(kinds, expect);

    // Bad settings are refused and change nothing.
    let r = json_request(
        &sim.control,
        "PUT",
        "/_sim/channels/bank_a",
        &json!({"error_rate": 2}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(sim.put("bank_a", json!({}))["error_rate"], 0.0);
}

#[test]
fn errors_charge_nothing_declines_are_final_and_down_refuses_connections() {
    let sim = Sim::start(&[
        r#"flaky={"error_rate":1}"#,
        r#"strict={"decline_rate":1}"#,
        "bank",
    ]);
    let flaky = sim.addr("flaky");
    for i in 0..5 {
        let r = charge(&flaky, &format!("e{i}"), 100, None);
        assert_eq!(r.status, 503);
    }
    assert!(
        sim.records("flaky").is_empty(),
        "a technical error recorded a charge"
    );
    // Once healthy, the same request ids go through (they were never charged).
    sim.put("flaky", json!({"error_rate": 0}));
    assert_eq!(
        charge(&flaky, "e0", 100, None).json()["status"],
        "succeeded"
    );

    let strict = sim.addr("strict");
    let d = charge(&strict, "d1", 100, None).json();
    assert_eq!(
        (d["status"].as_str(), d["decline_reason"].as_str()),
        (Some("declined"), Some("do_not_honor"))
    );
    sim.put("strict", json!({"decline_rate": 0}));
    assert_eq!(
        charge(&strict, "d1", 100, None).json()["status"],
        "declined"
    );

    let bank = sim.addr("bank");
    assert_eq!(charge(&bank, "b1", 100, None).status, 200);
    sim.put("bank", json!({"down": true}));
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect(&bank).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    sim.put("bank", json!({"down": false}));
    let back = charge(&bank, "b1", 100, None);
    assert_eq!(back.json()["status"], "succeeded");
    assert_eq!(sim.records("bank").len(), 1);
}

/// Accepts one HTTP request, answers 200, returns (headers, body).
fn receive_one(listener: &TcpListener) -> (Vec<(String, String)>, Vec<u8>) {
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        let l = l.trim_end().to_string();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    (headers, body)
}

#[test]
fn a_timeout_is_decided_queryable_and_notified_with_a_valid_signature() {
    let sim = Sim::start(&[r#"slow={"timeout_rate":1,"notify_delay_ms":300}"#]);
    let view = sim.put("slow", json!({}));
    let secret = view["secret"].as_str().unwrap().to_string();
    let addr = sim.addr("slow");
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let notify_url = format!("http://{}/notify", receiver.local_addr().unwrap());

    // The caller gives up without an answer: outcome unknown to it.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let body = json!({"request_id": "t1", "amount_minor": 700, "currency": "CNY",
                      "instrument": "tok_test", "notify_url": notify_url})
    .to_string();
    write!(
        stream,
        "POST /charges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    assert!(
        read_response(stream).is_err(),
        "a timed-out charge answered"
    );

    // The channel did decide it: a status query says so, and so does the notification.
    let status = try_request(&addr, "GET", "/charges/t1", &[], b"")
        .unwrap()
        .json();
    assert_eq!(status["status"], "succeeded");
    let (headers, body) = receive_one(&receiver);
    let notification: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(notification["channel"], "slow");
    assert_eq!(notification["charge"], status);
    let signature = headers
        .iter()
        .find(|(k, _)| k == "channel-signature")
        .map(|(_, v)| v.clone())
        .expect("a signature header");
    let t: u64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        services::signature::sign(secret.as_bytes(), t, &body)
    );
    assert_ne!(
        signature,
        services::signature::sign(b"another secret", t, &body)
    );
}

#[test]
fn answers_take_about_the_configured_latency() {
    let sim = Sim::start(&[r#"far={"latency_ms":40}"#]);
    let addr = sim.addr("far");
    let mut took: Vec<Duration> = (0..15)
        .map(|i| {
            let started = Instant::now();
            assert_eq!(charge(&addr, &format!("l{i}"), 100, None).status, 200);
            started.elapsed()
        })
        .collect();
    took.sort();
    let median = took[took.len() / 2];
    println!("median {median:?}, min {:?}, max {:?}", took[0], took[14]);
    // Log-normal around 40 ms (σ = 0.3): the median of 15 lands well inside this.
    assert!(median >= Duration::from_millis(25) && median <= Duration::from_millis(90));
}
