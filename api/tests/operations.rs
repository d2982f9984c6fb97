//! The operational answers, each driven for real against payd: account status changes
//! (`account_frozen`, `account_closed`, `account_not_empty`), admission overload
//! (`overloaded`), a second process waiting for the data dir (`not_ready`), concurrent
//! refunds of one payment (`refund_in_progress`) and decisions on one held payment
//! (`review_in_progress`), a broken chunked body (`invalid_body`), and a credit that would
//! overflow a balance (`limit_exceeded`); and the threads' scheduling policies
//! (`ledger_sched_batch`).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::*;

const FEES: &str = "acct_ffffffff00000000000000000002009c";

fn set_status(p: &Payd, account: &str, status: &str) -> Response {
    p.admin(
        "PATCH",
        &format!("/v1/accounts/{account}"),
        &format!(r#"{{"status":"{status}"}}"#),
    )
}

fn deposit(p: &Payd, account: &str, amount: &str) -> Response {
    p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        &format!(r#"{{"amount":"{amount}"}}"#),
    )
}

#[test]
fn frozen_and_closed_accounts_refuse_money_durably() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = Payd::start_in(&dir, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let shop = merchant(&p, r#"{"name":"Status","fee_rate":"0.01"}"#);
    let payer = funded_account(&p, "100.00");

    let r = set_status(&p, &payer, "frozen");
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["status"], "frozen");
    assert_eq!(r.json()["balance"], "100.00");

    // A declined payment is a created, failed payment; nothing moves.
    let r = pay(&p, &shop.key, "frozen-1", "10.00", &payer);
    assert_eq!(r.status, 201);
    assert_eq!(
        (
            r.json()["status"].as_str(),
            r.json()["failure_code"].as_str()
        ),
        (Some("failed"), Some("account_frozen"))
    );
    let r = deposit(&p, &payer, "1.00");
    assert_eq!((r.status, r.error_code().as_str()), (409, "account_frozen"));
    let r = set_status(&p, &payer, "closed");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "account_not_empty")
    );
    assert_eq!(p.balance(&payer), "100.00");
    assert_eq!(p.balance(&shop.account), "0.00");

    // A frozen merchant account declines the payments that would credit it.
    assert_eq!(set_status(&p, &shop.account, "frozen").status, 200);
    let r = pay(&p, &shop.key, "frozen-2", "10.00", &payer);
    assert_eq!(r.json()["failure_code"], "account_frozen");
    assert_eq!(set_status(&p, &shop.account, "active").status, 200);

    // Unfrozen, the same payer pays.
    assert_eq!(set_status(&p, &payer, "active").json()["status"], "active");
    let r = pay(&p, &shop.key, "thawed-1", "10.00", &payer);
    assert_eq!(r.json()["status"], "succeeded");
    assert_eq!(p.balance(&payer), "90.00");
    assert_eq!(p.balance(&shop.account), "9.90");

    // Closing is final and only for an empty account.
    let empty = empty_account(&p);
    assert_eq!(set_status(&p, &empty, "closed").json()["status"], "closed");
    let r = deposit(&p, &empty, "1.00");
    assert_eq!((r.status, r.error_code().as_str()), (409, "account_closed"));
    let r = set_status(&p, &empty, "active");
    assert_eq!((r.status, r.error_code().as_str()), (409, "account_closed"));
    let r = pay(&p, &shop.key, "closed-1", "1.00", &empty);
    assert_eq!(r.json()["failure_code"], "account_closed");

    // Bad requests change nothing.
    for (account, body, status, code) in [
        (
            payer.as_str(),
            r#"{"status":"asleep"}"#,
            400,
            "invalid_parameter",
        ),
        (
            payer.as_str(),
            r#"{"state":"frozen"}"#,
            400,
            "invalid_parameter",
        ),
        (payer.as_str(), r#"{}"#, 400, "parameter_missing"),
        (FEES, r#"{"status":"frozen"}"#, 400, "invalid_parameter"),
        (
            "acct_00000000000000000000000000000001",
            r#"{"status":"frozen"}"#,
            404,
            "resource_not_found",
        ),
    ] {
        let r = p.admin("PATCH", &format!("/v1/accounts/{account}"), body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
    }
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "PATCH",
        &format!("/v1/accounts/{}", shop.account),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"status":"frozen"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_credentials")
    );
    assert_eq!(set_status(&p, &payer, "frozen").status, 200);

    // Status changes are journal entries: a restart (even kill -9) keeps them.
    p.kill9();
    let p = Payd::start_in(&dir, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let get = |id: &str| p.admin("GET", &format!("/v1/accounts/{id}"), "").json();
    assert_eq!(get(&payer)["status"], "frozen");
    assert_eq!(get(&empty)["status"], "closed");
    assert_eq!(get(&shop.account)["status"], "active");
    assert_eq!(get(&payer)["balance"], "90.00");
}

#[test]
fn admission_overload_is_503_and_moves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let p = Arc::new(Payd::start_in(
        &dir,
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_INFLIGHT_MAX", "1"),
        ],
    ));
    let shop = Arc::new(merchant(&p, r#"{"name":"Busy","fee_rate":"0"}"#));
    let payer = Arc::new(funded_account(&p, "100.00"));
    const THREADS: usize = 16;
    const EACH: usize = 10;
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (p, shop, payer, start) = (p.clone(), shop.clone(), payer.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..EACH)
                    .map(|i| {
                        let otn = format!("busy-{t}-{i}");
                        let key = format!("k-{otn}");
                        let r = p.post(
                            &shop.key,
                            "/v1/payments",
                            Some(&key),
                            &payment_body(&otn, &payer),
                        );
                        let code = (r.status != 201).then(|| r.error_code());
                        (otn, r.status, code)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let created = answers.iter().filter(|a| a.1 == 201).count();
    let overloaded: Vec<_> = answers
        .iter()
        .filter(|a| a.1 == 503 && a.2.as_deref() == Some("overloaded"))
        .collect();
    println!(
        "{} payments: {created} created, {} answered 503 overloaded",
        answers.len(),
        overloaded.len()
    );
    assert_eq!(created + overloaded.len(), answers.len(), "{answers:?}");
    assert!(created > 0 && !overloaded.is_empty());
    // Only the acknowledged payments moved money (1.00 each, no fee).
    assert_eq!(p.balance(&shop.account), cents(created as i64 * 100));
    assert_eq!(p.balance(&payer), cents(10_000 - created as i64 * 100));
    // An overloaded request was not remembered: retried with its key, it goes through.
    let (otn, _, _) = overloaded[0];
    let r = p.post(
        &shop.key,
        "/v1/payments",
        Some(&format!("k-{otn}")),
        &payment_body(otn, &payer),
    );
    assert_eq!((r.status, r.header("Idempotent-Replayed")), (201, None));
    assert_eq!(r.json()["status"], "succeeded");
}

fn cents(n: i64) -> String {
    format!("{}.{:02}", n / 100, n % 100)
}

fn payment_body(otn: &str, payer: &str) -> String {
    format!(
        r#"{{"out_trade_no":"{otn}","amount":"1.00","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#
    )
}

#[test]
fn a_second_payd_on_the_same_data_dir_is_not_ready_until_the_first_lets_go() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let first = Payd::start_in(&dir, &env);
    let shop = merchant(&first, r#"{"name":"Handover"}"#);
    let payer = funded_account(&first, "50.00");
    let paid = pay(&first, &shop.key, "handover-1", "20.00", &payer).json();
    assert_eq!(paid["status"], "succeeded");

    // The successor listens at once but cannot open the store: alive, not ready, and every
    // endpoint that needs the store answers 503 not_ready.
    let mut second = Payd::spawn_in(&dir, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_request(&second.addr, "GET", "/healthz", &[], b"")
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "the second payd never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let r = second.req("GET", "/readyz", &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (503, "not_ready"));
    let r = second.admin("POST", "/v1/accounts", r#"{"currency":"CNY"}"#);
    assert_eq!((r.status, r.error_code().as_str()), (503, "not_ready"));
    let r = pay(&second, &shop.key, "handover-2", "1.00", &payer);
    assert_eq!((r.status, r.error_code().as_str()), (503, "not_ready"));
    // Still served by the first.
    assert_eq!(first.balance(&payer), "30.00");

    // The first stops; the second takes the store over with everything acknowledged.
    assert!(first.terminate().success());
    second.wait_ready();
    let id = paid["id"].as_str().unwrap();
    let auth = format!("Bearer {}", shop.key);
    let r = second.req(
        "GET",
        &format!("/v1/payments/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.json()["amount"], "20.00");
    assert_eq!(second.balance(&payer), "30.00");
    let r = pay(&second, &shop.key, "handover-2", "1.00", &payer);
    assert_eq!(r.json()["status"], "succeeded");

    // With no waiting allowed, a second process refuses to start instead.
    let mut third = Payd::spawn_in(
        &dir,
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_STORE_LOCK_WAIT_MS", "0"),
        ],
    );
    let status = third.child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    assert_eq!(second.balance(&payer), "29.00");
}

#[test]
fn concurrent_refunds_of_one_payment_take_turns() {
    let p = Arc::new(Payd::start());
    let shop = Arc::new(merchant(&p, r#"{"name":"Refunds","fee_rate":"0"}"#));
    let payer = funded_account(&p, "10.00");
    let paid = pay(&p, &shop.key, "refund-race", "10.00", &payer).json();
    let path = Arc::new(format!(
        "/v1/payments/{}/refunds",
        paid["id"].as_str().unwrap()
    ));
    let mut refunded = 0;
    let mut in_progress = 0;
    for round in 0..200 {
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (p, shop, path, start) = (p.clone(), shop.clone(), path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let body = format!(r#"{{"amount":"0.01","out_refund_no":"r-{round}-{i}"}}"#);
                    let r = p.post(&shop.key, &path, None, &body);
                    (r.status, (r.status != 201).then(|| r.error_code()))
                })
            })
            .collect();
        for answer in threads.into_iter().map(|t| t.join().unwrap()) {
            match answer {
                (201, None) => refunded += 1,
                (409, Some(code)) if code == "refund_in_progress" => in_progress += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        if in_progress > 0 && round >= 20 {
            break;
        }
    }
    println!("{refunded} refunds created, {in_progress} answered 409 refund_in_progress");
    assert!(in_progress > 0, "two simultaneous refunds never overlapped");
    let auth = format!("Bearer {}", shop.key);
    let now = p
        .req(
            "GET",
            &format!("/v1/payments/{}", paid["id"].as_str().unwrap()),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(now["refunded_amount"], cents(refunded));
    assert_eq!(p.balance(&payer), cents(refunded));
    assert_eq!(p.balance(&shop.account), cents(1000 - refunded));
}

#[test]
fn a_broken_chunked_body_is_invalid_body_and_changes_nothing() {
    let p = Payd::start();
    let mut s = std::net::TcpStream::connect(&p.addr).unwrap();
    use std::io::Write;
    write!(
        s,
        "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"cur\r\nzz\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = read_response(s).unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_body"));
}

#[test]
fn a_credit_that_would_overflow_a_balance_is_declined_with_limit_exceeded() {
    // 9,223 deposits of the largest amount (10^15 minor units) bring an account within
    // 3.8 × 10^14 of i64::MAX; a further maximal credit must be refused, not wrap.
    let p = Arc::new(Payd::start());
    let shop = Arc::new(merchant(&p, r#"{"name":"Whale","fee_rate":"0"}"#));
    const MAX: &str = "10000000000000.00";
    const DEPOSITS: usize = 9_223;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (p, shop, next) = (p.clone(), shop.clone(), next.clone());
            std::thread::spawn(move || {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < DEPOSITS {
                    let r = deposit(&p, &shop.account, MAX);
                    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(p.balance(&shop.account), "92230000000000000.00");
    let r = deposit(&p, &shop.account, MAX);
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_amount"));
    // All the customer funds the ledger can hold are now at the merchant: the payer pays
    // on credit.
    let payer = p
        .admin(
            "POST",
            "/v1/accounts",
            &format!(r#"{{"currency":"CNY","credit_limit":"{MAX}"}}"#),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = pay(&p, &shop.key, "whale-1", MAX, &payer).json();
    assert_eq!(
        (r["status"].as_str(), r["failure_code"].as_str()),
        (Some("failed"), Some("limit_exceeded"))
    );
    assert_eq!(p.balance(&payer), "0.00");
    assert_eq!(p.balance(&shop.account), "92230000000000000.00");
}

#[test]
fn two_decisions_on_one_held_payment_take_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("risk.toml");
    std::fs::write(
        &rules,
        "review_at = 50\nreject_at = 90\n[[amount]]\ncurrency = \"CNY\"\nabove = \"1.00\"\npoints = 60\n",
    )
    .unwrap();
    let p = Arc::new(Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_RISK_RULES_FILE", rules.to_str().unwrap()),
        ],
    ));
    let shop = merchant(&p, r#"{"name":"Held","fee_rate":"0"}"#);
    let payer = funded_account(&p, "1000.00");
    let (mut approved, mut busy) = (0, 0);
    for round in 0..100 {
        let held = pay(&p, &shop.key, &format!("held-{round}"), "5.00", &payer).json();
        assert_eq!(held["status"], "processing");
        let path = Arc::new(format!(
            "/v1/payments/{}/review",
            held["id"].as_str().unwrap()
        ));
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (p, path, start) = (p.clone(), path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let r = p.admin("POST", &path, r#"{"decision":"approve"}"#);
                    (r.status, (r.status != 200).then(|| r.error_code()))
                })
            })
            .collect();
        let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for a in &answers {
            match a {
                (200, None) => approved += 1,
                (409, Some(c)) if c == "review_in_progress" => busy += 1,
                (409, Some(c)) if c == "payment_not_in_review" => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            answers.iter().filter(|a| a.0 == 200).count(),
            1,
            "round {round}"
        );
        if busy > 0 && round >= 10 {
            break;
        }
    }
    println!("{approved} approved once each, {busy} answered 409 review_in_progress");
    assert!(busy > 0, "two simultaneous decisions never overlapped");
    // Each held payment moved its money exactly once.
    assert_eq!(p.balance(&payer), cents(100_000 - approved * 500));
}

/// Each of payd's threads by name, with its scheduling policy (`/proc/<pid>/task/<tid>/stat`
/// field 41: 0 `SCHED_OTHER`, 3 `SCHED_BATCH`) and nice value (field 19); the main thread,
/// which hosts the ledger, as "main".
fn thread_policies(pid: u32) -> Vec<(String, u32, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(task.join("stat")) else {
            continue; // a thread that just ended
        };
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        // After "pid (comm)", fields count from 3 (the state).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let policy: u32 = fields[41 - 3].parse().unwrap();
        let nice: i32 = fields[19 - 3].parse().unwrap();
        let tid = task.file_name().unwrap().to_string_lossy().to_string();
        let name = if tid == pid.to_string() {
            "main".to_string()
        } else {
            comm.trim().to_string()
        };
        out.push((name, policy, nice));
    }
    out
}

#[test]
#[cfg(target_os = "linux")]
fn the_ledgers_thread_runs_at_sched_batch_and_rocksdbs_threads_reniced() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("on"),
        &[("RONGPAY_ADMIN_TOKEN", ADMIN), ("RONGPAY_WORKERS", "2")],
    );
    // A payment through the ledger first: every thread it takes exists.
    funded_account(&p, "1.00");
    // payd's threads start at this process's nice value.
    let base = thread_policies(std::process::id())[0].2;
    let threads = thread_policies(p.child.id());
    let of = |name: &str| -> Vec<(u32, i32)> {
        threads
            .iter()
            .filter(|(n, _, _)| n.starts_with(name))
            .map(|(_, policy, nice)| (*policy, *nice))
            .collect()
    };
    assert_eq!(of("main"), [(3, base)], "{threads:?}");
    assert_eq!(of("actix-rt|system"), [(0, base), (0, base)], "{threads:?}");
    assert_eq!(of("rongpay-wal"), [(0, base)], "{threads:?}");
    let compaction = of("rocksdb:low");
    assert!(!compaction.is_empty(), "{threads:?}");
    assert!(compaction.iter().all(|(_, nice)| *nice == 5), "{threads:?}");
    // The flush threads wait at `rocksdb_flush_idle_nice` (19) where payd may lower them
    // again when a flush presses (this test's process and payd are the same user).
    let flush = of("rocksdb:high");
    let idle = if storage::sched::can_lower_nice(19, 5) {
        19
    } else {
        5
    };
    assert!(!flush.is_empty(), "{threads:?}");
    assert!(flush.iter().all(|(_, nice)| *nice == idle), "{threads:?}");
    drop(p);

    // Off: every thread as the kernel started it.
    let p = Payd::start_in(
        &tmp.path().join("off"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_LEDGER_SCHED_BATCH", "false"),
            ("RONGPAY_ROCKSDB_BACKGROUND_NICE", "0"),
            ("RONGPAY_ROCKSDB_FLUSH_IDLE_NICE", "0"),
        ],
    );
    let threads = thread_policies(p.child.id());
    assert!(threads.len() > 3, "{threads:?}");
    assert!(
        threads
            .iter()
            .all(|(_, policy, nice)| (*policy, *nice) == (0, base)),
        "{threads:?}"
    );
}

/// How many times payd's main thread was woken after sleeping (voluntary context switches).
fn main_thread_wakeups(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `ledger_home`: on `own_thread` the ledger's actors are payd's main thread's, woken for
/// every payment; on `worker` they are the first HTTP worker's, and the main thread only
/// wakes for its timers. With two workers, payments reach the ledger both from its own
/// worker and across threads. A kill -9 there loses no acknowledged payment.
#[test]
#[cfg(target_os = "linux")]
fn the_ledger_runs_on_an_http_worker_when_asked_and_a_kill_loses_nothing() {
    const PAYMENTS: u64 = 200;
    let tmp = tempfile::tempdir().unwrap();
    let mut woken = Vec::new();
    for home in ["own_thread", "worker"] {
        let dir = tmp.path().join(home);
        let log = tmp.path().join(format!("{home}.log"));
        let env = [
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_WORKERS", "2"),
            ("RONGPAY_LEDGER_HOME", home),
        ];
        let p = Payd::start_logging(&dir, &env, &log);
        let said = std::fs::read_to_string(&log).unwrap();
        let placed = if home == "worker" {
            "payd: the ledger runs on the first HTTP worker's thread (ledger_home worker)"
        } else {
            "payd: the ledger runs on the main thread (ledger_home own_thread)"
        };
        assert!(said.contains(placed), "{said}");
        let shop = merchant(&p, r#"{"name":"Home","fee_rate":"0"}"#);
        let payer = funded_account(&p, "1000.00");
        let before = main_thread_wakeups(p.child.id());
        for n in 0..PAYMENTS {
            let r = pay(&p, &shop.key, &format!("home-{n}"), "1.25", &payer);
            assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        }
        woken.push(main_thread_wakeups(p.child.id()) - before);
        assert_eq!(p.balance(&payer), "750.00");
        if home == "worker" {
            p.kill9();
            let p = Payd::start_logging(&dir, &env, &log);
            assert_eq!(p.balance(&payer), "750.00");
            assert_eq!(p.balance(&shop.account), "250.00");
            let r = pay(&p, &shop.key, "home-after", "1.25", &payer);
            assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
            assert_eq!(p.balance(&payer), "748.75");
        }
    }
    println!(
        "main thread woken during {PAYMENTS} payments: own_thread {}, worker {}",
        woken[0], woken[1]
    );
    // Each payment wakes the ledger's thread at least for its command and for its synced
    // group; on the worker the main thread keeps only its timers (every 200 ms at most).
    assert!(woken[0] >= PAYMENTS, "{woken:?}");
    assert!(woken[1] < PAYMENTS / 4, "{woken:?}");
}
