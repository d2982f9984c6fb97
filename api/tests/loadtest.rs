//! The load-test harness (`loadtest::harness`, what the `loadtest` binary runs) against the
//! real payd: a mixed run passes its end-of-run checks; a kill -9 and restart in the middle
//! of a run leaves answers unknown but loses nothing acknowledged; and a server that comes
//! back without its data is caught as losing payments.

use std::rc::Rc;
use std::time::Duration;

use crate::common::*;
use loadtest::harness::payd::{Mix, Payd as Target, PaydConfig, Scenario};
use loadtest::harness::report::Checks;
use loadtest::harness::{self, Pacing, RunConfig, Stats};

fn config(addr: &str, mix: &str) -> PaydConfig {
    PaydConfig {
        addr: addr.to_string(),
        admin_token: ADMIN.to_string(),
        scenario: Scenario::Uniform,
        mix: Mix::parse(mix).unwrap(),
        accounts: 200,
        merchants: 4,
        idempotency_keys: true,
        setup_connections: 8,
        sim: None,
        batch_size: 8_190,
        floor_records: 1,
    }
}

/// Sets up, runs closed-loop for `secs` with 16 connections, and checks.
fn load(config: PaydConfig, secs: u64) -> (Stats, Checks) {
    let (stats, checks) = drive(config, secs, true);
    (stats, checks.expect("checked"))
}

/// Sets up and runs closed-loop for `secs` with 16 connections; then, with `check`, checks.
fn drive(config: PaydConfig, secs: u64, check: bool) -> (Stats, Option<Checks>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let target = Rc::new(Target::setup(config).await.unwrap());
        let stats = harness::run(
            target.clone(),
            &RunConfig {
                connections: 16,
                pacing: Pacing::Closed,
                duration: Duration::from_secs(secs),
                warmup: Duration::ZERO,
                max_requests: 1_000_000,
                progress: false,
                phase: None,
            },
        )
        .await;
        let checks = if check {
            Some(target.check(8).await.unwrap())
        } else {
            None
        };
        (stats, checks)
    })
}

#[test]
fn a_mixed_run_is_checked_payment_by_payment() {
    let p = Payd::start();
    let (stats, checks) = load(config(&p.addr, "refund=10,retry=10,decline=10"), 2);
    println!("outcomes {:?}\nchecks {checks:?}", stats.outcomes);
    assert!(checks.passed, "{checks:?}");
    assert_eq!(stats.errors, 0, "{:?}", stats.outcomes);
    for outcome in [
        "succeeded",
        "refunded",
        "replayed",
        "declined:insufficient_funds",
    ] {
        assert!(
            stats.outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "no {outcome}"
        );
    }
    assert_eq!(checks.verified, checks.acknowledged);
    assert!(checks.acknowledged > 100 && checks.accounts_checked >= 200);
}

/// Starts payd in a temp dir and, on another thread, kill -9s it after `after` and restarts it
/// on the same dir and address. The thread's result is the second payd.
fn killed_after(after: Duration) -> (tempfile::TempDir, String, std::thread::JoinHandle<Payd>) {
    killed_after_with(after, &[])
}

/// [`killed_after`], both payds with `env` besides the admin token.
fn killed_after_with(
    after: Duration,
    env: &[(&'static str, &'static str)],
) -> (tempfile::TempDir, String, std::thread::JoinHandle<Payd>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut env = env.to_vec();
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN));
    let first = Payd::start_in(&dir, &env);
    let addr = first.addr.clone();
    let again = addr.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(after);
        first.kill9();
        std::thread::sleep(Duration::from_millis(300));
        let mut second = Payd::spawn_at(&dir, &again, &env);
        second.wait_ready();
        second
    });
    (tmp, addr, killer)
}

#[test]
fn a_kill9_mid_run_leaves_unknowns_but_loses_nothing_acknowledged() {
    let (_tmp, addr, killer) = killed_after(Duration::from_millis(1_500));
    let (stats, checks) = load(config(&addr, "refund=10,retry=5"), 4);
    let _second = killer.join().unwrap();
    println!("outcomes {:?}\nchecks {checks:?}", stats.outcomes);
    assert!(checks.passed, "{checks:?}");
    assert!(checks.unknown_outcomes > 0, "the kill interrupted nothing?");
    assert_eq!(checks.missing, 0);
    assert!(stats.outcomes.get("succeeded").copied().unwrap_or(0) > 100);
}

#[test]
fn a_server_that_comes_back_without_its_data_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let first = Payd::start_in(&tmp.path().join("a"), &env);
    let addr = first.addr.clone();
    let (empty, addr2) = (tmp.path().join("b"), addr.clone());
    let swapper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_000));
        first.kill9();
        let mut second = Payd::spawn_at(&empty, &addr2, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
        second.wait_ready();
        second
    });
    let (_, checks) = load(config(&addr, ""), 2);
    let _second = swapper.join().unwrap();
    println!("checks {checks:?}");
    assert!(!checks.passed);
    assert!(checks.missing > 100, "{checks:?}");
    assert!(checks.balance_mismatches > 0);
}

#[test]
fn a_batch_run_is_checked_account_by_account() {
    let p = Payd::start();
    let config = PaydConfig {
        scenario: Scenario::Batch,
        batch_size: 500,
        ..config(&p.addr, "")
    };
    let (stats, checks) = load(config, 2);
    println!("outcomes {:?}\nchecks {checks:?}", stats.outcomes);
    assert!(checks.passed, "{checks:?}");
    assert_eq!(stats.errors, 0, "{:?}", stats.outcomes);
    assert!(stats.outcomes.get("batch").copied().unwrap_or(0) > 10);
    assert!(checks.accounts_checked >= 200 && checks.balance_mismatches == 0);
}

