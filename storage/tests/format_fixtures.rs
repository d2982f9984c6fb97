//! The on-disk record format, pinned: records written by format version 1 (committed in
//! `tests/fixtures/format_v1.hex`) must keep decoding to the same values, and today's encoder
//! must still produce them byte for byte. A change to any persisted type fails here first.
//!
//! Regenerate only for a deliberate new format version:
//! `RONGPAY_WRITE_FIXTURES=1 cargo test --release -p rongpay-storage --test format_fixtures`.

use engine::{
    Account, AccountId, AccountStatus, Currency, Effect, PaymentParties, Timestamp, Transfer,
    TransferId,
};
use storage::codec::{self, Kind};
use storage::schema::AccountDelta;
use storage::JournalEntry;

/// The committed fixture. The crate's directory is taken at run time (cargo sets it for the
/// test): a test binary reused from a shared target dir may have been built in another
/// checkout, whose compile-time path need not exist here.
fn fixture() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("tests/fixtures/format_v1.hex")
}

fn account() -> Account {
    Account {
        id: AccountId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
        currency: Currency::CNY,
        balance: -12_345,
        held: 600,
        credit_limit: 1_000_000,
        status: AccountStatus::Frozen,
        created_at: Timestamp(1_764_000_000_000_000_000),
    }
}

fn entry() -> JournalEntry {
    let parties = PaymentParties {
        payer: AccountId(7),
        merchant: AccountId(8),
        fee_account: AccountId(9),
    };
    JournalEntry {
        seq: 42,
        effects: vec![
            Effect::AccountCreated(Account {
                currency: Currency::KWD,
                ..account()
            }),
            Effect::Posted(Transfer::payment(
                TransferId(u128::MAX - 5),
                parties,
                Currency::CNY,
                10_000,
                60,
                Timestamp(99),
            )),
            Effect::StatusSet {
                account: AccountId(8),
                status: AccountStatus::Closed,
            },
        ],
    }
}

fn delta() -> AccountDelta {
    AccountDelta {
        balance: -(1i128 << 70),
        held: 5,
        status: Some(AccountStatus::Active),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn format_v1_records_still_decode_and_encode_identically() {
    let current = [
        ("journal_entry", codec::encode(Kind::Journal, &entry())),
        ("account", codec::encode(Kind::Account, &account())),
        ("account_delta", codec::encode(Kind::AccountDelta, &delta())),
    ];
    if std::env::var_os("RONGPAY_WRITE_FIXTURES").is_some() {
        let text: String = current
            .iter()
            .map(|(name, bytes)| format!("{name} {}\n", hex(bytes)))
            .collect();
        std::fs::write(fixture(), text).unwrap();
    }
    let text = std::fs::read_to_string(fixture()).expect("committed fixture");
    let fixture: Vec<(&str, Vec<u8>)> = text
        .lines()
        .map(|l| {
            let (name, h) = l.split_once(' ').unwrap();
            (name, unhex(h))
        })
        .collect();
    assert_eq!(fixture.len(), 3);
    assert_eq!(
        codec::decode::<JournalEntry>(Kind::Journal, &fixture[0].1),
        Ok(entry())
    );
    assert_eq!(
        codec::decode::<Account>(Kind::Account, &fixture[1].1),
        Ok(account())
    );
    assert_eq!(
        codec::decode::<AccountDelta>(Kind::AccountDelta, &fixture[2].1),
        Ok(delta())
    );
    for ((name, bytes), (fixture_name, fixture_bytes)) in current.iter().zip(&fixture) {
        assert_eq!(name, fixture_name);
        assert_eq!(
            hex(bytes),
            hex(fixture_bytes),
            "{name} encodes differently from format v1"
        );
    }
}
