//! Merchant settlement (issue #16) against the real payd: T+N maturity, netting with a
//! carried shortfall, settlement batches and their statements.

use crate::common::*;
use serde_json::Value;

fn balances(p: &Payd, shop: &Shop) -> Value {
    let m = p
        .admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json();
    m["balances"].clone()
}

fn batches(p: &Payd, shop: &Shop) -> Vec<Value> {
    let r = p.admin(
        "GET",
        &format!("/v1/settlements?merchant_id={}", shop.id),
        "",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["data"].as_array().unwrap().clone()
}

fn refund(p: &Payd, key: &str, payment: &str, amount: &str, no: &str) {
    let r = p.post(
        key,
        &format!("/v1/payments/{payment}/refunds"),
        None,
        &format!(r#"{{"amount":"{amount}","out_refund_no":"{no}"}}"#),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "succeeded");
}

/// The issue's netting case: payments 100.00 and refunds 130.00 in one cycle pay nothing
/// and carry 30.00, offset by the next cycle's income; nothing is paid before T+1.
#[test]
fn refunds_above_takings_are_carried_and_offset_and_nothing_is_paid_before_t_plus_n() {
    let p = Payd::start();
    let shop = merchant(
        &p,
        r#"{"name":"netting shop","fee_rate":"0","settlement_cycle_days":1,"payout_account":{"bank":"ICBC","account_number":"6222020200112233445","name":"Netting Shop Ltd"}}"#,
    );
    let m = p
        .admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json();
    assert_eq!(m["settlement_cycle_days"], 1);
    assert_eq!(m["payout_account"]["account_number"], "****3445");
    assert!(!String::from_utf8_lossy(
        &p.admin("GET", &format!("/v1/merchants/{}", shop.id), "")
            .body
    )
    .contains("6222020200112233445"));
    let payer = funded_account(&p, "1000.00");
    // The platform's own capital in the reserve: with no fee income, the 30.00 carried
    // below is money the platform fronts, and the day-end's coverage check needs it there.
    seed_equity(&p, "100.00");

    // Day 1: 130.00 taken. Its day-end matures nothing (T+1).
    let first = pay(&p, &shop.key, "o-first", "130.00", &payer).json();
    assert_eq!(first["status"], "succeeded");
    let d1 = close_day(&p);
    assert!(batches(&p, &shop).is_empty());
    assert_eq!(balances(&p, &shop)["pending"], "130.00");
    assert_eq!(balances(&p, &shop)["available"], "0.00");

    // Day 2: the day-end matures day 1 and pays it out.
    let d2 = close_day(&p);
    let b = batches(&p, &shop);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0]["date"], d2.as_str());
    assert_eq!(
        (b[0]["gross"].as_str(), b[0]["net"].as_str()),
        (Some("130.00"), Some("130.00"))
    );
    assert_eq!(b[0]["payout"]["amount"], "130.00");
    let bal = balances(&p, &shop);
    assert_eq!(
        (
            bal["pending"].as_str(),
            bal["available"].as_str(),
            bal["in_transit"].as_str()
        ),
        (Some("0.00"), Some("0.00"), Some("130.00"))
    );
    let one = p
        .admin(
            "GET",
            &format!("/v1/settlements/{}", b[0]["id"].as_str().unwrap()),
            "",
        )
        .json();
    assert_eq!(one["items"][0]["date"], d1.as_str());
    assert_eq!(one["items"][0]["net"], "130.00");

    // Day 3: payments 100.00, refunds 130.00 (the first payment, already paid out).
    let second = pay(&p, &shop.key, "o-second", "100.00", &payer).json();
    refund(
        &p,
        &shop.key,
        first["id"].as_str().unwrap(),
        "130.00",
        "r-first",
    );
    assert_eq!(balances(&p, &shop)["pending"], "-30.00");
    let _d3 = close_day(&p);
    // Nothing of day 3 is settled at its own day-end.
    assert_eq!(batches(&p, &shop).len(), 1);

    // Day 4: day 3 matures at -30.00: nothing paid, 30.00 carried (merchant negative).
    let d4 = close_day(&p);
    let b = batches(&p, &shop);
    assert_eq!(b.len(), 2, "{b:?}");
    let carried = &b[1];
    assert_eq!(carried["date"], d4.as_str());
    assert_eq!(carried["status"], "carried", "{carried}");
    assert_eq!(
        (
            carried["gross"].as_str(),
            carried["refunds"].as_str(),
            carried["net"].as_str()
        ),
        (Some("100.00"), Some("130.00"), Some("-30.00"))
    );
    assert_eq!(carried["payout"]["amount"], "0.00");
    assert_eq!(carried["carried"], "30.00");
    assert_eq!(balances(&p, &shop)["owed"], "30.00");
    assert_eq!(gl_balance(&p, "1201"), "30.00");

    // Day 5: 50.00 taken; day 6 matures it: 30.00 offset, 20.00 paid out.
    assert_eq!(
        pay(&p, &shop.key, "o-third", "50.00", &payer).json()["status"],
        "succeeded"
    );
    close_day(&p);
    assert_eq!(batches(&p, &shop).len(), 2, "T+1: nothing of day 5 yet");
    let d6 = close_day(&p);
    let b = batches(&p, &shop);
    let last = &b[2];
    assert_eq!(last["date"], d6.as_str());
    assert_eq!(
        (
            last["net"].as_str(),
            last["offset"].as_str(),
            last["payout"]["amount"].as_str(),
            last["carried"].as_str()
        ),
        (Some("50.00"), Some("30.00"), Some("20.00"), Some("0.00"))
    );
    assert_eq!(gl_balance(&p, "1201"), "0.00");
    // Σ payouts + available + pending = Σ (payments − fees − refunds) = 130 + 100 + 50 − 130.
    let bal = balances(&p, &shop);
    assert_eq!(bal["in_transit"], "150.00", "{bal}");
    assert_eq!(
        (
            bal["available"].as_str(),
            bal["pending"].as_str(),
            bal["owed"].as_str()
        ),
        (Some("0.00"), Some("0.00"), Some("0.00"))
    );
    assert_eq!(gl_balance(&p, "2104"), "150.00");
    let _ = second;

    // The merchant sees its own batches; another merchant sees none of them.
    let own = p.req(
        "GET",
        "/v1/settlements",
        &[("Authorization", &format!("Bearer {}", shop.key))],
        b"",
    );
    assert_eq!(own.json()["data"].as_array().unwrap().len(), 3);
    let other = merchant(&p, r#"{"name":"other"}"#);
    let id = last["id"].as_str().unwrap();
    let theirs = p.req(
        "GET",
        &format!("/v1/settlements/{id}"),
        &[("Authorization", &format!("Bearer {}", other.key))],
        b"",
    );
    assert_eq!(theirs.status, 404);
    assert_eq!(
        p.req(
            "GET",
            "/v1/settlements",
            &[("Authorization", &format!("Bearer {}", other.key))],
            b""
        )
        .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let asked = p.req(
        "GET",
        &format!("/v1/settlements?merchant_id={}", shop.id),
        &[("Authorization", &format!("Bearer {}", other.key))],
        b"",
    );
    assert_eq!(
        (asked.status, asked.error_code()),
        (403, "forbidden".into())
    );
    // The statement as CSV.
    let csv = p.req(
        "GET",
        &format!("/v1/settlements/{id}"),
        &[
            ("Authorization", &format!("Bearer {}", shop.key)),
            ("Accept", "text/csv"),
        ],
        b"",
    );
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body).unwrap();
    assert!(
        text.starts_with(
            "settlement_id,merchant_id,row,date,gross,refunds,fees,splits,adjustments,net\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(",payout,") && text.contains(",20.00\n"),
        "{text}"
    );
    assert!(
        text.contains(",owed_offset,") && text.contains(",30.00\n"),
        "{text}"
    );
    // A malformed id is an unknown one.
    assert_eq!(p.admin("GET", "/v1/settlements/stl_nope", "").status, 404);
    assert_eq!(
        p.admin("GET", "/v1/settlements?date=2026-13-01", "")
            .error_code(),
        "invalid_parameter"
    );
}

#[test]
fn settlement_terms_are_checked_and_changed_by_patch() {
    let p = Payd::start();
    for (body, param) in [
        (
            r#"{"name":"x","settlement_cycle_days":31}"#,
            "settlement_cycle_days",
        ),
        (r#"{"name":"x","settlement_cycle_days":-1}"#, ""),
        (r#"{"name":"x","min_payout":"1.001"}"#, "min_payout"),
        (
            r#"{"name":"x","payout_account":{"bank":"ICBC","account_number":"12-34","name":"n"}}"#,
            "payout_account.account_number",
        ),
        (
            r#"{"name":"x","payout_account":{"bank":" ","account_number":"123456","name":"n"}}"#,
            "payout_account.bank",
        ),
    ] {
        let r = p.admin("POST", "/v1/merchants", body);
        assert_eq!(
            r.status,
            400,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        if !param.is_empty() {
            assert_eq!(r.json()["error"]["param"], param, "{body}");
        }
    }
    let shop = merchant(&p, r#"{"name":"terms"}"#);
    let m = p
        .admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json();
    assert_eq!(
        (
            m["settlement_cycle_days"].as_u64(),
            m["min_payout"].as_str()
        ),
        (Some(1), Some("0.00"))
    );
    assert!(m["payout_account"].is_null());
    assert_eq!(m["account_id"], shop.account.as_str());
    assert_ne!(m["available_account_id"], m["account_id"]);
    let r = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", shop.id),
        r#"{"settlement_cycle_days":3,"min_payout":"100.00","payout_account":{"bank":"CMB","account_number":"6214830000001234","name":"Terms Ltd"}}"#,
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let m = r.json();
    assert_eq!(
        (
            m["settlement_cycle_days"].as_u64(),
            m["min_payout"].as_str()
        ),
        (Some(3), Some("100.00"))
    );
    assert_eq!(m["payout_account"]["account_number"], "****1234");
    // The audit log holds the masked form only.
    let audit = p.admin("GET", "/v1/audit?limit=100", "");
    assert!(!String::from_utf8_lossy(&audit.body).contains("6214830000001234"));
}

/// Ten business days of payments, partial and full refunds (of today's and older
/// payments), splits to a partner (by ratio) and to another merchant (by amount), cycles
/// T+0 to T+3, a minimum payout, a merchant without a payout account and a payout channel
/// declining a fifth: after every day-end the trial balance holds, and at the end, for
/// every merchant (the partner too), what it was paid out, what is in transit, available
/// and pending, less what it owes, is exactly Σ (payments − fees − splits − refunds +
/// splits received) of its daily reports.
#[test]
fn ten_business_days_keep_every_merchants_money_accounted_for() {
    let sim = Sim::start(&[r#"payout_bank={"decline_rate":0.2,"notify_delay_ms":100}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_PAYOUT_CHANNEL", "payout_bank"),
            ("RONGPAY_STATUS_SYNC_MS", "200"),
            ("RONGPAY_RATE_PAYER_PER_S", "0"),
            ("RONGPAY_RATE_MERCHANT_PER_S", "0"),
        ],
    );
    let secret = sim.put("payout_bank", serde_json::json!({}))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let ch = channel(
        &p,
        "payout_bank",
        &format!("http://{}", sim.addr("payout_bank")),
        "0.002",
    );
    assert_eq!(
        p.admin(
            "PATCH",
            &format!("/v1/channels/{}", ch["id"].as_str().unwrap()),
            &format!(r#"{{"notify_secret":"{secret}"}}"#),
        )
        .status,
        200
    );
    let account =
        r#""payout_account":{"bank":"CMB","account_number":"6214830000001234","name":"Ltd"}"#;
    let shops: Vec<Shop> = [
        format!(r#"{{"name":"t0","settlement_cycle_days":0,{account}}}"#),
        format!(r#"{{"name":"t1","fee_rate":"0.01","fee_fixed":"0.10",{account}}}"#),
        format!(r#"{{"name":"t2","settlement_cycle_days":2,"min_payout":"150.00",{account}}}"#),
        format!(r#"{{"name":"t3","settlement_cycle_days":3,"fee_min":"0.50",{account}}}"#),
        r#"{"name":"no account","settlement_cycle_days":1}"#.to_string(),
        // A partner taking no payments: it only receives splits.
        format!(r#"{{"name":"partner","settlement_cycle_days":1,{account}}}"#),
    ]
    .iter()
    .map(|body| merchant(&p, body))
    .collect();
    let payer = funded_account(&p, "100000.00");
    let mut seed = 11u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut paid: Vec<Vec<(String, i64)>> = vec![Vec::new(); shops.len()];
    let mut dates = Vec::new();
    let partner = shops.len() - 1;
    for day in 0..10 {
        for (m, s) in shops.iter().enumerate().take(partner) {
            for i in 0..3 {
                let c = 100 + (next() % 20_000) as i64;
                // Profit sharing: the second payment of a day splits a ratio to the
                // partner, the third (of t2) a fixed share to t3 as well.
                let splits = match i {
                    1 => format!(
                        r#"[{{"account_id":"{}","ratio":"0.{:02}"}}]"#,
                        shops[partner].account,
                        1 + next() % 40
                    ),
                    2 if m == 2 => format!(
                        r#"[{{"account_id":"{}","ratio":"0.25"}},{{"account_id":"{}","amount":"0.50"}}]"#,
                        shops[partner].account, shops[3].account
                    ),
                    _ => "[]".to_string(),
                };
                let r = p.post(
                    &s.key,
                    "/v1/payments",
                    None,
                    &format!(
                        r#"{{"out_trade_no":"d{day}-{i}","amount":"{}.{:02}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}},"splits":{splits}}}"#,
                        c / 100,
                        c % 100
                    ),
                );
                assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
                paid[m].push((r.json()["id"].as_str().unwrap().to_string(), c));
            }
            // A partial refund of a random earlier payment, and now and then a whole one.
            let k = (next() as usize) % paid[m].len();
            let (id, amount) = paid[m][k].clone();
            let part = 1 + (next() as i64) % amount;
            let r = p.post(
                &s.key,
                &format!("/v1/payments/{id}/refunds"),
                None,
                &format!(
                    r#"{{"amount":"{}.{:02}","out_refund_no":"r-day{}-{}"}}"#,
                    part / 100,
                    part % 100,
                    char::from(b'a' + day as u8),
                    "x"
                ),
            );
            assert!(
                r.status == 201 || r.error_code() == "refund_exceeds_payment",
                "{:?}",
                String::from_utf8_lossy(&r.body)
            );
            if day % 3 == 2 {
                let (id, _) = paid[m][(next() as usize) % paid[m].len()].clone();
                let r = p.post(
                    &s.key,
                    &format!("/v1/payments/{id}/refunds"),
                    None,
                    &format!(
                        r#"{{"out_refund_no":"rest-day{}"}}"#,
                        char::from(b'a' + day as u8)
                    ),
                );
                assert!(
                    r.status == 201 || r.error_code() == "refund_exceeds_payment",
                    "{:?}",
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
        let date = close_day(&p);
        // The day-end's coverage check held (close_day asserts the day-end done): funds
        // (reserve + receivables + in transit) cover what customers and merchants are owed.
        let pos = p
            .admin("GET", &format!("/v1/positions?date={date}"), "")
            .json();
        assert_eq!(pos["coverage"]["covered"], true, "{pos}");
        dates.push(date);
    }
    // Every payout resolved (a declined one went back to available and out again later).
    eventually(60, "no payout is in transit or waiting", || {
        gl_balance(&p, "2104") == "0.00"
            || shops.iter().all(|s| {
                let b = balances(&p, s);
                b["in_transit"] == "0.00"
            })
    });
    let mut declined = 0;
    for (m, s) in shops.iter().enumerate() {
        let nets: i64 = dates
            .iter()
            .map(|d| {
                let r = p.admin(
                    "GET",
                    &format!("/v1/reports/daily?date={d}&merchant_id={}", s.id),
                    "",
                );
                assert_eq!(r.status, 200);
                cents(r.json()["net"].as_str().unwrap())
            })
            .sum();
        let b = balances(&p, s);
        if m == partner {
            assert_ne!(nets, 0, "the partner received splits");
        }
        let held = cents(b["paid_out"].as_str().unwrap())
            + cents(b["in_transit"].as_str().unwrap())
            + cents(b["available"].as_str().unwrap())
            + cents(b["pending"].as_str().unwrap())
            - cents(b["owed"].as_str().unwrap());
        println!("merchant {m}: reports' net {nets}, balances {b}");
        assert_eq!(held, nets, "merchant {m}: {b}");
        declined += batches(&p, s)
            .iter()
            .filter(|x| x["status"] == "failed")
            .count();
        if m == 4 {
            // No payout account: nothing ever left.
            assert_eq!(b["paid_out"], "0.00");
        } else {
            assert_ne!(b["paid_out"], "0.00", "merchant {m}");
        }
    }
    println!("{declined} payout(s) declined: back in available, paid by a later batch (or still available after the last day-end)");

    // A planted shortfall: money leaves the reserve with nothing owed less. The live gauges
    // show it (the ReserveCoverageShortfall rule compares them), payments are still served,
    // and the day-end's coverage check fails at its positions step, the rest of it done.
    let surplus = cents(
        p.admin("GET", "/v1/positions", "").json()["coverage"]["surplus"]
            .as_str()
            .unwrap(),
    );
    let planted = surplus + 12_345;
    let amount = format!("{}.{:02}", planted / 100, planted % 100);
    let r = p.admin(
        "POST",
        "/v1/gl/entries",
        &format!(
            r#"{{"currency":"CNY","memo":"planted shortfall","legs":[{{"account_id":"{EQUITY}","debit":"{amount}"}},{{"account_id":"{RESERVE}","credit":"{amount}"}}]}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let live = p.admin("GET", "/v1/positions", "").json();
    assert_eq!(live["coverage"]["shortfall"], "123.45", "{live}");
    let metrics = String::from_utf8(p.req("GET", "/metrics", &[], b"").body).unwrap();
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    };
    assert_eq!(
        gauge("rongpay_coverage_owed_minor_units") - gauge("rongpay_coverage_funds_minor_units"),
        12_345.0
    );
    let r = pay(&p, &shops[0].key, "after-the-shortfall", "10.00", &payer);
    assert_eq!(r.json()["status"], "succeeded", "payments are still served");
    let date = open_date(&p);
    assert_eq!(p.admin("POST", "/v1/gl/day_end", "{}").status, 202);
    let mut d = Value::Null;
    eventually(60, "the day-end finishes", || {
        d = p.admin("GET", &format!("/v1/gl/day_end/{date}"), "").json();
        d["status"] != "running"
    });
    assert_eq!(d["status"], "failed");
    let failed: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "done")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["positions"], "{d:#}");
    let metrics = String::from_utf8(p.req("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("rongpay_day_end_coverage_shortfall_minor_units")
                && !l.ends_with(" 0")
        ),
        "the day-end's shortfall is exported"
    );
    println!("planted shortfall of 123.45: live gauges show it, a payment succeeded, the day-end of {date} failed at its positions step only");
}