/// Batch load (batches of 500) for 4 s with payd killed -9 at 1.5 s and restarted, both
/// with `env`: every payer's balance is what the answers imply (each acknowledged transfer
/// is there, each one of a batch whose answer was lost is there exactly once after sending
/// it again). Answers the restarted payd and its directory's owner.
fn batch_load_through_a_kill9(env: &[(&'static str, &'static str)]) -> (tempfile::TempDir, Payd) {
    let (tmp, addr, killer) = killed_after_with(Duration::from_millis(1_500), env);
    let config = PaydConfig {
        scenario: Scenario::Batch,
        batch_size: 500,
        ..config(&addr, "")
    };
    let (stats, checks) = load(config, 4);
    let second = killer.join().unwrap();
    println!("outcomes {:?}\nchecks {checks:?}", stats.outcomes);
    assert!(checks.passed, "{checks:?}");
    assert!(
        checks.unknown_outcomes > 0,
        "the kill interrupted no batch?"
    );
    assert!(checks.accounts_checked >= 200 && checks.balance_mismatches == 0);
    assert!(stats.outcomes.get("batch").copied().unwrap_or(0) > 10);
    (tmp, second)
}

#[test]
fn a_kill9_during_batch_load_loses_no_acknowledged_transfer() {
    batch_load_through_a_kill9(&[]);
}

#[test]
fn a_kill9_while_balance_checkpoints_are_ingested_loses_and_repeats_nothing() {
    // Balance deltas sealed at 64 accounts (the default's 4,096 accounts at least is never
    // reached in a test): table files of merge operands are ingested into the accounts
    // family all along, so the kill lands among sealed deltas, ingestions in flight and
    // ingested files, and the restart replays the journal after the accounts' position.
    let (_tmp, second) = batch_load_through_a_kill9(&[("RONGPAY_BALANCE_SEAL_ACCOUNTS", "64")]);
    // The second payd ingested checkpoints of its own while the load went on.
    assert_counter_at_least(&second, "rongpay_wal_checkpoints_ingested_total", 1.0);
}

/// Asserts that `payd`'s counter `name` (unlabelled) is at least `min`.
fn assert_counter_at_least(payd: &Payd, name: &str, min: f64) {
    let metrics = String::from_utf8(payd.req("GET", "/metrics", &[], b"").body).unwrap();
    let values: Vec<f64> = metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        values.len() == 1 && values[0] >= min,
        "{name} {values:?}\n{metrics}"
    );
}

#[test]
fn a_kill9_while_dedup_ids_are_ingested_loses_and_repeats_nothing() {
    // Held transfer ids sealed every 1,000 (the default 262,144 is never reached in a test):
    // the writer's runs are ingested into the dedup index all along, so the kill lands among
    // held ids, ingestions in flight and ingested ones, and the restart replays the journal
    // after the last mark. A batch whose answer the kill lost is sent again: each transfer
    // must then be found (applied once), never applied twice.
    let (_tmp, second) = batch_load_through_a_kill9(&[("RONGPAY_DEDUP_SEAL_IDS", "1000")]);
    // The second payd ingested while the load went on (its replay of the first's held ids
    // is not counted: only its own ingestions).
    assert_counter_at_least(&second, "rongpay_wal_dedup_ingested_ids_total", 1_000.0);
}

/// The durable floor (`bench_floor`, `loadtest/ab.sh floor`): an unknown path unless switched
/// on; then the operator's alone, its parameter checked, and every request it answers `201`
/// durable: after the harness's floor scenario and a kill -9, the store holds exactly the
/// records of the requests answered.
#[test]
fn the_durable_floor_is_off_by_default_and_each_answer_is_durable_when_on() {
    let off = Payd::start();
    let r = off.post(ADMIN, "/bench/floor", None, "{}");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "route_not_found")
    );
    drop(off);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = Payd::start_in(
        &dir,
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_BENCH_FLOOR", "true"),
            // One client IP past 100,000 requests in the run's second would be refused.
            ("RONGPAY_RATE_IP_PER_S", "1000000"),
            ("RONGPAY_RATE_IP_BURST", "1000000"),
        ],
    );
    let r = p.post("wrong-token-wrong-token", "/bench/floor", None, "{}");
    assert_eq!(r.status, 401);
    for query in ["?records=0", "?records=9", "?records=x", "?record=1"] {
        let r = p.post(ADMIN, &format!("/bench/floor{query}"), None, "{}");
        assert_eq!(r.status, 400, "{query}");
        assert!(
            ["invalid_records", "invalid_parameter"].contains(&r.error_code().as_str()),
            "{query}: {}",
            r.error_code()
        );
    }
    let r = p.post(ADMIN, "/bench/floor?records=8", None, r#"{"any":"body"}"#);
    assert_eq!(r.status, 201);
    assert!(r.json()["id"].as_str().unwrap().starts_with("flr_"));

    let floor = PaydConfig {
        scenario: Scenario::Floor,
        ..config(&p.addr, "")
    };
    let (stats, _) = drive(floor, 1, false);
    println!("outcomes {:?}", stats.outcomes);
    assert_eq!(stats.errors, 0, "{:?}", stats.outcomes);
    let answered = stats.outcomes.get("201").copied().unwrap_or(0);
    assert!(answered > 100, "{:?}", stats.outcomes);
    p.kill9();

    let (store, _) = storage::Store::open(&dir, storage::StoreOptions::default()).unwrap();
    let floor_records: u64 = store
        .census()
        .unwrap()
        .iter()
        .filter(|(cf, prefix, _, _)| cf == "aux" && prefix == "xbf")
        .map(|(_, _, n, _)| *n)
        .sum();
    assert_eq!(floor_records, 8 + answered);
}
