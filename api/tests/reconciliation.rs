//! Reconciliation (issue #17) against the real payd and channel-sim: a day of card traffic
//! with differences planted at the channel, found by the day-end of the next date from the
//! channel's own statement; the cross-day item matched from the pool; the wait running out;
//! uploads (the same file twice, an altered total, a truncated file); the suspense booked so
//! that the trial balance holds at every step.

use crate::common::*;
use serde_json::{json, Value};

fn run_of(p: &Payd, date: &str) -> Value {
    let r = p.admin(
        "GET",
        &format!("/v1/reconciliation/runs?channel=bank&date={date}"),
        "",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let runs = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "one run of {date}: {runs:#?}");
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let r = p.admin("GET", &format!("/v1/reconciliation/runs/{id}"), "");
    assert_eq!(r.status, 200);
    r.json()
}

/// (type, out_trade_no) of each mismatch, sorted.
fn kinds(run: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = run["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_string(),
                m["out_trade_no"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn upload(p: &Payd, date: &str, format: &str, body: &[u8]) -> Response {
    p.req(
        "POST",
        &format!("/v1/reconciliation/statements?channel=bank&date={date}&format={format}"),
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "text/csv"),
        ],
        body,
    )
}

/// The channel's statement of `date` in `format` (GBK, as channels send it).
fn statement(sim: &Sim, date: &str, format: &str) -> Vec<u8> {
    statement_in(sim, date, format, "")
}

fn statement_in(sim: &Sim, date: &str, format: &str, charset: &str) -> Vec<u8> {
    let r = try_request(
        &sim.addr("bank"),
        "GET",
        &format!("/statements?date={date}&format={format}{charset}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    r.body
}

fn runs_count(p: &Payd) -> usize {
    p.admin("GET", "/v1/reconciliation/runs", "").json()["data"]
        .as_array()
        .unwrap()
        .len()
}

const MERCHANT: &str = r#"{"name":"茶馆","fee_rate":"0.006"}"#;

/// A day's setup: channel-sim's `bank` (fee 0.2 %), payd with the admin token and `env` in a
/// temp dir, 10,000.00 of the platform's equity, the channel, a merchant from `merchant_body`
/// with a card, and the channel's date set to payd's open date `d0`.
struct Day0 {
    sim: Sim,
    tmp: tempfile::TempDir,
    p: Payd,
    ch: Value,
    shop: Shop,
    token: String,
    d0: String,
}

fn day0(env: &[(&str, &str)], merchant_body: &str) -> Day0 {
    let sim = Sim::start(&[r#"bank={"fee_rate_ppm":2000}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let mut all = vec![("RONGPAY_ADMIN_TOKEN", ADMIN)];
    all.extend_from_slice(env);
    let p = Payd::start_in(&tmp.path().join("data"), &all);
    seed_equity(&p, "10000.00");
    let ch = channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(&p, merchant_body);
    let token = tokenize(&p, &shop.key, "4111111111111111");
    let d0 = open_date(&p);
    sim.put("bank", json!({"business_date": d0}));
    Day0 {
        sim,
        tmp,
        p,
        ch,
        shop,
        token,
        d0,
    }
}

#[test]
fn a_day_with_planted_differences_reconciles_to_exactly_them() {
    let Day0 {
        sim,
        tmp: _tmp,
        p,
        shop,
        token,
        d0,
        ..
    } = day0(
        &[
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "500"),
            ("RONGPAY_STATUS_SYNC_MS", "100"),
            ("RONGPAY_RECON_FETCH_RETRY_MS", "500"),
        ],
        MERCHANT,
    );

    let pay = |otn: &str, amount: &str, plant: Option<&str>| -> Value {
        if let Some(plant) = plant {
            sim.put("bank", json!({"plant_next": [plant]}));
        }
        card_pay(&p, &shop.key, otn, amount, &token)
    };
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    // The channel's record of charge `otn` (its request id and reference).
    let request_of = |payment: &Value| -> String {
        let pid = id(payment);
        format!("{pid}-1")
    };
    let ok1 = pay("ok-1", "100.00", None);
    let ok2 = pay("ok-2", "50.00", None);
    assert_eq!(
        (&ok1["status"], &ok2["status"]),
        (&json!("succeeded"), &json!("succeeded"))
    );
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{}/refunds", id(&ok2)),
        None,
        r#"{"amount":"10.00","out_refund_no":"r-1"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let refund = settled_at(&p, &shop.key, &format!("/v1/refunds/{}", id(&r.json())));
    assert_eq!(refund["status"], "succeeded");
    let omitted = pay("omit", "20.00", Some("omit"));
    let amount = pay("amount", "30.00", Some("amount"));
    let fee = pay("fee", "40.00", Some("fee"));
    let dup = pay("dup", "60.00", Some("duplicate"));
    let late = pay("late", "70.00", Some("next_day"));
    for v in [&omitted, &amount, &fee, &dup, &late] {
        assert_eq!(v["status"], "succeeded", "{v}");
    }
    // Charged, but the channel answered "nothing was charged": failed with us.
    let lost = pay("lost", "80.00", Some("charged_on_error"));
    assert_eq!(lost["status"], "failed", "{lost}");
    // Charged, never answered, and the status query fails: processing with us.
    let unanswered = pay("unanswered", "90.00", Some("unanswered"));
    assert_eq!(unanswered["status"], "processing", "{unanswered}");

    // The day-end of d0 looks for the statement of the day before (empty), then the
    // channel's next date: one charge of its own.
    assert_eq!(close_day(&p), d0);
    let d1 = open_date(&p);
    sim.put("bank", json!({"business_date": d1}));
    let next = pay("d1-ok", "15.00", None);
    assert_eq!(next["status"], "succeeded");
    assert_eq!(gl_balance(&p, "2901"), "0.00");

    // The day-end of d1 fetches d0's statement: exactly the planted differences.
    assert_eq!(close_day(&p), d1);
    let run = run_of(&p, &d0);
    assert_eq!(run["status"], "done", "{run:#}");
    assert_eq!(run["source"], "fetched");
    assert_eq!(
        kinds(&run),
        [
            ("amount_mismatch", request_of(&amount)),
            ("duplicate", request_of(&dup)),
            ("fee_mismatch", request_of(&fee)),
            ("missing_on_platform", request_of(&lost)),
            ("status_mismatch", request_of(&unanswered)),
        ]
        .map(|(k, o)| (k.to_string(), o)),
        "{run:#}"
    );
    // ok-1, ok-2, the refund and the duplicated charge's first row matched; the omitted
    // and the late one wait.
    assert_eq!(
        run["matched"],
        json!({"count": 4, "amount": "220.00"}),
        "{run:#}"
    );
    assert_eq!(run["pooled"], 2, "{run:#}");
    assert_eq!(run["rows"], 9, "{run:#}");
    // Suspense, the channel's side less ours (fees 0.2%, half up): long 1.00 (amount up)
    // + 59.88 (the second row of 60.00) + 79.84 (lost) + 89.82 (unanswered); short 0.01.
    assert_eq!(
        run["suspense"],
        json!({"long": "230.54", "short": "0.01"}),
        "{run:#}"
    );
    assert_eq!(gl_balance(&p, "2901"), "230.54");
    // The fee difference (0.01) is within the default tolerance (0.05): written off by
    // itself, right after the run.
    assert_eq!(gl_balance(&p, "1901"), "0.00");
    assert_eq!(gl_balance(&p, "5003"), "0.01");
    let by_type = |t: &str| -> Value {
        run["mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == t)
            .unwrap()
            .clone()
    };
    let m = by_type("amount_mismatch");
    assert_eq!(
        (
            &m["platform_amount"],
            &m["channel_amount"],
            &m["status"],
            &m["held"]
        ),
        (
            &json!("30.00"),
            &json!("31.00"),
            &json!("open"),
            // The merchant's net of it (30.00 less its 0.18 fee) waits for the resolution.
            &json!("29.82")
        )
    );
    let m = by_type("status_mismatch");
    assert_eq!(
        (&m["platform_status"], &m["channel_status"]),
        (&json!("processing"), &json!("succeeded"))
    );
    assert_eq!(by_type("missing_on_platform")["platform_status"], "failed");

    // The operator uploads d1's statement (WeChat Pay's layout): the late charge is matched
    // from the pool, the omitted one still waits.
    let file = statement(&sim, &d1, "wechat");
    let r = upload(&p, &d1, "wechat", &file);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let first = r.json();
    assert_eq!(first["mismatches"], json!([]), "{first:#}");
    assert_eq!(first["matched"], json!({"count": 2, "amount": "85.00"}));
    assert_eq!(first["pooled"], 1);
    assert!(first["source"]
        .as_str()
        .unwrap()
        .starts_with("uploaded by "));
    // The same file again: the same run, nothing changed.
    let again = upload(&p, &d1, "wechat", &file);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], first["id"]);
    assert_eq!(runs_count(&p), 3);
    assert_eq!(gl_balance(&p, "2901"), "230.54");

    // d2 closes (its day-end finds d1 reconciled); d2's statement with a total altered, or
    // cut short, is refused with its line and changes nothing.
    let d2 = date_after(&d1);
    assert_eq!(close_day(&p), d2);
    let good = String::from_utf8(statement_in(&sim, &d2, "alipay", "&charset=utf-8")).unwrap();
    let lines: Vec<&str> = good.split("\r\n").collect();
    let totals = lines
        .iter()
        .position(|l| l.starts_with("#交易合计"))
        .unwrap_or(lines.len() - 2);
    let mut bad_lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    bad_lines[totals] = bad_lines[totals].replacen("0笔", "1笔", 1);
    let bad = bad_lines.join("\r\n");
    let before = runs_count(&p);
    let r = upload(&p, &d2, "alipay", bad.as_bytes());
    assert_eq!(r.status, 422, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "statement_invalid");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line"),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    let cut = &good.as_bytes()[..good.len() / 2];
    let r = upload(&p, &d2, "alipay", cut);
    assert_eq!(r.status, 422, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(runs_count(&p), before);

    // The omitted charge of d0 becomes missing at the channel once its wait (3 business
    // days) is over: at d3's statement.
    close_day(&p); // d3 closes: its day-end reconciles d2
    close_day(&p); // d4 closes: its day-end reconciles d3
    let d3 = date_after(&d2);
    let run = run_of(&p, &d3);
    assert_eq!(
        kinds(&run),
        [("missing_at_channel".to_string(), request_of(&omitted))],
        "{run:#}"
    );
    // 20.00 less its 0.04 fee: short.
    assert_eq!(run["suspense"], json!({"long": "0.00", "short": "19.96"}));
    assert_eq!(gl_balance(&p, "1901"), "19.96");
    assert_eq!(run["pooled"], 0);

    // The mismatch listing pages across runs; the CSV report lists each.
    let r = p.admin(
        "GET",
        "/v1/reconciliation/mismatches?status=open&limit=4",
        "",
    );
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    assert_eq!(page["has_more"], true);
    let after = page["data"][3]["id"].as_str().unwrap();
    let rest = p
        .admin(
            "GET",
            &format!("/v1/reconciliation/mismatches?status=open&starting_after={after}"),
            "",
        )
        .json();
    // Six in all, less the fee difference written off: five open.
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "{rest:#}");
    let csv = p.req(
        "GET",
        &format!(
            "/v1/reconciliation/runs/{}",
            run_of(&p, &d0)["id"].as_str().unwrap()
        ),
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Accept", "text/csv"),
        ],
        b"",
    );
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(text.lines().count(), 1 + 5, "{text}");
    assert!(text.contains("status_mismatch"));

    // The ops page: each channel's last run (d3's) with its open mismatch.
    let data = p.req("GET", "/ops/data.json", &[], b"").json();
    let last = &data["reconciliation"][0];
    assert_eq!(
        (
            &last["channel"],
            &last["date"],
            &last["open"],
            &last["short"]
        ),
        (&json!("bank"), &json!(d3), &json!(1), &json!("19.96")),
        "{data:#}"
    );
    let page = String::from_utf8(p.req("GET", "/ops", &[], b"").body).unwrap();
    assert!(
        page.contains(&format!(
            r#"<tr data-channel="bank" class="bad"><td>bank</td><td data-field="date">{d3}</td>"#
        )),
        "{page}"
    );
}

fn date_after(d: &str) -> String {
    let date = jiff::civil::Date::strptime("%Y-%m-%d", d).unwrap();
    date.tomorrow().unwrap().strftime("%Y-%m-%d").to_string()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mismatch_of(run: &Value, kind: &str) -> String {
    run["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {run:#}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn mismatch(p: &Payd, run_id: &str, id: &str) -> Value {
    let page = p
        .admin(
            "GET",
            &format!("/v1/reconciliation/mismatches?run={run_id}&limit=1000"),
            "",
        )
        .json();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
        .clone()
}

fn merchant_pending(p: &Payd, shop: &Shop) -> String {
    p.admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json()["balances"]["pending"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Resolution: a fee difference within the tolerance is written off and a status mismatch
/// is settled by status sync, both by themselves; the rest by two operators (the proposer
/// cannot approve), every step audited; what a mismatch disputes is held back from the
/// merchant's settlement until it is resolved; the suspense accounts end at zero.
#[test]
fn mismatches_are_resolved_automatically_or_by_two_operators() {
    const ALICE: &str = "op_alice_0123456789abcdef0123456789abcdef";
    const BOB: &str = "op_bob_0123456789abcdef0123456789abcdef01";
    let operators = format!("alice={},bob={}", sha256_hex(ALICE), sha256_hex(BOB));
    let Day0 {
        sim,
        tmp: _tmp,
        p,
        shop,
        token,
        d0,
        ..
    } = day0(
        &[
            ("RONGPAY_OPERATORS", &operators),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "500"),
            ("RONGPAY_STATUS_SYNC_MS", "100"),
            ("RONGPAY_RECON_FETCH_RETRY_MS", "300"),
            ("RONGPAY_RECON_FEE_TOLERANCE", "0.05"),
        ],
        r#"{"name":"茶馆","fee_rate":"0.006","settlement_cycle_days":1}"#,
    );
    let pay = |otn: &str, amount: &str, plant: Option<&str>| -> Value {
        if let Some(plant) = plant {
            sim.put("bank", json!({"plant_next": [plant]}));
        }
        card_pay(&p, &shop.key, otn, amount, &token)
    };
    assert_eq!(pay("ok", "100.00", None)["status"], "succeeded");
    assert_eq!(pay("fee", "40.00", Some("fee"))["status"], "succeeded");
    assert_eq!(
        pay("dup", "60.00", Some("duplicate"))["status"],
        "succeeded"
    );
    assert_eq!(
        pay("amount", "30.00", Some("amount"))["status"],
        "succeeded"
    );
    let unanswered = pay("unanswered", "90.00", Some("unanswered"));
    assert_eq!(unanswered["status"], "processing");
    close_day(&p);
    let d1 = open_date(&p);
    sim.put("bank", json!({"business_date": d1}));
    close_day(&p);

    // The run of d0: the fee difference (0.01, within 0.05) is written off at once.
    let run = run_of(&p, &d0);
    let run_id = run["id"].as_str().unwrap().to_string();
    let fee = mismatch(&p, &run_id, &mismatch_of(&run, "fee_mismatch"));
    assert_eq!(fee["status"], "resolved", "{fee:#}");
    assert_eq!(fee["resolution"]["action"], "write_off");
    assert_eq!(fee["resolution"]["proposed_by"], "system");
    assert_eq!(gl_balance(&p, "5003"), "0.01");
    assert_eq!(gl_balance(&p, "1901"), "0.00");
    // Long: 1.00 (amount) + 59.88 (the duplicate row) + 89.82 (unanswered).
    assert_eq!(gl_balance(&p, "2901"), "150.70");
    // The amount mismatch holds the merchant's 29.82 of d0 back from maturity (T+1).
    assert_eq!(merchant_pending(&p, &shop), "29.82");

    // Maker-checker: alice proposes, alice cannot approve, bob does.
    let op = |token: &str, path: &str, body: &str| -> Response {
        p.req(
            "POST",
            path,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let dup = mismatch_of(&run, "duplicate");
    let base = "/v1/reconciliation/mismatches";
    let r = op(
        ALICE,
        &format!("{base}/{dup}/resolve"),
        r#"{"action":"reverse","note":"the channel refunded the duplicate charge (ref 2026-A1)"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "proposed");
    assert_eq!(r.json()["resolution"]["proposed_by"], "operator:alice");
    assert_eq!(gl_balance(&p, "2901"), "150.70", "a proposal moves nothing");
    let r = op(ALICE, &format!("{base}/{dup}/approve"), "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "approver_is_proposer")
    );
    let r = op(
        ALICE,
        &format!("{base}/{dup}/resolve"),
        r#"{"action":"write_off","note":"again"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "resolution_proposed")
    );
    let r = op(BOB, &format!("{base}/{dup}/approve"), "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        (&r.json()["status"], &r.json()["resolution"]["approved_by"]),
        (&json!("resolved"), &json!("operator:bob"))
    );
    assert_eq!(gl_balance(&p, "2901"), "90.82");
    let r = op(BOB, &format!("{base}/{dup}/approve"), "");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "no_resolution_proposed")
    );

    // Bad input changes nothing.
    let amount = mismatch_of(&run, "amount_mismatch");
    for (body, param) in [
        (r#"{"action":"forgive","note":"x"}"#, "action"),
        (r#"{"action":"reverse","note":""}"#, "note"),
        (r#"{"action":"reverse"}"#, ""),
    ] {
        let r = op(ALICE, &format!("{base}/{amount}/resolve"), body);
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
    let r = op(
        ALICE,
        &format!("{base}/rcm_nope/resolve"),
        r#"{"action":"reverse","note":"x"}"#,
    );
    assert_eq!(r.status, 404);
    let r = p.post(
        &shop.key,
        &format!("{base}/{amount}/resolve"),
        None,
        r#"{"action":"reverse","note":"x"}"#,
    );
    assert_eq!(r.status, 401, "merchants do not resolve");

    // A proposal withdrawn, then another approved: the amount's suspense goes back against
    // the channel's position and the hold is released.
    let r = op(
        BOB,
        &format!("{base}/{amount}/resolve"),
        r#"{"action":"write_off","note":"small"}"#,
    );
    assert_eq!(r.json()["status"], "proposed");
    let r = op(ALICE, &format!("{base}/{amount}/reject"), "");
    assert_eq!((r.status, &r.json()["status"]), (200, &json!("open")));
    let r = op(
        ALICE,
        &format!("{base}/{amount}/resolve"),
        r#"{"action":"reverse","note":"the channel corrected its amount to 30.00"}"#,
    );
    assert_eq!(r.json()["status"], "proposed");
    let r = op(BOB, &format!("{base}/{amount}/approve"), "");
    assert_eq!(r.json()["status"], "resolved");
    assert_eq!(gl_balance(&p, "2901"), "89.82");
    // Released: the next day-end matures it.
    close_day(&p);
    assert_eq!(merchant_pending(&p, &shop), "0.00");

    // The channel answers its status query again: status sync books the payment and the
    // status mismatch resolves by itself; the suspense accounts are back at zero.
    sim.put("bank", json!({"reveal": true}));
    let status = mismatch_of(&run, "status_mismatch");
    eventually(20, "the status mismatch resolves by itself", || {
        mismatch(&p, &run_id, &status)["status"] == "resolved"
    });
    let m = mismatch(&p, &run_id, &status);
    assert_eq!(
        (&m["resolution"]["action"], &m["resolution"]["proposed_by"]),
        (&json!("reverse"), &json!("system"))
    );
    assert_eq!(
        settled(&p, &shop.key, unanswered["id"].as_str().unwrap())["status"],
        "succeeded"
    );
    assert_eq!(gl_balance(&p, "2901"), "0.00");
    assert_eq!(gl_balance(&p, "1901"), "0.00");
    let open = p
        .admin("GET", "/v1/reconciliation/mismatches?status=open", "")
        .json();
    assert_eq!(open["data"], json!([]));
    let tb = p.admin("GET", "/v1/gl/trial_balance", "").json();
    assert_eq!(tb["balanced"], true, "{tb}");

    // Every step in the audit log, with who did it.
    let mut steps: Vec<(String, String)> = Vec::new();
    for action in ["auto_resolve", "propose", "approve", "reject"] {
        let r = p.admin(
            "GET",
            &format!("/v1/audit?action=recon_mismatch.{action}"),
            "",
        );
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        for e in r.json()["data"].as_array().unwrap() {
            steps.push((
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            ));
        }
    }
    for want in [
        ("recon_mismatch.auto_resolve", "system"),
        ("recon_mismatch.propose", "operator:alice"),
        ("recon_mismatch.approve", "operator:bob"),
        ("recon_mismatch.propose", "operator:bob"),
        ("recon_mismatch.reject", "operator:alice"),
        ("recon_mismatch.approve", "operator:bob"),
    ] {
        assert!(
            steps.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {steps:?}"
        );
    }
}

/// kill -9 while a run is matching (after its statement and its `running` record are
/// durable): the restart completes the run once, with the result an uninterrupted run has;
/// the same file again changes nothing.
#[test]
fn a_run_killed_midway_completes_once_after_the_restart() {
    let stall = [("RONGPAY_TEST_DAY_END_STALL", "reconciliation_run")];
    let Day0 {
        sim,
        tmp,
        p,
        ch,
        shop,
        token,
        d0,
    } = day0(&stall, MERCHANT);
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    for (otn, amount, plant) in [
        ("a", "100.00", None),
        ("b", "30.00", Some("amount")),
        ("c", "60.00", Some("duplicate")),
        ("d", "5.00", None),
    ] {
        if let Some(plant) = plant {
            sim.put("bank", json!({"plant_next": [plant]}));
        }
        assert_eq!(
            card_pay(&p, &shop.key, otn, amount, &token)["status"],
            "succeeded"
        );
    }
    // The channel disabled: the day-end fetches nothing; the operator uploads.
    let r = p.admin(
        "PATCH",
        &format!("/v1/channels/{}", ch["id"].as_str().unwrap()),
        r#"{"enabled":false}"#,
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    close_day(&p);
    let file = statement(&sim, &d0, "alipay");
    let addr = p.addr.clone();
    let (body, date) = (file.clone(), d0.clone());
    let upload_thread = std::thread::spawn(move || {
        try_request(
            &addr,
            "POST",
            &format!("/v1/reconciliation/statements?channel=bank&date={date}&format=alipay"),
            &[
                ("Authorization", &format!("Bearer {ADMIN}")),
                ("Content-Type", "text/csv"),
            ],
            &body,
        )
    });
    eventually(30, "the run is recorded running", || {
        let runs = p.admin("GET", "/v1/reconciliation/runs", "").json();
        runs["data"][0]["status"] == "running"
    });
    assert_eq!(
        gl_balance(&p, "2901"),
        "0.00",
        "nothing is booked before the end"
    );
    p.kill9();
    assert!(
        upload_thread.join().unwrap().is_err(),
        "the upload got no answer"
    );

    let p = Payd::start_in(&dir, &env);
    let run = run_of(&p, &d0);
    assert_eq!(run["status"], "done", "{run:#}");
    assert_eq!(
        kinds(&run).into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["amount_mismatch", "duplicate"]
    );
    assert_eq!(run["matched"], json!({"count": 3, "amount": "165.00"}));
    // 1.00 (the amount) + 59.88 (the second row of 60.00), booked once.
    assert_eq!(run["suspense"], json!({"long": "60.88", "short": "0.00"}));
    assert_eq!(gl_balance(&p, "2901"), "60.88");
    let again = upload(&p, &d0, "alipay", &file);
    assert_eq!(
        again.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(again.json()["id"], run["id"]);
    assert_eq!(gl_balance(&p, "2901"), "60.88");
    assert_eq!(runs_count(&p), 1);
    let tb = p.admin("GET", "/v1/gl/trial_balance", "").json();
    assert_eq!(tb["balanced"], true, "{tb}");
}

/// A statement the channel cannot give (it is down at the day-end) is recorded missing, the
/// day-end goes on, `rongpay_recon_statements_late` counts it once past its due time, and
/// the retry reconciles it as soon as the channel answers.
#[test]
fn a_missing_statement_is_retried_and_reported_late() {
    let Day0 {
        sim,
        tmp: _tmp,
        p,
        shop,
        token,
        d0,
        ..
    } = day0(
        &[
            ("RONGPAY_RECON_FETCH_RETRY_MS", "300"),
            ("RONGPAY_RECON_FETCH_TIMEOUT_MS", "500"),
            ("RONGPAY_RECON_STATEMENT_DUE_S", "0"),
        ],
        MERCHANT,
    );
    assert_eq!(
        card_pay(&p, &shop.key, "a", "100.00", &token)["status"],
        "succeeded"
    );
    close_day(&p);
    // The channel is down when the day-end of d1 asks for d0's statement.
    sim.put("bank", json!({"down": true}));
    let d1 = close_day(&p);
    let de = p.admin("GET", &format!("/v1/gl/day_end/{d1}"), "").json();
    let step = de["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "reconciliation")
        .unwrap()
        .clone();
    assert_eq!(step["status"], "done", "the day-end goes on: {de:#}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("statement missing"),
        "{step}"
    );
    let late = || {
        let m = p.req("GET", "/metrics", &[], b"");
        String::from_utf8_lossy(&m.body)
            .lines()
            .find(|l| l.starts_with("rongpay_recon_statements_late "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    eventually(10, "the missing statement counts as late", || {
        late().as_deref() == Some("1")
    });
    assert_eq!(
        runs_count(&p),
        1,
        "only the empty statement of the day before d0"
    );
    // Back up: the retry reconciles it, and nothing is late any more.
    sim.put("bank", json!({"down": false}));
    // A run is listed `running` from its first (durable) write until its matching is
    // booked: wait for `done`, or the counts read may be the zeros it starts with.
    eventually(20, "the retry reconciles d0", || {
        p.admin("GET", &format!("/v1/reconciliation/runs?date={d0}"), "")
            .json()["data"]
            .as_array()
            .is_some_and(|r| r.len() == 1 && r[0]["status"] == "done")
    });
    let run = run_of(&p, &d0);
    assert_eq!(
        (
            &run["source"],
            &run["matched"]["count"],
            &run["mismatch_count"]
        ),
        (&json!("fetched"), &json!(1), &json!(0))
    );
    eventually(10, "nothing is late", || late().as_deref() == Some("0"));
}
