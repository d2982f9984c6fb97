//! Helpers shared by the storage tests.
#![allow(dead_code)] // each test file uses a different subset

use engine::{Account, AccountId, Currency, Effect, Timestamp, Transfer, TransferId, TransferKind};
use storage::CommitUnit;

pub const FUNDS: AccountId = AccountId(1);

pub fn user(i: u128) -> AccountId {
    AccountId(1000 + i)
}

/// A unit creating the customer-funds account and `n` user accounts.
pub fn create_accounts(n: u128) -> CommitUnit {
    let mut effects = vec![Effect::AccountCreated(Account::new(
        FUNDS,
        Currency::CNY,
        i64::MAX,
        Timestamp(1),
    ))];
    for i in 0..n {
        effects.push(Effect::AccountCreated(Account::new(
            user(i),
            Currency::CNY,
            0,
            Timestamp(1),
        )));
    }
    CommitUnit {
        effects,
        ..CommitUnit::default()
    }
}

/// A unit posting a transfer of `amount` from `from` to `to`.
pub fn transfer(id: u128, from: AccountId, to: AccountId, amount: i64) -> CommitUnit {
    CommitUnit::effect(Effect::Posted(Transfer::between(
        TransferId(id),
        TransferKind::Transfer,
        from,
        to,
        Currency::CNY,
        amount,
        Timestamp(2),
    )))
}

/// Copies a directory tree (a store's files) as they are at this instant.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The store's write-ahead log files, newest last.
pub fn wal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}
