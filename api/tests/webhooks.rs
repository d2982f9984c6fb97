//! Merchant webhooks (issue #6) against the real payd and a real HTTP receiver: events for
//! every payment and refund state, signed, retried while the receiver fails, listed,
//! resent; and none lost or invented across 20 kill -9 cycles with a receiver that flaps.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// What the receiver does with a delivery.
const UP: u8 = 0;
const FAILING: u8 = 1; // answers 503
const HANGING_UP: u8 = 2; // closes the connection without an answer

#[derive(Clone, Debug)]
struct Delivery {
    event_id: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback: records what it took (answered 2xx) in order.
struct Receiver {
    addr: String,
    mode: Arc<AtomicU8>,
    taken: Arc<Mutex<Vec<Delivery>>>,
    refused: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mode = Arc::new(AtomicU8::new(UP));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let (m, t, r) = (mode.clone(), taken.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, t, r) = (m.clone(), t.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &m, &t, &r);
                });
            }
        });
        Receiver {
            addr,
            mode,
            taken,
            refused,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn taken(&self) -> Vec<Delivery> {
        self.taken.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    mode: &AtomicU8,
    taken: &Mutex<Vec<Delivery>>,
    refused: &Mutex<usize>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some((headers, body)) = read_request(&mut reader)? {
        match mode.load(Ordering::SeqCst) {
            UP => {
                taken.lock().unwrap().push(Delivery {
                    event_id: headers.get("rongpay-event-id").cloned().unwrap_or_default(),
                    signature: headers
                        .get("rongpay-signature")
                        .cloned()
                        .unwrap_or_default(),
                    body: String::from_utf8_lossy(&body).to_string(),
                });
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
            }
            FAILING => {
                *refused.lock().unwrap() += 1;
                out.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")?;
            }
            _ => {
                *refused.lock().unwrap() += 1;
                return Ok(());
            }
        }
    }
    Ok(())
}

fn events(p: &Payd, key: &str) -> Vec<Value> {
    let auth = format!("Bearer {key}");
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let path = if after.is_empty() {
            "/v1/events".to_string()
        } else {
            format!("/v1/events?after={after}")
        };
        let page = p.req("GET", &path, &[("Authorization", &auth)], b"").json();
        let data = page["data"].as_array().unwrap().clone();
        if let Some(last) = data.last() {
            after = last["id"].as_str().unwrap().to_string();
        }
        all.extend(data);
        if page["has_more"] != true {
            return all;
        }
    }
}

#[test]
fn events_are_signed_retried_listed_and_resent() {
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_WEBHOOK_RETRY_MS", "100,100,100,100,100,100"),
        ],
    );
    let shop = merchant(&p, r#"{"name":"Hooked"}"#);
    let quiet = merchant(&p, r#"{"name":"No hooks"}"#);
    let secret = set_endpoint(&p, &shop.key, &rx.url());
    assert!(secret.starts_with("whsec_"));
    let payer = funded_account(&p, "10.00");

    // A payment: one signed payment.succeeded event with the payment as data.
    let pay1 = pay(&p, &shop.key, "w-1", "4.00", &payer).json();
    eventually(10, "the first event", || rx.taken().len() == 1);
    let d = &rx.taken()[0];
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["type"], "payment.succeeded");
    assert_eq!(body["id"], d.event_id.as_str());
    assert_eq!(body["data"]["id"], pay1["id"]);
    assert_eq!(body["data"]["status"], "succeeded");
    assert_eq!(
        d.signature,
        webhook_signature(&secret, &d.signature, &d.body),
        "signed with the secret"
    );
    assert_ne!(
        d.signature,
        webhook_signature("whsec_other", &d.signature, &d.body)
    );

    // The receiver fails: the events wait and are retried, in order, until it takes them.
    rx.mode.store(FAILING, Ordering::SeqCst);
    let pay2 = pay(&p, &shop.key, "w-2", "9.00", &payer).json(); // declined: failed
    assert_eq!(pay2["status"], "failed");
    let auth = format!("Bearer {}", shop.key);
    let id1 = pay1["id"].as_str().unwrap();
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{id1}/refunds"),
        None,
        r#"{"amount":"1.00","out_refund_no":"wr-1"}"#,
    );
    assert_eq!(r.status, 201);
    eventually(10, "retries", || *rx.refused.lock().unwrap() >= 3);
    let listed = events(&p, &shop.key);
    let pending: Vec<_> = listed.iter().filter(|e| e["status"] == "pending").collect();
    assert_eq!(pending.len(), 2, "{listed:?}");
    assert!(pending[0]["attempts"].as_u64().unwrap() >= 1);
    assert!(pending[0]["last_error"].as_str().unwrap().contains("503"));
    rx.mode.store(UP, Ordering::SeqCst);
    eventually(10, "delivery after the receiver is back", || {
        rx.taken().len() == 3
    });
    let kinds: Vec<String> = rx
        .taken()
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(&d.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["payment.succeeded", "payment.failed", "refund.succeeded"]
    );
    eventually(5, "all delivered", || {
        events(&p, &shop.key)
            .iter()
            .all(|e| e["status"] == "delivered")
    });

    // Past the last retry: failed, the queue moves on; resend queues it again.
    rx.mode.store(HANGING_UP, Ordering::SeqCst);
    let pay3 = pay(&p, &shop.key, "w-3", "1.00", &payer).json();
    eventually(10, "given up", || {
        events(&p, &shop.key).last().unwrap()["status"] == "failed"
    });
    let last = events(&p, &shop.key).last().unwrap().clone();
    assert_eq!(last["attempts"], 7, "{last}");
    assert_eq!(last["object_id"], pay3["id"]);
    rx.mode.store(UP, Ordering::SeqCst);
    let r = p.req(
        "POST",
        &format!("/v1/events/{}/resend", last["id"].as_str().unwrap()),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 202, "{:?}", r.json());
    eventually(10, "the resent event", || rx.taken().len() == 4);
    assert_eq!(rx.taken()[3].event_id, last["id"].as_str().unwrap());

    // A merchant without an endpoint has no events; nobody sees another's.
    assert_eq!(pay(&p, &quiet.key, "q-1", "1.00", &payer).status, 201);
    assert!(events(&p, &quiet.key).is_empty());
    let r = p.req(
        "POST",
        &format!("/v1/events/{}/resend", last["id"].as_str().unwrap()),
        &[("Authorization", &format!("Bearer {}", quiet.key))],
        b"",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "resource_not_found")
    );
    let bad = p.req(
        "PUT",
        "/v1/webhook_endpoint",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"url":"ftp://example.com/x"}"#,
    );
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "invalid_parameter")
    );
}

