//! Account lifecycle and bounds: passivation and reactivation, the bounded cache of resident
//! accounts, overload, status changes.

use std::sync::Arc;
use std::time::Duration;

use actors::{AccountFacts, Ledger, LedgerConfig, LedgerError};
use engine::{
    AccountId, AccountStatus, Currency, Reject, Timestamp, Transfer, TransferId, TransferKind,
};
use storage::{Store, StoreOptions};

const FUNDS: AccountId = AccountId(1);
const A: AccountId = AccountId(10);
const B: AccountId = AccountId(11);

fn between(id: u128, from: AccountId, to: AccountId, amount: i64) -> Transfer {
    Transfer::between(
        TransferId(id),
        TransferKind::Transfer,
        from,
        to,
        Currency::CNY,
        amount,
        Timestamp(0),
    )
}

async fn start(dir: &std::path::Path, config: LedgerConfig) -> (Ledger, Arc<Store>) {
    let (store, _) = Store::open(dir, StoreOptions::default()).unwrap();
    let store = Arc::new(store);
    let ledger = Ledger::start(Arc::clone(&store), config);
    for (id, limit) in [(FUNDS, i64::MAX), (A, 0), (B, 0)] {
        ledger
            .create_account(id, Currency::CNY, limit)
            .await
            .unwrap()
            .unwrap();
    }
    ledger
        .transfer(between(1, FUNDS, A, 1_000))
        .await
        .unwrap()
        .unwrap();
    (ledger, store)
}

#[test]
fn idle_accounts_passivate_and_reload_their_durable_state() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = LedgerConfig {
            idle_after: Duration::ZERO,
            sweep_every: Duration::from_millis(20),
            ..LedgerConfig::default()
        };
        let (ledger, _store) = start(dir.path(), config).await;
        assert_eq!(
            ledger.active_accounts(),
            2,
            "FUNDS and A were activated by the deposit"
        );
        for round in 0..5u128 {
            ledger
                .transfer(between(100 + round, A, B, 10))
                .await
                .unwrap()
                .unwrap();
            // Wait until the sweeper dropped every account from memory.
            let mut waited = 0;
            while ledger.active_accounts() > 0 {
                actix_rt::time::sleep(Duration::from_millis(10)).await;
                waited += 1;
                assert!(waited < 500, "accounts never passivated");
            }
        }
        // Reactivated from the store with every committed posting.
        assert_eq!(
            ledger.account(A).await.unwrap().unwrap().account.balance,
            950
        );
        assert_eq!(
            ledger.account(B).await.unwrap().unwrap().account.balance,
            50
        );
        ledger
            .transfer(between(200, A, B, 950))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ledger.transfer(between(201, A, B, 1)).await.unwrap(),
            Err(Reject::InsufficientFunds(A))
        );
    });
}

#[test]
fn overload_is_an_explicit_outcome_and_changes_nothing() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = LedgerConfig {
            inflight_max: 4,
            ..LedgerConfig::default()
        };
        let (ledger, store) = start(dir.path(), config).await;
        let tasks: Vec<_> = (0..64u128)
            .map(|i| {
                let ledger = ledger.clone();
                actix_rt::spawn(async move { ledger.transfer(between(1_000 + i, A, B, 1)).await })
            })
            .collect();
        let (mut ok, mut overloaded) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(Ok(_)) => ok += 1,
                Err(LedgerError::Overloaded(_)) => overloaded += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(ok + overloaded, 64);
        assert!(
            overloaded > 0,
            "64 concurrent commands over a limit of 4 must be refused"
        );
        assert_eq!(store.account(B).unwrap().unwrap().balance, ok);
        assert_eq!(ledger.inflight(), 0);
    });
}

