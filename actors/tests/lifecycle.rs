//! Account actor lifecycle and bounds: passivation and reactivation, overload, status changes.

use std::sync::Arc;
use std::time::Duration;

use actors::{Ledger, LedgerConfig, LedgerError};
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
