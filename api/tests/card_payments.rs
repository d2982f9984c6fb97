//! Card payments through channels, against the real payd and the real channel-sim: the
//! cheapest channel is chosen and the money booked (merchant net, position, fees); a
//! channel that is down is failed over and its breaker opens; a decline is final; a charge
//! with no answer stays processing and is resolved by asking the same channel, charged once.

use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

#[test]
fn card_payments_route_fail_over_and_never_charge_twice() {
    let sim = Sim::start(&["cheap", "dear"]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "2000"),
        ],
    );
    let cheap_url = format!("http://{}", sim.addr("cheap"));
    let dear_url = format!("http://{}", sim.addr("dear"));
    channel(&p, "cheap", &cheap_url, "0.002");
    channel(&p, "dear", &dear_url, "0.005");
    let shop = merchant(&p, r#"{"name":"Cards","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");

    // The cheapest channel charges; merchant net of 0.6 %, our position net of its 0.2 %.
    let v = card_pay(&p, &shop.key, "c-1", "100.00", &token);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["payment_method"]["type"], "bank_card");
    assert_eq!(v["payment_method"]["last4"], "1111");
    assert_eq!(v["routing"]["channel"], "cheap");
    assert_eq!(outcomes(&v), vec![("cheap".into(), "charged".into())]);
    assert_eq!(p.balance(&shop.account), "99.40");
    let cheap = channels(&p)
        .into_iter()
        .find(|c| c["name"] == "cheap")
        .unwrap();
    assert_eq!(cheap["position"], "99.80");
    assert_eq!(cheap["health"]["volume_today"], "100.00");
    assert_eq!(sim.records("cheap").len(), 1);

    // Cheap goes down: every payment fails over to dear; after enough failures cheap's
    // breaker opens and it is no longer even tried.
    sim.put("cheap", json!({"down": true}));
    std::thread::sleep(Duration::from_millis(200));
    let v = card_pay(&p, &shop.key, "c-2", "10.00", &token);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(
        outcomes(&v),
        vec![
            ("cheap".into(), "connection_refused".into()),
            ("dear".into(), "charged".into())
        ]
    );
    for n in 3..=25 {
        assert_eq!(
            card_pay(&p, &shop.key, &format!("c-{n}"), "10.00", &token)["status"],
            "succeeded"
        );
    }
    let cheap = channels(&p)
        .into_iter()
        .find(|c| c["name"] == "cheap")
        .unwrap();
    assert_eq!(cheap["health"]["breaker"], "open", "{cheap}");
    let v = card_pay(&p, &shop.key, "c-26", "10.00", &token);
    assert_eq!(outcomes(&v), vec![("dear".into(), "charged".into())]);
    assert_eq!(v["routing"]["excluded"][0]["outcome"], "breaker_open");
    // 100.00 + 25 × 10.00, each net of 0.6 %.
    assert_eq!(p.balance(&shop.account), "347.90");
    assert_eq!(sim.records("dear").len(), 25);

    // A decline is final: no failover, nothing booked.
    sim.put("dear", json!({"decline_rate": 1}));
    let v = card_pay(&p, &shop.key, "d-1", "10.00", &token);
    assert_eq!(
        (v["status"].as_str(), v["failure_code"].as_str()),
        (Some("failed"), Some("channel_declined"))
    );
    assert_eq!(p.balance(&shop.account), "347.90");

    // No answer: processing, then resolved by asking dear (never by charging elsewhere).
    sim.put("dear", json!({"decline_rate": 0, "timeout_rate": 1}));
    let v = card_pay(&p, &shop.key, "t-1", "20.00", &token);
    assert_eq!(v["status"], "processing", "{v}");
    assert_eq!(outcomes(&v), vec![("dear".into(), "no_answer".into())]);
    sim.put("dear", json!({"timeout_rate": 0}));
    let id = v["id"].as_str().unwrap();
    let settled = settled(&p, &shop.key, id);
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(outcomes(&settled).last().unwrap().1, "status_sync");
    assert_eq!(p.balance(&shop.account), "367.78");
    let charges_for_t1: Vec<_> = sim
        .records("dear")
        .into_iter()
        .filter(|r| r["request_id"].as_str().unwrap().starts_with(id))
        .collect();
    assert_eq!(charges_for_t1.len(), 1, "charged once at the channel");

    // Unknown or foreign card tokens are 404.
    let other = merchant(&p, r#"{"name":"Other"}"#);
    let r = p.post(
        &other.key,
        "/v1/payments",
        None,
        &format!(r#"{{"out_trade_no":"x","amount":"1.00","currency":"CNY","payment_method":{{"type":"bank_card","card_token":"{token}"}}}}"#),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "resource_not_found")
    );
}

#[test]
fn a_charge_left_unanswered_by_a_crash_is_resolved_after_restart_and_booked_once() {
    let sim = Sim::start(&[r#"slow={"timeout_rate":1}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        ("RONGPAY_CHANNEL_TIMEOUT_MS", "300"),
    ];
    let p = Payd::start_in(&dir, &env);
    channel(&p, "slow", &format!("http://{}", sim.addr("slow")), "0.004");
    let shop = merchant(&p, r#"{"name":"Crashy","fee_rate":"0.01"}"#);
    let token = tokenize(&p, &shop.key, "5555555555554444");
    let v = card_pay(&p, &shop.key, "crash-1", "50.00", &token);
    assert_eq!(v["status"], "processing");
    let id = v["id"].as_str().unwrap().to_string();
    // Crash before the status sync can learn anything (the channel answers nothing yet:
    // its status query works, so stop payd at once).
    p.kill9();
    sim.put("slow", json!({"timeout_rate": 0}));

    let p = Payd::start_in(&dir, &env);
    let settled = settled(&p, &shop.key, &id);
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(p.balance(&shop.account), "49.50");
    let position = channels(&p)[0]["position"].clone();
    assert_eq!(position, "49.80");
    assert_eq!(sim.records("slow").len(), 1, "charged once");
    // It was the restarted payd that resolved it.
    let mut p = p;
    let _ = std::process::Command::new("kill")
        .args(["-15", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
    let out = Payd::stdout(&mut p.child);
    assert!(
        out.contains("resumed status sync of 1 card payments"),
        "{out}"
    );
}

#[test]
fn signed_notifications_resolve_a_charge_once_and_forgeries_change_nothing() {
    let sim = Sim::start(&[r#"note={"timeout_rate":1,"notify_delay_ms":600}"#]);
    let secret = sim.put("note", json!({}))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "200"),
            // Slow status sync: the notification must be what resolves it.
            ("RONGPAY_STATUS_SYNC_MS", "60000"),
        ],
    );
    let ch = channel(&p, "note", &format!("http://{}", sim.addr("note")), "0.002");
    let ch_id = ch["id"].as_str().unwrap().to_string();
    let r = p.admin(
        "PATCH",
        &format!("/v1/channels/{ch_id}"),
        &format!(r#"{{"notify_secret":"{secret}"}}"#),
    );
    assert_eq!(r.json()["notifications"], true);
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&secret),
        "the secret is never shown"
    );
    let shop = merchant(&p, r#"{"name":"Notified","fee_rate":"0"}"#);
    let token = tokenize(&p, &shop.key, "6212345678901265");
    let v = card_pay(&p, &shop.key, "n-1", "30.00", &token);
    assert_eq!(v["status"], "processing");
    let id = v["id"].as_str().unwrap().to_string();
    let auth = format!("Bearer {}", shop.key);
    let get = || {
        p.req(
            "GET",
            &format!("/v1/payments/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json()
    };

    // Forgeries first: a wrong key, a stale timestamp, no signature. Nothing changes.
    let charge = json!({"request_id": format!("{id}-1"), "status": "declined",
        "channel_ref": "forged", "amount_minor": 3000, "currency": "CNY",
        "decline_reason": "do_not_honor", "refunded_minor": 0});
    let forged = json!({"channel": "note", "charge": charge}).to_string();
    let path = format!("/v1/channels/{ch_id}/notifications");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (signature, why) in [
        (
            services::signature::sign(b"not the secret", now, forged.as_bytes()),
            "wrong key",
        ),
        (
            services::signature::sign(secret.as_bytes(), now - 3_600, forged.as_bytes()),
            "stale",
        ),
        ("t=1,v1=zz".to_string(), "malformed"),
    ] {
        let r = p.req(
            "POST",
            &path,
            &[
                ("Content-Type", "application/json"),
                ("Channel-Signature", &signature),
            ],
            forged.as_bytes(),
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (401, "invalid_signature"),
            "{why}"
        );
    }
    assert_eq!(get()["status"], "processing");

    // The channel's own notification arrives and resolves it.
    let settled = settled(&p, &shop.key, &id);
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(outcomes(&settled).last().unwrap().1, "notification");
    assert_eq!(p.balance(&shop.account), "30.00");

    // A replay of a validly signed notification (even one saying otherwise) changes nothing.
    let signature = services::signature::sign(secret.as_bytes(), now, forged.as_bytes());
    let r = p.req(
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Channel-Signature", &signature),
        ],
        forged.as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["applied"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(get()["status"], "succeeded");
    assert_eq!(p.balance(&shop.account), "30.00");
    assert_eq!(sim.records("note").len(), 1);
}

#[test]
fn card_refunds_go_back_through_the_channel_or_are_reversed() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(&p, r#"{"name":"Refunder","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "378282246310005");
    let v = card_pay(&p, &shop.key, "r-1", "100.00", &token);
    assert_eq!(v["status"], "succeeded");
    let id = v["id"].as_str().unwrap().to_string();
    let position = |p: &Payd| channels(p)[0]["position"].as_str().unwrap().to_string();
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("99.40".into(), "99.80".into())
    );

    // 40.00 back to the card: the merchant returns it net of 0.24 of fee, our position at
    // the channel pays it less the 0.08 of its fee the channel returns (pro rata), and the
    // channel records the refund.
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"amount":"40.00","out_refund_no":"rf-1"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["status"], "succeeded");
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("59.64".into(), "59.88".into())
    );
    let records = sim.records("bank");
    assert_eq!(records.len(), 2);
    assert_eq!(
        (
            records[1]["kind"].as_str(),
            records[1]["amount_minor"].as_i64()
        ),
        (Some("refund"), Some(4_000))
    );

    // The channel unreachable: definitely not refunded, so the booking is reversed.
    sim.put("bank", json!({"down": true}));
    std::thread::sleep(Duration::from_millis(200));
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"amount":"10.00","out_refund_no":"rf-2"}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        (
            r.json()["status"].as_str(),
            r.json()["failure_code"].as_str()
        ),
        (Some("failed"), Some("channel_unavailable"))
    );
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("59.64".into(), "59.88".into())
    );
    let auth = format!("Bearer {}", shop.key);
    let now = p
        .req(
            "GET",
            &format!("/v1/payments/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(now["refunded_amount"], "40.00");
    // Never more than the payment.
    sim.put("bank", json!({"down": false}));
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"amount":"60.01","out_refund_no":"rf-3"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "refund_exceeds_payment")
    );
    assert_eq!(sim.records("bank").len(), 2);
}

#[test]
fn card_refunds_left_unanswered_are_settled_by_status_sync_even_across_a_crash() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = |sync_ms: &'static str| {
        [
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "300"),
            ("RONGPAY_STATUS_SYNC_MS", sync_ms),
        ]
    };
    // Status sync far off: nothing is asked before the crash.
    let p = Payd::start_in(&dir, &env("60000"));
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(&p, r#"{"name":"Slow refunds","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4012888888881881");
    let v = card_pay(&p, &shop.key, "sr-1", "100.00", &token);
    assert_eq!(v["status"], "succeeded");
    let id = v["id"].as_str().unwrap().to_string();
    let position = |p: &Payd| channels(p)[0]["position"].as_str().unwrap().to_string();

    // The channel refunds but never answers: processing, and the money is booked as on
    // its way back (merchant 30.00 net of 0.18 of fee, our position 30.00).
    sim.put("bank", json!({"timeout_rate": 1}));
    let refund = |p: &Payd, otn: &str, amount: &str| {
        let r = p.post(
            &shop.key,
            &format!("/v1/payments/{id}/refunds"),
            None,
            &format!(r#"{{"amount":"{amount}","out_refund_no":"{otn}"}}"#),
        );
        assert_eq!(r.status, 201, "{:?}", r.json());
        r.json()
    };
    let r1 = refund(&p, "rf-1", "30.00");
    assert_eq!(r1["status"], "processing", "{r1}");
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("69.58".into(), "69.86".into())
    );
    p.kill9();

    // Restarted (status sync every 100 ms): the refund is asked about and settles once.
    let mut p = Payd::start_in(&dir, &env("100"));
    let r1_path = format!("/v1/refunds/{}", r1["id"].as_str().unwrap());
    let done = settled_at(&p, &shop.key, &r1_path);
    assert_eq!(
        (done["status"].as_str(), done["failure_code"].as_str()),
        (Some("succeeded"), None),
        "{done}"
    );
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("69.58".into(), "69.86".into())
    );
    let refunds_at_bank = |sim: &Sim| {
        sim.records("bank")
            .into_iter()
            .filter(|r| r["kind"] == "refund")
            .collect::<Vec<_>>()
    };
    assert_eq!(
        refunds_at_bank(&sim).len(),
        1,
        "refunded once at the channel"
    );

    // The channel declines a refund and the answer is lost: status sync learns the decline
    // and reverses the booking; the payment's refunded total goes back.
    sim.put("bank", json!({"timeout_rate": 1, "decline_rate": 1}));
    let r2 = refund(&p, "rf-2", "10.00");
    assert_eq!(r2["status"], "processing", "{r2}");
    let r2_path = format!("/v1/refunds/{}", r2["id"].as_str().unwrap());
    let done = settled_at(&p, &shop.key, &r2_path);
    assert_eq!(
        (done["status"].as_str(), done["failure_code"].as_str()),
        (Some("failed"), Some("channel_declined")),
        "{done}"
    );
    assert_eq!(
        (p.balance(&shop.account), position(&p)),
        ("69.58".into(), "69.86".into())
    );
    let auth = format!("Bearer {}", shop.key);
    let payment = p
        .req(
            "GET",
            &format!("/v1/payments/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(payment["refunded_amount"], "30.00");

    // The payment's refunds, listed; another merchant sees neither the list nor a refund.
    let list = p
        .req(
            "GET",
            &format!("/v1/payments/{id}/refunds"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    let listed: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["out_refund_no"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![("rf-1", "succeeded"), ("rf-2", "failed")]);
    assert_eq!(list["has_more"], false);
    let other = merchant(&p, r#"{"name":"Nosy"}"#);
    let nosy = format!("Bearer {}", other.key);
    for path in [format!("/v1/payments/{id}/refunds"), r1_path.clone()] {
        let r = p.req("GET", &path, &[("Authorization", &nosy)], b"");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "resource_not_found")
        );
    }
    let r = p.req(
        "GET",
        "/v1/refunds/re_nope",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "resource_not_found")
    );

    let _ = std::process::Command::new("kill")
        .args(["-15", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
    let out = Payd::stdout(&mut p.child);
    assert!(
        out.contains("resumed status sync of 1 card refunds"),
        "{out}"
    );
}

#[test]
fn the_bulkhead_and_the_daily_limit_hold_under_concurrent_payments() {
    let sim = Sim::start(&[r#"tiny={"latency_ms":40}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let r = p.post(
        ADMIN,
        "/v1/channels",
        None,
        &format!(
            r#"{{"name":"tiny","endpoint":"http://{}","methods":["bank_card"],"currency":"CNY",
                "fee_rate":"0.002","max_amount":"50.00","daily_limit":"100.00","inflight_max":3}}"#,
            sim.addr("tiny")
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let tiny_id = r.json()["id"].as_str().unwrap().to_string();
    let shop = merchant(&p, r#"{"name":"Rush","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");

    // 40 payments of 10.00 at once; returns how many succeeded, and why the others failed.
    let rush = |round: &str| -> (usize, std::collections::BTreeSet<String>) {
        let answers: Vec<Value> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|n| {
                    let (p, key, token) = (&p, &shop.key, &token);
                    let otn = format!("{round}-{n}");
                    s.spawn(move || card_pay(p, key, &otn, "10.00", token))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut why = std::collections::BTreeSet::new();
        let mut succeeded = 0;
        for v in &answers {
            if v["status"] == "succeeded" {
                succeeded += 1;
                continue;
            }
            assert_eq!(
                (v["status"].as_str(), v["failure_code"].as_str()),
                (Some("failed"), Some("no_channel_available")),
                "{v}"
            );
            let outcome = v["routing"]["excluded"]
                .get(0)
                .or_else(|| v["routing"]["attempts"].get(0))
                .map(|e| e["outcome"].as_str().unwrap().to_string())
                .unwrap();
            why.insert(outcome);
        }
        (succeeded, why)
    };

    // A bulkhead of 3: the channel never has more than 3 of our charges at once.
    let (succeeded, why) = rush("bulkhead");
    let peak = sim.put("tiny", json!({}))["peak_inflight"]
        .as_u64()
        .unwrap();
    println!("bulkhead 3: 40 at once, {succeeded} succeeded, peak in flight at the channel {peak}, others: {why:?}");
    assert!(peak <= 3 && succeeded >= 1, "peak {peak}");
    assert_eq!(why, ["busy".to_string()].into());

    // A wide bulkhead: now the day's limit (100.00) is what stops them, exactly: the amounts
    // in flight count against it, so 40 at once cannot overshoot it together.
    let r = p.admin(
        "PATCH",
        &format!("/v1/channels/{tiny_id}"),
        r#"{"inflight_max":64}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    let (more, why) = rush("limit");
    println!("daily limit 100.00 after {succeeded} × 10.00: 40 at once, {more} succeeded, others: {why:?}");
    assert_eq!(succeeded + more, 10, "exactly the day's 100.00");
    assert_eq!(why, ["daily_limit_reached".to_string()].into());
    let charged: i64 = sim
        .records("tiny")
        .iter()
        .map(|r| r["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(
        charged, 10_000,
        "the channel charged exactly the day's 100.00"
    );
    assert_eq!(channels(&p)[0]["health"]["volume_today"], "100.00");
    assert_eq!(channels(&p)[0]["health"]["inflight"], 0);
    // Above the per-transaction maximum: never routed there.
    let v = card_pay(&p, &shop.key, "big", "50.01", &token);
    assert_eq!(
        v["routing"]["excluded"][0]["outcome"], "above_maximum",
        "{v}"
    );
}

#[test]
fn a_client_that_hangs_up_mid_charge_still_gets_its_payment_booked_and_the_slot_freed() {
    // The channel takes 1.5 s to answer; the merchant's client gives up after 0.3 s and
    // closes its connection while payd is waiting on the channel. The channel charges
    // regardless, so payd must finish the payment (booked once, not left processing) and
    // give the channel's in-flight slot back.
    let sim = Sim::start(&[r#"slow={"latency_ms":1500}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "5000"),
        ],
    );
    channel(&p, "slow", &format!("http://{}", sim.addr("slow")), "0.002");
    let shop = merchant(&p, r#"{"name":"Hangup","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");

    let body = format!(
        r#"{{"out_trade_no":"hangup-1","amount":"12.34","currency":"CNY","payment_method":{{"type":"bank_card","card_token":"{token}"}}}}"#
    );
    let head = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        p.addr,
        shop.key,
        body.len()
    );
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&p.addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 1024];
        assert!(
            stream.read(&mut buf).is_err(),
            "answered within 0.3 s; the channel should take 1.5 s"
        );
        // Hang up while payd waits on the channel.
    }
    std::thread::sleep(Duration::from_millis(2500));
    let auth = format!("Bearer {}", shop.key);
    let list = p
        .req(
            "GET",
            "/v1/payments?out_trade_no=hangup-1",
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    let id = list["data"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no payment: {list}"))
        .to_string();
    let v = settled(&p, &shop.key, &id);
    println!(
        "after the hang-up: status {}, channel in flight {}",
        v["status"],
        channels(&p)[0]["health"]["inflight"]
    );
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(sim.records("slow").len(), 1, "charged once");
    assert_eq!(channels(&p)[0]["health"]["inflight"], 0);
}