#[test]
fn status_changes_are_durable_and_enforced() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = start(dir.path(), LedgerConfig::default()).await;
        ledger
            .set_status(A, AccountStatus::Frozen)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ledger.transfer(between(2, A, B, 1)).await.unwrap(),
            Err(Reject::AccountFrozen(A))
        );
        assert_eq!(
            ledger.transfer(between(3, FUNDS, A, 1)).await.unwrap(),
            Err(Reject::AccountFrozen(A))
        );
        assert_eq!(
            store.account(A).unwrap().unwrap().status,
            AccountStatus::Frozen
        );
        assert_eq!(
            ledger.set_status(A, AccountStatus::Closed).await.unwrap(),
            Err(Reject::AccountNotEmpty(A))
        );
        ledger
            .set_status(A, AccountStatus::Active)
            .await
            .unwrap()
            .unwrap();
        ledger
            .transfer(between(4, A, B, 1_000))
            .await
            .unwrap()
            .unwrap();
        ledger
            .set_status(A, AccountStatus::Closed)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ledger.transfer(between(5, B, A, 1)).await.unwrap(),
            Err(Reject::AccountClosed(A))
        );
        assert_eq!(
            ledger.set_status(A, AccountStatus::Active).await.unwrap(),
            Err(Reject::AccountClosed(A))
        );
        assert_eq!(
            ledger
                .set_status(AccountId(999), AccountStatus::Frozen)
                .await
                .unwrap(),
            Err(Reject::UnknownAccount(AccountId(999)))
        );
        assert_eq!(
            ledger.create_account(A, Currency::CNY, 0).await.unwrap(),
            Err(Reject::AccountExists(A))
        );
        let v = store.verify().unwrap();
        assert_eq!(v.accounts, 3);
    });
}

#[test]
fn the_shards_are_a_bounded_cache_over_every_account_in_the_store() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // 2 shards of 8 accounts each over 203 accounts: almost every leg activates an
        // account, which evicts the least recently used idle ones.
        let bound = 16;
        let config = LedgerConfig {
            active_accounts_max: bound,
            shards: 2,
            ..LedgerConfig::default()
        };
        let (ledger, store) = start(dir.path(), config).await;
        let accounts: Vec<AccountId> = (0..200u128).map(|i| AccountId(1_000 + i)).collect();
        for &id in &accounts {
            ledger
                .create_account(id, Currency::CNY, 0)
                .await
                .unwrap()
                .unwrap();
        }
        let mut expected = vec![0i64; accounts.len()];
        let mut next_id = 10_000u128;
        for (i, &id) in accounts.iter().enumerate() {
            next_id += 1;
            ledger
                .transfer(between(next_id, FUNDS, id, 100))
                .await
                .unwrap()
                .unwrap();
            expected[i] += 100;
            assert!(
                ledger.active_accounts() <= bound,
                "{}",
                ledger.active_accounts()
            );
        }
        // Each account pays the next one, twice round: every account is evicted and
        // reloaded several times, and its balance must survive each reload.
        for round in 0..2 {
            for i in 0..accounts.len() {
                let j = (i + 1 + round) % accounts.len();
                next_id += 1;
                ledger
                    .transfer(between(next_id, accounts[i], accounts[j], 30))
                    .await
                    .unwrap()
                    .unwrap();
                expected[i] -= 30;
                expected[j] += 30;
                assert!(
                    ledger.active_accounts() <= bound,
                    "{}",
                    ledger.active_accounts()
                );
            }
        }
        // Overdrawing a reloaded account is still refused: its state came back whole.
        next_id += 1;
        assert_eq!(
            ledger
                .transfer(between(next_id, accounts[0], accounts[1], 101))
                .await
                .unwrap(),
            Err(Reject::InsufficientFunds(accounts[0]))
        );
        // A burst wider than the cache: each transfer is durable or refused as overloaded,
        // and nothing else.
        let tasks: Vec<_> = (0..64usize)
            .map(|k| {
                next_id += 1;
                let t = between(next_id, accounts[k], accounts[199 - k], 1);
                let ledger = ledger.clone();
                actix_rt::spawn(async move { (k, ledger.transfer(t).await) })
            })
            .collect();
        let mut overloaded = 0;
        for t in tasks {
            match t.await.unwrap() {
                (k, Ok(Ok(_))) => {
                    expected[k] -= 1;
                    expected[199 - k] += 1;
                }
                (_, Err(LedgerError::Overloaded(_))) => overloaded += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            overloaded < 64,
            "the cache refused every transfer of the burst"
        );
        for (i, &id) in accounts.iter().enumerate() {
            let live = ledger.account(id).await.unwrap().unwrap();
            assert_eq!(
                live.account.balance, expected[i],
                "account {i} as the ledger sees it"
            );
            let stored = store.account(id).unwrap().unwrap();
            assert_eq!(stored.balance, expected[i], "account {i} in the store");
        }
        assert!(ledger.active_accounts() <= bound);
        assert_eq!(
            store.verify().unwrap().trial_balance.values().sum::<i128>(),
            0
        );
    });
}