#[test]
fn no_webhook_is_lost_or_invented_across_20_kill9_cycles_with_a_flapping_receiver() {
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // 32 tries 100 ms apart: the flapping never exhausts them.
    let retry = vec!["100"; 32].join(",");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_WEBHOOK_RETRY_MS", retry.as_str()),
        ("RONGPAY_WEBHOOK_POLL_MS", "50"),
    ];
    let p = Payd::start_in(&dir, &env);
    let shop = merchant(&p, r#"{"name":"Flappy"}"#);
    set_endpoint(&p, &shop.key, &rx.url());
    let payer = funded_account(&p, "1000.00");
    drop(p);

    // The receiver flaps: up 100 ms, failing 100 ms, hanging up 100 ms, over and over.
    let flapping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (mode, f) = (rx.mode.clone(), flapping.clone());
    let flapper = std::thread::spawn(move || {
        while f.load(Ordering::SeqCst) {
            for (m, ms) in [(UP, 100), (FAILING, 100), (HANGING_UP, 100)] {
                mode.store(m, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        mode.store(UP, Ordering::SeqCst);
    });

    // What was acknowledged: payment id → the event types it must produce, in order.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n = 0;
    let mut pending_at_kill = Vec::new();
    for cycle in 0..20 {
        let p = Payd::start_in(&dir, &env);
        for _ in 0..5 {
            n += 1;
            // Every fifth asks for more than the payer has: a failed payment.
            let amount = if n % 5 == 0 { "5000.00" } else { "1.00" };
            let r = pay(&p, &shop.key, &format!("f-{n}"), amount, &payer);
            assert_eq!(r.status, 201, "{:?}", r.json());
            let v = r.json();
            let id = v["id"].as_str().unwrap().to_string();
            let kind = format!("payment.{}", v["status"].as_str().unwrap());
            expected.entry(id.clone()).or_default().push(kind);
            if n % 3 == 0 && v["status"] == "succeeded" {
                let r = p.post(
                    &shop.key,
                    &format!("/v1/payments/{id}/refunds"),
                    None,
                    &format!(r#"{{"amount":"0.50","out_refund_no":"r-{n}"}}"#),
                );
                assert_eq!(r.status, 201);
                expected
                    .entry(id)
                    .or_default()
                    .push(format!("refund.{}", r.json()["status"].as_str().unwrap()));
            }
        }
        // Killed while deliveries are in flight (after a varying head start).
        std::thread::sleep(Duration::from_millis(150 + 40 * (cycle % 5)));
        pending_at_kill.push(
            events(&p, &shop.key)
                .iter()
                .filter(|e| e["status"] == "pending")
                .count(),
        );
        p.kill9();
    }
    flapping.store(false, Ordering::SeqCst);
    flapper.join().unwrap();

    // One last start with the receiver up: everything gets there.
    let p = Payd::start_in(&dir, &env);
    let total: usize = expected.values().map(Vec::len).sum();
    eventually(60, "every event delivered", || {
        let listed = events(&p, &shop.key);
        listed.len() == total && listed.iter().all(|e| e["status"] == "delivered")
    });
    let taken = rx.taken();
    let mut first_seen: Vec<(String, String, String)> = Vec::new(); // (payment, type, event)
    let mut seen_ids = BTreeSet::new();
    for d in &taken {
        if !seen_ids.insert(d.event_id.clone()) {
            continue; // at least once: a redelivery after a crash
        }
        let v: Value = serde_json::from_str(&d.body).unwrap();
        let payment = v["data"]["payment_id"]
            .as_str()
            .or_else(|| v["data"]["id"].as_str())
            .unwrap()
            .to_string();
        first_seen.push((
            payment,
            v["type"].as_str().unwrap().to_string(),
            d.event_id.clone(),
        ));
    }
    // None lost, none invented, each payment's events in the order they happened.
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (payment, kind, _) in &first_seen {
        got.entry(payment.clone()).or_default().push(kind.clone());
    }
    let duplicates = taken.len() - seen_ids.len();
    println!(
        "20 kill -9 cycles: {} payments, {total} events expected, {} distinct delivered ({duplicates} redelivered after a crash), receiver refused {} tries; events pending at each kill: {pending_at_kill:?}",
        expected.len(),
        seen_ids.len(),
        rx.refused.lock().unwrap()
    );
    assert_eq!(got, expected);
    assert_eq!(seen_ids.len(), total);
}
