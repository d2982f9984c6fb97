//! Property tests: random transfer sequences through the real actors and store, against a
//! simple reference model.

use std::collections::HashMap;
use std::sync::Arc;

use actors::{Ledger, LedgerConfig, Outcome};
use engine::{AccountId, Currency, Reject, Timestamp, Transfer, TransferId, TransferKind};
use proptest::prelude::*;
use storage::{Store, StoreOptions};

const FUNDS: AccountId = AccountId(1);

#[derive(Clone, Debug)]
struct Case {
    /// Per account: initial deposit and credit limit, in minor units.
    accounts: Vec<(i64, i64)>,
    /// (from, to, amount); indexes past the end name an account that does not exist.
    transfers: Vec<(usize, usize, i64)>,
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..7).prop_flat_map(|n| {
        let accounts = prop::collection::vec(
            (0i64..1_000, prop_oneof![3 => Just(0i64), 1 => 0i64..300]),
            n,
        );
        let transfers = prop::collection::vec((0..n + 1, 0..n + 1, 1i64..700), 1..80);
        (accounts, transfers).prop_map(|(accounts, transfers)| Case {
            accounts,
            transfers,
        })
    })
}

fn account(i: usize) -> AccountId {
    AccountId(100 + i as u128)
}

fn transfer(k: usize, (from, to, amount): (usize, usize, i64)) -> Transfer {
    Transfer::between(
        TransferId(10_000 + k as u128),
        TransferKind::Transfer,
        account(from),
        account(to),
        Currency::CNY,
        amount,
        Timestamp(0),
    )
}

/// Creates the accounts and deposits of `case` on a fresh store; returns ledger and store.
async fn setup(dir: &std::path::Path, case: &Case) -> (Ledger, Arc<Store>) {
    let (store, _) = Store::open(dir, StoreOptions::default()).unwrap();
    let store = Arc::new(store);
    let ledger = Ledger::start(Arc::clone(&store), LedgerConfig::default());
    ledger
        .create_account(FUNDS, Currency::CNY, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    for (i, (deposit, limit)) in case.accounts.iter().enumerate() {
        ledger
            .create_account(account(i), Currency::CNY, *limit)
            .await
            .unwrap()
            .unwrap();
        if *deposit > 0 {
            let t = Transfer::between(
                TransferId(1 + i as u128),
                TransferKind::Deposit,
                FUNDS,
                account(i),
                Currency::CNY,
                *deposit,
                Timestamp(0),
            );
            ledger.transfer(t).await.unwrap().unwrap();
        }
    }
    (ledger, store)
}

/// The reference: a map of balances, transfers applied one by one.
struct Model {
    balance: HashMap<usize, i64>,
    limit: HashMap<usize, i64>,
}

impl Model {
    fn new(case: &Case) -> Model {
        Model {
            balance: case
                .accounts
                .iter()
                .enumerate()
                .map(|(i, (d, _))| (i, *d))
                .collect(),
            limit: case
                .accounts
                .iter()
                .enumerate()
                .map(|(i, (_, l))| (i, *l))
                .collect(),
        }
    }

    fn apply(&mut self, (from, to, amount): (usize, usize, i64)) -> Result<(), Reject> {
        let n = self.balance.len();
        if from == to {
            return Err(Reject::DuplicateAccount(account(from)));
        }
        // The engine prepares postings in order: the debit (all its checks), then the credit.
        if from >= n {
            return Err(Reject::UnknownAccount(account(from)));
        }
        if self.balance[&from] - amount < -self.limit[&from] {
            return Err(Reject::InsufficientFunds(account(from)));
        }
        if to >= n {
            return Err(Reject::UnknownAccount(account(to)));
        }
        *self.balance.get_mut(&from).unwrap() -= amount;
        *self.balance.get_mut(&to).unwrap() += amount;
        Ok(())
    }
}

/// Every balance agrees in the model, the actors, and the durable store; totals conserved.
async fn check_balances(case: &Case, model: &Model, ledger: &Ledger, store: &Store) {
    let mut total = 0i64;
    for i in 0..case.accounts.len() {
        let live = ledger.account(account(i)).await.unwrap().unwrap();
        let durable = store.account(account(i)).unwrap().unwrap();
        assert_eq!(
            live.account.balance, model.balance[&i],
            "account {i} in the actors"
        );
        assert_eq!(
            durable.balance, model.balance[&i],
            "account {i} in the store"
        );
        assert!(live.is_quiescent());
        assert!(
            durable.balance >= -durable.credit_limit,
            "account {i} overdrawn"
        );
        total += durable.balance;
    }
    let deposited: i64 = case.accounts.iter().map(|(d, _)| d).sum();
    assert_eq!(total, deposited, "money is conserved");
    assert_eq!(store.account(FUNDS).unwrap().unwrap().balance, -deposited);
    let v = store.verify().unwrap();
    assert_eq!(v.trial_balance.get(&Currency::CNY), Some(&0));
}

fn run(case: Case) {
    actix_rt::System::new().block_on(async move {
        // Sequential: outcomes must equal the model's, one by one.
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = setup(dir.path(), &case).await;
        let mut model = Model::new(&case);
        for (k, t) in case.transfers.iter().enumerate() {
            let got = ledger.transfer(transfer(k, *t)).await.unwrap().map(|_| ());
            assert_eq!(got, model.apply(*t), "transfer {k} {t:?}");
        }
        check_balances(&case, &model, &ledger, &store).await;

        // Concurrent: all at once. Whatever the interleaving, the accepted transfers taken in
        // journal order must be a valid sequential history, and it must explain the balances.
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = setup(dir.path(), &case).await;
        let tasks: Vec<_> = case
            .transfers
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let ledger = ledger.clone();
                let t = *t;
                actix_rt::spawn(async move { (t, ledger.transfer(transfer(k, t)).await.unwrap()) })
            })
            .collect();
        let mut accepted: Vec<(u64, (usize, usize, i64))> = Vec::new();
        for task in tasks {
            let (t, outcome): (_, Outcome) = task.await.unwrap();
            match outcome {
                Ok(seq) => accepted.push((seq, t)),
                Err(Reject::InsufficientFunds(_)) => {}
                Err(Reject::DuplicateAccount(a)) => assert!(t.0 == t.1 && a == account(t.0)),
                Err(Reject::UnknownAccount(a)) => {
                    let n = case.accounts.len();
                    assert!(
                        (t.0 >= n && a == account(t.0)) || (t.1 >= n && a == account(t.1)),
                        "{t:?}"
                    );
                }
                Err(other) => panic!("unexpected rejection {other:?} of {t:?}"),
            }
        }
        accepted.sort_unstable_by_key(|(seq, _)| *seq);
        let mut model = Model::new(&case);
        for (seq, t) in &accepted {
            assert_eq!(
                model.apply(*t),
                Ok(()),
                "accepted transfer {t:?} at seq {seq} overdraws in journal order"
            );
        }
        check_balances(&case, &model, &ledger, &store).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn transfers_match_the_reference_model(case in case()) {
        run(case);
    }
}

#[test]
fn duplicate_transfer_id_is_applied_once() {
    let case = Case {
        accounts: vec![(500, 0), (0, 0)],
        transfers: vec![],
    };
    actix_rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = setup(dir.path(), &case).await;
        let t = transfer(1, (0, 1, 100));
        // Concurrent duplicates: exactly one wins.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (ledger, t) = (ledger.clone(), t.clone());
                actix_rt::spawn(async move { ledger.transfer(t).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => wins += 1,
                Err(r) => assert_eq!(r, Reject::DuplicateId),
            }
        }
        assert_eq!(wins, 1);
        // And after it is durable.
        assert_eq!(ledger.transfer(t).await.unwrap(), Err(Reject::DuplicateId));
        assert_eq!(store.account(account(1)).unwrap().unwrap().balance, 100);
    });
}