/// A record write whose waiter goes away after it was queued (a client that hung up) is
/// still made durable, and its admission comes back: nothing half-done, nothing leaked.
#[test]
fn a_record_write_dropped_while_it_waits_is_still_written() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = start(dir.path(), LedgerConfig::default()).await;
        let before = store.last_seq();
        let key = b"test-dropped-write".to_vec();
        {
            let mut write = Box::pin(ledger.write_records(vec![(key.clone(), b"kept".to_vec())]));
            // One poll queues the unit; then the waiter is dropped.
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(write.as_mut(), cx))
            })
            .await;
            assert!(polled.is_pending(), "a synced write cannot be done at once");
            assert_eq!(ledger.inflight(), 1);
        }
        let mut waited = 0;
        while store.last_seq() == before || ledger.inflight() > 0 {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
            waited += 1;
            assert!(
                waited < 1_000,
                "the queued write was never made, or its admission never ended"
            );
        }
        assert_eq!(store.aux(&key).unwrap(), Some(b"kept".to_vec()));
        // And the ledger goes on: a later write is answered.
        ledger
            .write_records(vec![(b"test-after".to_vec(), b"x".to_vec())])
            .await
            .unwrap();
    });
}

#[test]
fn an_accounts_facts_are_read_without_its_shard_and_the_cache_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 8;
    let config = LedgerConfig {
        facts_cached_max: bound,
        ..LedgerConfig::default()
    };
    let before = actix_rt::System::new().block_on(async {
        let (ledger, store) = start(dir.path(), config.clone()).await;
        let a = store.account(A).unwrap().unwrap();
        let facts = ledger.facts(A).unwrap().unwrap();
        assert_eq!(
            facts,
            AccountFacts {
                currency: Currency::CNY,
                created_at: a.created_at
            }
        );
        // Unknown: absent, and not remembered as absent (it may be created later).
        let later = AccountId(77);
        assert_eq!(ledger.facts(later).unwrap(), None);
        ledger
            .create_account(later, Currency::USD, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ledger.facts(later).unwrap().unwrap().currency,
            Currency::USD
        );
        // Balance and status are not facts: they change, the facts do not.
        ledger
            .set_status(A, AccountStatus::Frozen)
            .await
            .unwrap()
            .unwrap();
        ledger
            .transfer(between(2, FUNDS, B, 5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ledger.facts(A).unwrap(), Some(facts));
        // Bounded: reading the facts of 40 accounts keeps at most `bound` in memory, and
        // every answer is still right.
        let many: Vec<AccountId> = (0..40u128).map(|i| AccountId(500 + i)).collect();
        for &id in &many {
            ledger
                .create_account(id, Currency::CNY, 0)
                .await
                .unwrap()
                .unwrap();
        }
        for round in 0..2 {
            for &id in &many {
                let f = ledger.facts(id).unwrap().unwrap();
                assert_eq!(f.created_at, store.account(id).unwrap().unwrap().created_at);
                assert!(
                    ledger.facts_cached() <= bound,
                    "round {round}: {}",
                    ledger.facts_cached()
                );
            }
        }
        facts
    });
    // After a restart, from the store.
    actix_rt::System::new().block_on(async {
        let (store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let ledger = Ledger::start(Arc::new(store), config);
        assert_eq!(ledger.facts_cached(), 0);
        assert_eq!(ledger.facts(A).unwrap(), Some(before));
        assert_eq!(ledger.facts_cached(), 1);
    });
}
