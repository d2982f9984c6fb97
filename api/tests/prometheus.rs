//! Metrics and alerting with the real tools: payd's `/metrics` after a real workload (balance
//! and card payments with a failover, a decline, a refund, a replay) is clean for
//! `promtool check metrics`, describes every family, counts what happened and carries no id
//! in a label; the alert rules pass `promtool test rules`; a real Prometheus started by
//! `scripts/ops.sh` scrapes payd, loads the rules and answers queries about our series.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::json;

/// Every family payd exports once it has served this workload.
const FAMILIES: &[&str] = &[
    "rongpay_http_requests_total",
    "rongpay_http_request_duration_seconds",
    "rongpay_payments_total",
    "rongpay_payment_amount_minor_units_total",
    "rongpay_refunds_total",
    "rongpay_refund_amount_minor_units_total",
    "rongpay_idempotency_requests_total",
    "rongpay_risk_decisions_total",
    "rongpay_risk_score",
    "rongpay_router_choices_total",
    "rongpay_router_failovers_total",
    "rongpay_channel_calls_total",
    "rongpay_channel_call_duration_seconds",
    "rongpay_channel_breaker_state",
    "rongpay_channel_success_ratio",
    "rongpay_channel_inflight_calls",
    "rongpay_channel_enabled",
    "rongpay_channel_position_minor_units",
    "rongpay_channel_position_low_water_minor_units",
    "rongpay_reserve_balance_minor_units",
    "rongpay_reserve_low_water_minor_units",
    "rongpay_coverage_funds_minor_units",
    "rongpay_coverage_owed_minor_units",
    "rongpay_wal_sync_duration_seconds",
    "rongpay_wal_batch_units",
    "rongpay_wal_batch_bytes",
    "rongpay_wal_batch_keys",
    "rongpay_wal_commit_delay_seconds",
    "rongpay_wal_checkpoints_total",
    "rongpay_wal_checkpoint_keys_total",
    "rongpay_wal_dedup_ids_total",
    "rongpay_wal_dedup_filter_bytes",
    "rongpay_wal_dedup_held_ids",
    "rongpay_store_key_filter_bytes",
    "rongpay_store_online_discard",
    "rongpay_wal_write_stalls_total",
    "rongpay_wal_queue_depth",
    "rongpay_wal_poisoned",
    "rongpay_wal_last_seq",
    "rongpay_actor_mailbox_depth",
    "rongpay_accounts_active",
    "rongpay_ledger_inflight_commands",
    "rongpay_webhook_backlog",
    "rongpay_webhook_deliveries_total",
    "rongpay_log_lines_dropped_total",
    "rongpay_accounts_passivated_total",
    "rongpay_rate_limited_total",
    "rongpay_sms_messages_total",
    "rongpay_sms_receipts_total",
    "rongpay_otp_total",
    "rongpay_identity_checks_total",
    "rongpay_kyc_limit_refusals_total",
    "rongpay_coupon_redemptions_total",
    "rongpay_alerts_received_total",
    "rongpay_ready",
    "rongpay_build_info",
];