#[test]
fn duplicate_ids_across_large_rounds_in_flight_are_applied_once() {
    // Batches of this size go through the coordinator in rounds large enough to claim their
    // ids as sorted lists (`actors::claims`); single transfers claim one at a time. Every
    // id below is sent two to four times, concurrently: each is applied exactly once.
    let case = Case {
        accounts: vec![(1_000_000, 0), (0, 0)],
        transfers: vec![],
    };
    actix_rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, store) = setup(dir.path(), &case).await;
        let batch = |ids: Vec<usize>| {
            let ledger = ledger.clone();
            actix_rt::spawn(async move {
                let batch = ids
                    .into_iter()
                    .map(|k| (transfer(k, (0, 1, 1)), Vec::new()))
                    .collect();
                ledger.transfer_many(batch).await.unwrap()
            })
        };
        // The first has its own duplicates (0..100 twice, the second time last).
        let a = batch((0..5_000).chain(0..100).collect());
        let b = batch((2_500..7_500).collect());
        let singles: Vec<_> = [0, 99, 3_000, 7_499, 7_500]
            .into_iter()
            .flat_map(|k| [k, k])
            .map(|k| {
                let ledger = ledger.clone();
                actix_rt::spawn(async move { ledger.transfer(transfer(k, (0, 1, 1))).await })
            })
            .collect();
        let mut applied = 0;
        for outcomes in [a.await.unwrap(), b.await.unwrap()] {
            for outcome in outcomes {
                match outcome.unwrap() {
                    Ok(_) => applied += 1,
                    Err(r) => assert_eq!(r, Reject::DuplicateId),
                }
            }
        }
        for single in singles {
            match single.await.unwrap().unwrap() {
                Ok(_) => applied += 1,
                Err(r) => assert_eq!(r, Reject::DuplicateId),
            }
        }
        // Ids 0..=7,500, each once.
        assert_eq!(applied, 7_501);
        assert_eq!(store.account(account(1)).unwrap().unwrap().balance, 7_501);
        // Once durable, every one of them is a duplicate whichever way it comes again.
        let again = ledger
            .transfer_many(
                (0..300)
                    .map(|k| (transfer(k * 5, (0, 1, 1)), Vec::new()))
                    .collect(),
            )
            .await
            .unwrap();
        assert!(again
            .into_iter()
            .all(|o| o.unwrap() == Err(Reject::DuplicateId)));
        assert_eq!(store.account(account(1)).unwrap().unwrap().balance, 7_501);
    });
}
