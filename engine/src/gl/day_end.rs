//! The checks of a day-end and its chained hash (`../shared/FUNDS.md`, "Business date and
//! day-end"; issue #15 item 4). Pure: the day-end flow gathers each account's day and the
//! GL's running figures, and these functions say whether they agree.
//!
//! Two independent computations meet here: the per-account snapshot (opening, turnover and
//! closing of every ledger account) and the GL's own turnover, maintained with the writes
//! ([`Turnover`]). A control account must equal the sum of its sub-ledger; every account's
//! closing must be its opening plus its turnover; each day must open where the last closed;
//! and each currency's trial balance must balance.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

use super::chart::GlAccount;
use super::date::BusinessDate;
use super::turnover::{TrialBalance, Turnover, TurnoverOverflow};
use crate::ids::AccountId;
use crate::money::Currency;

/// One ledger account's business day. Balances are credit-positive, as ledger balances are;
/// `debit` and `credit` are the day's turnover (non-negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccountDay {
    pub account: AccountId,
    pub gl: GlAccount,
    pub currency: Currency,
    pub opening: i64,
    pub debit: i128,
    pub credit: i128,
    pub closing: i64,
    pub postings: u64,
}

/// Why a day-end check failed. A failure never stops payments: the day-end is marked failed
/// and an alert raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    /// closing ≠ opening + credit − debit.
    ClosingMismatch {
        account: AccountId,
        expected: i128,
        closing: i64,
    },
    /// The day did not open where the previous one closed.
    OpeningMismatch {
        account: AccountId,
        previous_closing: i64,
        opening: i64,
    },
    /// An account of the previous day is missing from this one.
    MissingAccount { account: AccountId },
    /// An account appears twice, or out of id order.
    Unordered { account: AccountId },
    /// A control account (the GL's running figure) differs from the sum of its sub-ledger.
    ControlMismatch {
        gl: GlAccount,
        currency: Currency,
        /// Debit-positive closing, from the accounts.
        sub_ledger: i128,
        /// Debit-positive closing, from the GL's opening and turnover.
        control: i128,
    },
    /// A currency's trial balance does not balance.
    Unbalanced { currency: Currency },
    /// A sum left i128.
    Overflow,
}

/// What the checks of one day found: the trial balance of each currency (from the GL's own
/// figures) and every failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayCheck {
    pub trial_balances: Vec<TrialBalance>,
    pub failures: Vec<CheckFailure>,
}