/// `name{labels} value` lines of the exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap();
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include all of `want`.
fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    samples(text)
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn scrape(p: &Payd) -> String {
    let r = p.req("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

#[test]
fn metrics_after_a_workload_are_described_counted_bounded_and_promtool_clean() {
    let sim = Sim::start(&["good", "cut"]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_CHANNEL_TIMEOUT_MS", "500"),
        ],
    );
    // "cut" is the cheaper one, so it is tried first; it refuses connections.
    channel(&p, "good", &format!("http://{}", sim.addr("good")), "0.003");
    channel(&p, "cut", &format!("http://{}", sim.addr("cut")), "0.002");
    sim.put("cut", json!({"down": true}));
    let r = p.admin(
        "PATCH",
        &format!(
            "/v1/channels/{}",
            channels(&p).iter().find(|c| c["name"] == "good").unwrap()["id"]
                .as_str()
                .unwrap()
        ),
        r#"{"position_low_water":"50.00"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["position_low_water"], "50.00");

    let shop = merchant(&p, r#"{"name":"Metrics","fee_rate":"0.006"}"#);
    let payer = funded_account(&p, "100.00");
    let ok = pay(&p, &shop.key, "m-1", "10.00", &payer);
    assert_eq!(ok.json()["status"], "succeeded");
    let declined = pay(&p, &shop.key, "m-2", "1000.00", &payer);
    assert_eq!(declined.json()["failure_code"], "insufficient_funds");
    let body = format!(
        r#"{{"out_trade_no":"m-3","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#
    );
    assert_eq!(
        p.post(&shop.key, "/v1/payments", Some("k-1"), &body).status,
        201
    );
    let replay = p.post(&shop.key, "/v1/payments", Some("k-1"), &body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let token = tokenize(&p, &shop.key, "4111111111111111");
    let card = card_pay(&p, &shop.key, "m-4", "20.00", &token);
    assert_eq!(card["status"], "succeeded", "{card}");
    assert_eq!(card["routing"]["channel"], "good");
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{}/refunds", ok.json()["id"].as_str().unwrap()),
        None,
        r#"{"out_refund_no":"r-1","amount":"1.00"}"#,
    );
    assert_eq!(r.json()["status"], "succeeded", "{:?}", r.json());
    assert_eq!(p.req("GET", "/v1/nowhere", &[], b"").status, 404);

    let text = scrape(&p);

    // promtool, the Prometheus project's own linter, finds nothing to say.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by scripts/setup.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    for family in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {family} "))
                && text.contains(&format!("# TYPE {family} ")),
            "{family} is not exported with HELP and TYPE:\n{text}"
        );
    }
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("rongpay_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }

    // What happened is what was counted.
    let count = |name: &str, want: &[(&str, &str)]| value(&text, name, want);
    let pays = "rongpay_payments_total";
    assert_eq!(
        count(
            pays,
            &[
                ("method", "balance"),
                ("status", "succeeded"),
                ("channel", "none")
            ]
        ),
        2.0
    );
    assert_eq!(
        count(
            pays,
            &[
                ("method", "balance"),
                ("status", "failed"),
                ("failure_code", "insufficient_funds")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(
            pays,
            &[
                ("method", "bank_card"),
                ("status", "succeeded"),
                ("channel", "good"),
                ("failure_code", "none")
            ]
        ),
        1.0
    );
    // The data dir's file system as payd found it at open: 1 only where it discards online.
    let discard = storage::mounts::of(&tmp.path().join("data"))
        .expect("the data dir is on a mount in /proc/self/mountinfo")
        .online_discard();
    assert_eq!(
        count("rongpay_store_online_discard", &[]),
        if discard { 1.0 } else { 0.0 }
    );
    let amount = "rongpay_payment_amount_minor_units_total";
    assert_eq!(
        count(amount, &[("currency", "CNY"), ("method", "balance")]),
        1100.0
    );
    assert_eq!(
        count(amount, &[("currency", "CNY"), ("method", "bank_card")]),
        2000.0
    );
    assert_eq!(
        count("rongpay_refunds_total", &[("status", "succeeded")]),
        1.0
    );
    assert_eq!(
        count(
            "rongpay_refund_amount_minor_units_total",
            &[("currency", "CNY")]
        ),
        100.0
    );
    assert_eq!(
        count(
            "rongpay_idempotency_requests_total",
            &[("outcome", "replayed")]
        ),
        1.0
    );
    assert_eq!(
        count("rongpay_idempotency_requests_total", &[("outcome", "new")]),
        1.0
    );
    assert_eq!(
        count("rongpay_risk_decisions_total", &[("decision", "approve")]),
        4.0
    );
    assert_eq!(count("rongpay_risk_score_count", &[]), 4.0);
    assert_eq!(
        count("rongpay_router_choices_total", &[("channel", "cut")]),
        1.0
    );
    assert_eq!(
        count(
            "rongpay_router_failovers_total",
            &[("channel", "cut"), ("reason", "connection_refused")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "rongpay_channel_calls_total",
            &[("channel", "cut"), ("outcome", "connection_refused")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "rongpay_channel_calls_total",
            &[("channel", "good"), ("outcome", "charged")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "rongpay_channel_call_duration_seconds_count",
            &[("channel", "good")]
        ),
        1.0
    );
    // 20.00 charged, 0.3 % channel fee: the channel owes us 19.94; funding alert under 50.00.
    assert_eq!(
        count(
            "rongpay_channel_position_minor_units",
            &[("channel", "good")]
        ),
        1994.0
    );
    assert_eq!(
        count(
            "rongpay_channel_position_low_water_minor_units",
            &[("channel", "good")]
        ),
        5000.0
    );
    assert_eq!(
        count("rongpay_channel_breaker_state", &[("channel", "good")]),
        0.0
    );
    assert_eq!(count("rongpay_channel_enabled", &[("channel", "cut")]), 1.0);
    assert!(
        count(
            "rongpay_http_requests_total",
            &[
                ("route", "/v1/payments"),
                ("method", "POST"),
                ("status", "201")
            ]
        ) >= 5.0
    );
    assert_eq!(
        count(
            "rongpay_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(count("rongpay_wal_sync_duration_seconds_count", &[]) >= 5.0);
    assert_eq!(count("rongpay_ready", &[]), 1.0);
    assert_eq!(count("rongpay_wal_poisoned", &[]), 0.0);

    // Bounded cardinality: no label value is an id.
    let id_like =
        regex_lite::Regex::new(r"(acct|pay|mch|chn|re|evt|otp|sms|tok|card)_[0-9a-f]{16}").unwrap();
    for (name, labels, _) in samples(&text) {
        for (k, v) in labels {
            assert!(!id_like.is_match(&v), "{name}{{{k}={v:?}}} holds an id");
        }
    }
    // Every query of the Grafana dashboard names metrics that payd exports.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/ops/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let name = regex_lite::Regex::new(r"rongpay_[a-z_]+").unwrap();
    let exported: std::collections::BTreeSet<String> =
        samples(&text).into_iter().map(|(n, _, _)| n).collect();
    let mut queries = 0;
    let mut named = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            queries += 1;
            let names: Vec<_> = name
                .find_iter(expr)
                .map(|m| m.as_str().to_string())
                .collect();
            assert!(!names.is_empty(), "{expr} names no metric of ours");
            for n in names {
                assert!(
                    exported.contains(&n),
                    "the dashboard queries {n}, which /metrics does not export: {expr}"
                );
                named.insert(n);
            }
        }
    }
    println!(
        "dashboard: {queries} queries over {} series names, all exported",
        named.len()
    );
    println!(
        "metrics: {} families, {} samples, {} bytes; promtool check metrics: clean",
        text.lines().filter(|l| l.starts_with("# TYPE ")).count(),
        samples(&text).len(),
        text.len()
    );
}

#[test]
fn the_alert_rules_load_and_pass_their_unit_tests() {
    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ops");
    let check = Command::new("promtool")
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&ops)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let test = Command::new("promtool")
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(&ops)
        .output()
        .unwrap();
    let tested = String::from_utf8_lossy(&test.stdout).to_string();
    assert!(
        test.status.success() && tested.contains("SUCCESS"),
        "{tested}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    println!("{}{}", said.trim(), tested.trim());
}

#[test]
fn a_real_prometheus_started_by_ops_sh_scrapes_payd_loads_the_rules_and_answers_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let shop = merchant(&p, r#"{"name":"Scraped","fee_rate":"0.006"}"#);
    let payer = funded_account(&p, "10.00");
    assert_eq!(pay(&p, &shop.key, "s-1", "1.00", &payer).status, 201);
    let ops = Ops::start(&p, &tmp.path().join("ops"));

    eventually(30, "Prometheus to have scraped payd", || {
        ops.query(r#"up{job="payd"}"#)
            .first()
            .is_some_and(|s| s["value"][1] == "1")
    });
    let ready = ops.query("rongpay_ready");
    assert_eq!(ready.len(), 1, "{ready:?}\n{}", ops.log("prometheus"));
    assert_eq!(ready[0]["value"][1], "1");
    assert_eq!(ready[0]["metric"]["instance"], p.addr.as_str());
    let paid = ops.query(r#"sum(rongpay_payments_total{status="succeeded"})"#);
    assert_eq!(paid[0]["value"][1], "1", "{paid:?}");
    // A rate needs two scrapes in its window.
    eventually(30, "a p99 of journal syncs", || {
        ops.query(
            r#"histogram_quantile(0.99, sum by (le) (rate(rongpay_wal_sync_duration_seconds_bucket[1m])))"#,
        )
        .len()
            == 1
    });

    let r = try_request(&ops.prometheus, "GET", "/api/v1/rules", &[], b"").unwrap();
    let groups = r.json()["data"]["groups"].as_array().unwrap().clone();
    let rules: Vec<_> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect();
    assert_eq!(rules.len(), 22, "{rules:?}");
    assert!(rules.iter().all(|r| r["health"] != "err"), "{rules:?}");
    let r = try_request(&ops.prometheus, "GET", "/api/v1/alertmanagers", &[], b"").unwrap();
    assert_eq!(
        r.json()["data"]["activeAlertmanagers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{:?}",
        r.json()
    );
    println!(
        "Prometheus at {} scraped payd at {}: rongpay_ready 1, 1 payment succeeded, {} rules loaded",
        ops.prometheus,
        p.addr,
        rules.len()
    );
}
