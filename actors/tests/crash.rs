//! Crash test that really kills: a child process runs the real ledger (actors + RocksDB
//! store) and prints every acknowledged transfer; the parent kill -9s it at random moments,
//! reopens the store, and checks that nothing acknowledged was lost, nothing was applied
//! twice, balances equal a replay of the journal, and money is conserved.
//!
//! The child is this same test binary, re-run with `--ignored --exact crash_child`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{Ledger, LedgerConfig};
use engine::{AccountId, Currency, Effect, Reject, Timestamp, Transfer, TransferId, TransferKind};
use rand::Rng;
use storage::{Store, StoreOptions};

/// Kill cycles of a run in the suite; `RONGPAY_CRASH_CYCLES` sets another count for a soak
/// (`scripts/kill-soak.sh`).
const CYCLES: usize = 24;
const ACCOUNTS: u128 = 32;
const DEPOSIT: i64 = 1_000_000;
const WORKERS: usize = 64;
const FUNDS: AccountId = AccountId(1);

/// [`CYCLES`], or `RONGPAY_CRASH_CYCLES` when it is a positive number.
fn cycles() -> usize {
    std::env::var("RONGPAY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(CYCLES)
}

fn account(i: u128) -> AccountId {
    AccountId(100 + i)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    id: u128,
    from: u128,
    to: u128,
    amount: i64,
}

impl Sent {
    fn transfer(&self) -> Transfer {
        Transfer::between(
            TransferId(self.id),
            TransferKind::Transfer,
            account(self.from),
            account(self.to),
            Currency::CNY,
            self.amount,
            Timestamp(0),
        )
    }
    fn line(&self) -> String {
        format!("{:x} {} {} {}", self.id, self.from, self.to, self.amount)
    }
    fn parse(line: &str) -> Sent {
        let f: Vec<&str> = line.split(' ').collect();
        Sent {
            id: u128::from_str_radix(f[0], 16).unwrap(),
            from: f[1].parse().unwrap(),
            to: f[2].parse().unwrap(),
            amount: f[3].parse().unwrap(),
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[test]
#[ignore = "child process of kill9_loses_nothing_acknowledged"]
fn crash_child() {
    let dir = std::env::var("RONGPAY_CRASH_DIR").expect("run by the crash test");
    let replay = std::fs::read_to_string(std::env::var("RONGPAY_CRASH_REPLAY").unwrap()).unwrap();
    // The test harness printed "test crash_child ... " without a newline: end that line.
    say("");
    // Every other cycle, balance checkpoints are ingested as table files (sealed at 8
    // accounts: the default's 4,096 is never reached by 32 accounts), so kills land among
    // sealed deltas, ingestions in flight and ingested files; else in the memtable.
    let seal: usize = std::env::var("RONGPAY_CRASH_SEAL")
        .unwrap()
        .parse()
        .unwrap();
    let options = StoreOptions {
        balance_seal_accounts: seal,
        ..StoreOptions::default()
    };
    actix_rt::System::new().block_on(async move {
        let (store, recovery) = Store::open(&dir, options).unwrap();
        let ledger = Ledger::start(Arc::new(store), LedgerConfig::default());
        if recovery.last_seq == 0 {
            ledger
                .create_account(FUNDS, Currency::CNY, i64::MAX)
                .await
                .unwrap()
                .unwrap();
            for i in 0..ACCOUNTS {
                ledger
                    .create_account(account(i), Currency::CNY, 0)
                    .await
                    .unwrap()
                    .unwrap();
                let t = Transfer::between(
                    TransferId(1 + i),
                    TransferKind::Deposit,
                    FUNDS,
                    account(i),
                    Currency::CNY,
                    DEPOSIT,
                    Timestamp(0),
                );
                ledger.transfer(t).await.unwrap().unwrap();
            }
        }
        // Transfers acknowledged before an earlier kill must not apply again.
        for line in replay.lines() {
            let sent = Sent::parse(line);
            match ledger.transfer(sent.transfer()).await.unwrap() {
                Err(Reject::DuplicateId) => say(&format!("DUP {:x} ok", sent.id)),
                other => say(&format!("DUP {:x} bad {other:?}", sent.id)),
            }
        }
        say("READY");
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let ledger = ledger.clone();
                actix_rt::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < deadline {
                        let sent = {
                            let mut rng = rand::rng();
                            let from = rng.random_range(0..ACCOUNTS);
                            Sent {
                                id: rng.random::<u128>() | (1 << 100),
                                from,
                                to: (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS,
                                amount: rng.random_range(1..50_000),
                            }
                        };
                        if let Ok(Ok(_)) = ledger.transfer(sent.transfer()).await {
                            say(&format!("ACK {}", sent.line()));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
    });
}

/// Kills the child on drop, so a failing assertion never leaves it running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill9_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let replay_file = root.path().join("replay.txt");
    let mut rng = rand::rng();
    let mut acked: Vec<Sent> = Vec::new();
    let cycles = cycles();
    for cycle in 0..cycles {
        let replay: Vec<Sent> = (0..acked.len().min(16))
            .map(|_| acked[rng.random_range(0..acked.len())])
            .collect();
        std::fs::write(
            &replay_file,
            replay.iter().map(|s| s.line() + "\n").collect::<String>(),
        )
        .unwrap();

        let mut child = Killed(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "crash_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("RONGPAY_CRASH_DIR", &dir)
                .env("RONGPAY_CRASH_REPLAY", &replay_file)
                .env("RONGPAY_CRASH_SEAL", if cycle % 2 == 0 { "8" } else { "0" })
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let started = Instant::now();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("child reports READY");
            let ready = line == "READY";
            lines.push(line);
            if ready {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60));
        }
        // Let it commit for a random while, then kill -9 mid-flight.
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());

        let dups_ok = lines
            .iter()
            .filter(|l| l.starts_with("DUP ") && l.ends_with(" ok"))
            .count();
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with("DUP ") || l.ends_with(" ok")),
            "a replayed transfer applied twice: {lines:?}"
        );
        assert_eq!(dups_ok, replay.len());
        let new: Vec<Sent> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ACK "))
            .map(Sent::parse)
            .collect();
        acked.extend(&new);

        // Reopen the store the child was killed over and check it.
        let (store, recovery) = Store::open(&dir, StoreOptions::default()).unwrap();
        let mut journal: HashMap<u128, Vec<engine::Posting>> = HashMap::new();
        store
            .for_each_entry(1, |entry| {
                for e in entry.effects {
                    if let Effect::Posted(t) = e {
                        assert!(
                            journal.insert(t.id.0, t.postings).is_none(),
                            "transfer in the journal twice"
                        );
                    }
                }
                Ok(())
            })
            .unwrap();
        for sent in &acked {
            let postings = journal
                .get(&sent.id)
                .unwrap_or_else(|| panic!("acknowledged transfer {sent:?} lost"));
            // As sent, each leg with its account's GL account filled by the ledger.
            let legs = |ps: &[engine::Posting]| -> Vec<(engine::AccountId, i64)> {
                ps.iter().map(|p| (p.account, p.amount)).collect()
            };
            assert_eq!(
                legs(postings),
                legs(&sent.transfer().postings),
                "acknowledged transfer stored as sent"
            );
            assert!(
                postings.iter().all(|p| p.gl.is_some()),
                "every leg names its GL account: {postings:?}"
            );
        }
        let verified = store
            .verify()
            .expect("balances equal a replay of the journal");
        let mut total = 0i64;
        for i in 0..ACCOUNTS {
            let a = store.account(account(i)).unwrap().unwrap();
            assert!(a.balance >= 0, "account {i} overdrawn: {}", a.balance);
            total += a.balance;
        }
        assert_eq!(total, ACCOUNTS as i64 * DEPOSIT, "money conserved");
        assert_eq!(
            store.account(FUNDS).unwrap().unwrap().balance,
            -(ACCOUNTS as i64) * DEPOSIT
        );
        println!(
            "cycle {cycle}: killed after {} new acks; recovered seq {}, {} transfers durable, {} acked so far, {} replays refused",
            new.len(),
            recovery.last_seq,
            verified.transfers,
            acked.len(),
            dups_ok
        );
    }
    assert!(
        acked.len() > cycles * 10,
        "the child made progress: {} acks",
        acked.len()
    );
}