impl DayCheck {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks a day: `accounts` in id order, `previous` the previous day's accounts (in id order;
/// `None` for the first day), `gl_opening` the GL's debit-positive opening per currency and
/// GL account, `turnover` the GL's turnover of the day.
pub fn check_day(
    accounts: &[AccountDay],
    previous: Option<&[AccountDay]>,
    gl_opening: &BTreeMap<(Currency, GlAccount), i128>,
    turnover: &Turnover,
) -> DayCheck {
    let mut failures = Vec::new();
    let mut sub_ledger: BTreeMap<(Currency, GlAccount), i128> = BTreeMap::new();
    for (i, a) in accounts.iter().enumerate() {
        if i > 0 && accounts[i - 1].account >= a.account {
            failures.push(CheckFailure::Unordered { account: a.account });
        }
        let expected = i128::from(a.opening)
            .checked_add(a.credit)
            .and_then(|v| v.checked_sub(a.debit));
        match expected {
            Some(e) if e == i128::from(a.closing) => {}
            Some(e) => failures.push(CheckFailure::ClosingMismatch {
                account: a.account,
                expected: e,
                closing: a.closing,
            }),
            None => failures.push(CheckFailure::Overflow),
        }
        let slot = sub_ledger.entry((a.currency, a.gl)).or_insert(0);
        match slot.checked_sub(i128::from(a.closing)) {
            Some(v) => *slot = v,
            None => failures.push(CheckFailure::Overflow),
        }
    }
    if let Some(previous) = previous {
        check_openings(accounts, previous, &mut failures);
    }
    let mut currencies: Vec<Currency> = turnover.currencies().collect();
    currencies.extend(gl_opening.keys().map(|(c, _)| *c));
    currencies.extend(sub_ledger.keys().map(|(c, _)| *c));
    currencies.sort_unstable();
    currencies.dedup();
    let mut trial_balances = Vec::new();
    for currency in currencies {
        let opening: BTreeMap<GlAccount, i128> = gl_opening
            .iter()
            .filter(|((c, _), _)| *c == currency)
            .map(|((_, gl), v)| (*gl, *v))
            .collect();
        let tb = match turnover.trial_balance(currency, &opening) {
            Ok(tb) => tb,
            Err(TurnoverOverflow(_)) => {
                failures.push(CheckFailure::Overflow);
                continue;
            }
        };
        if !tb.balanced {
            failures.push(CheckFailure::Unbalanced { currency });
        }
        for gl in GlAccount::ALL {
            let control = tb.rows.iter().find(|r| r.gl == gl).map_or(0, |r| r.closing);
            let accounts_sum = sub_ledger.get(&(currency, gl)).copied().unwrap_or(0);
            if control != accounts_sum {
                failures.push(CheckFailure::ControlMismatch {
                    gl,
                    currency,
                    sub_ledger: accounts_sum,
                    control,
                });
            }
        }
        trial_balances.push(tb);
    }
    DayCheck {
        trial_balances,
        failures,
    }
}

/// Each account opens at the previous day's closing (new accounts at zero), and none of the
/// previous day's accounts is missing. Both lists are in id order: one merge pass.
fn check_openings(
    accounts: &[AccountDay],
    previous: &[AccountDay],
    failures: &mut Vec<CheckFailure>,
) {
    let mut prev = previous.iter().peekable();
    for a in accounts {
        while let Some(p) = prev.next_if(|p| p.account < a.account) {
            failures.push(CheckFailure::MissingAccount { account: p.account });
        }
        let previous_closing = match prev.next_if(|p| p.account == a.account) {
            Some(p) => p.closing,
            None => 0,
        };
        if a.opening != previous_closing {
            failures.push(CheckFailure::OpeningMismatch {
                account: a.account,
                previous_closing,
                opening: a.opening,
            });
        }
    }
    for p in prev {
        failures.push(CheckFailure::MissingAccount { account: p.account });
    }
}

/// The day's snapshot hash, chained to the previous day's (all zeros before the first):
/// SHA-256 of the previous hash, the date and every account's day in id order, in their
/// bincode encoding. Rebuilding a closed day from the journal must give the same hash.
pub fn snapshot_hash(previous: &[u8; 32], date: BusinessDate, accounts: &[AccountDay]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    let config = bincode::config::standard();
    let mut buf = Vec::with_capacity(64);
    bincode::encode_into_std_write(date, &mut buf, config).expect("encoding into memory");
    h.update(&buf);
    for a in accounts {
        buf.clear();
        bincode::encode_into_std_write(a, &mut buf, config).expect("encoding into memory");
        h.update(&buf);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: AccountId = AccountId(10);
    const MERCHANT: AccountId = AccountId(20);

    fn reserve() -> AccountId {
        AccountId::platform(
            crate::ids::PlatformRole::CustomerFunds,
            Currency::CNY.numeric(),
        )
    }

    fn day(
        account: AccountId,
        gl: GlAccount,
        opening: i64,
        debit: i128,
        credit: i128,
    ) -> AccountDay {
        let closing = i64::try_from(i128::from(opening) + credit - debit).unwrap();
        AccountDay {
            account,
            gl,
            currency: Currency::CNY,
            opening,
            debit,
            credit,
            closing,
            postings: 1,
        }
    }

    /// A deposit of 100 to the customer, then a payment of 30 to the merchant: the accounts'
    /// days, and the GL's turnover written alongside.
    fn first_day() -> (Vec<AccountDay>, Turnover) {
        let mut accounts = vec![
            day(CUSTOMER, GlAccount::CustomerBalances, 0, 30, 100),
            day(MERCHANT, GlAccount::MerchantAvailable, 0, 0, 30),
            day(reserve(), GlAccount::Reserve, 0, 100, 0),
        ];
        accounts.sort_by_key(|a| a.account);
        let mut t = Turnover::default();
        for (gl, amount) in [
            (GlAccount::CustomerBalances, 100),
            (GlAccount::Reserve, -100),
            (GlAccount::CustomerBalances, -30),
            (GlAccount::MerchantAvailable, 30),
        ] {
            t.post(gl, Currency::CNY, amount).unwrap();
        }
        (accounts, t)
    }

    fn closing_of(check: &DayCheck) -> BTreeMap<(Currency, GlAccount), i128> {
        check
            .trial_balances
            .iter()
            .flat_map(|tb| {
                tb.rows
                    .iter()
                    .map(move |r| ((tb.currency, r.gl), r.closing))
            })
            .collect()
    }

    #[test]
    fn a_consistent_day_passes_and_the_next_opens_at_its_close() {
        let (accounts, turnover) = first_day();
        let check = check_day(&accounts, None, &BTreeMap::new(), &turnover);
        assert!(check.passed(), "{:?}", check.failures);
        assert!(check.trial_balances[0].balanced);
        let mut next: Vec<AccountDay> = accounts
            .iter()
            .map(|a| day(a.account, a.gl, a.closing, 0, 0))
            .collect();
        next.sort_by_key(|a| a.account);
        let check2 = check_day(
            &next,
            Some(&accounts),
            &closing_of(&check),
            &Turnover::default(),
        );
        assert!(check2.passed(), "{:?}", check2.failures);
    }

    #[test]
    fn each_kind_of_disagreement_is_named() {
        let (accounts, turnover) = first_day();
        // An account whose closing is not its opening plus turnover.
        let mut bad = accounts.clone();
        bad[0].closing += 1;
        let failures = check_day(&bad, None, &BTreeMap::new(), &turnover).failures;
        assert!(failures
            .iter()
            .any(|f| matches!(f, CheckFailure::ClosingMismatch { .. })));
        // The sub-ledger then also disagrees with its control account.
        assert!(failures
            .iter()
            .any(|f| matches!(f, CheckFailure::ControlMismatch { .. })));
        // GL turnover that lost a posting: unbalanced and a control mismatch.
        let mut lost = Turnover::default();
        lost.post(GlAccount::CustomerBalances, Currency::CNY, 100)
            .unwrap();
        lost.post(GlAccount::Reserve, Currency::CNY, -100).unwrap();
        lost.post(GlAccount::CustomerBalances, Currency::CNY, -30)
            .unwrap();
        let failures = check_day(&accounts, None, &BTreeMap::new(), &lost).failures;
        assert!(failures.contains(&CheckFailure::Unbalanced {
            currency: Currency::CNY
        }));
        assert!(failures.contains(&CheckFailure::ControlMismatch {
            gl: GlAccount::MerchantAvailable,
            currency: Currency::CNY,
            sub_ledger: -30,
            control: 0,
        }));
        // A day that does not open at the previous close, and one that lost an account.
        let check = check_day(&accounts, None, &BTreeMap::new(), &turnover);
        let mut next: Vec<AccountDay> = accounts
            .iter()
            .map(|a| day(a.account, a.gl, a.closing, 0, 0))
            .collect();
        next[0] = day(next[0].account, next[0].gl, next[0].opening + 5, 5, 0);
        let failures = check_day(
            &next[..2],
            Some(&accounts),
            &closing_of(&check),
            &Turnover::default(),
        )
        .failures;
        assert!(failures
            .iter()
            .any(|f| matches!(f, CheckFailure::OpeningMismatch { .. })));
        assert!(failures.contains(&CheckFailure::MissingAccount {
            account: accounts[2].account
        }));
        // Out of order.
        let mut shuffled = accounts.clone();
        shuffled.swap(0, 1);
        let failures = check_day(&shuffled, None, &BTreeMap::new(), &turnover).failures;
        assert!(failures
            .iter()
            .any(|f| matches!(f, CheckFailure::Unordered { .. })));
    }

    #[test]
    fn the_hash_is_chained_and_covers_every_field() {
        let (accounts, _) = first_day();
        let date = BusinessDate::parse("2026-12-01").unwrap();
        let h1 = snapshot_hash(&[0; 32], date, &accounts);
        assert_eq!(
            h1,
            snapshot_hash(&[0; 32], date, &accounts),
            "deterministic"
        );
        assert_ne!(h1, snapshot_hash(&[1; 32], date, &accounts), "chained");
        assert_ne!(h1, snapshot_hash(&[0; 32], date.next().unwrap(), &accounts));
        let mut changed = accounts.clone();
        changed[1].postings += 1;
        assert_ne!(h1, snapshot_hash(&[0; 32], date, &changed));
    }
}
