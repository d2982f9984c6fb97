//! The deterministic ledger state machine: a batch of commands in, one outcome per command and
//! the effects to persist out. Time is an input. Used directly by single-threaded callers and
//! simulations, and to replay a journal of effects (recovery checks, audit, and later the
//! followers of a replicated log).

use std::collections::{BTreeMap, HashMap, HashSet};

use bincode::{Decode, Encode};

use crate::account::{Account, AccountStatus, LiveAccount};
use crate::gl::{BusinessDate, GlAccount, OpenPeriod};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::money::Currency;
use crate::transfer::Transfer;
use crate::Reject;

/// Most commands one batch may carry: bounds the work and the record size of one commit.
pub const BATCH_COMMANDS_MAX: usize = 8_192;

/// A request to change the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    CreateAccount {
        id: AccountId,
        currency: Currency,
        credit_limit: i64,
    },
    /// The transfer's own timestamp is replaced by the batch's `now`.
    Transfer(Transfer),
    SetStatus {
        account: AccountId,
        status: AccountStatus,
    },
    /// Moves an account to another GL account (a reclassification: its balance moves with
    /// it, booked as turnover of both on the open date).
    AssignGl { account: AccountId, gl: GlAccount },
    /// A day-end's switch: the open date closes, the next one opens.
    SwitchDate,
}

/// A change that happened: what is written to the journal, and all a replica needs to apply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Effect {
    AccountCreated(Account),
    Posted(Transfer),
    StatusSet {
        account: AccountId,
        status: AccountStatus,
    },
    /// The day-end's switch: every transfer before it in the journal is dated `from` or
    /// earlier, every one after it `to`.
    DateSwitched {
        from: BusinessDate,
        to: BusinessDate,
    },
    /// `account` moved to GL account `gl`, its balance with it: booked as turnover of both
    /// on `date` (the open business date then; `None` in an undated ledger).
    GlAssigned {
        account: AccountId,
        /// The GL account it leaves (what a reader going backwards needs).
        from: GlAccount,
        gl: GlAccount,
        date: Option<BusinessDate>,
    },
}

/// Why a journal could not be replayed: the log contradicts itself, so it is corrupt or was
/// written by a buggy engine. Never a client's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("account {0} created twice")]
    AccountExists(AccountId),
    #[error("effect names unknown account {0}")]
    UnknownAccount(AccountId),
    #[error("posting in {currency} to account {account} of another currency")]
    CurrencyMismatch {
        account: AccountId,
        currency: Currency,
    },
    #[error("transfer {0} posted twice")]
    DuplicateTransfer(TransferId),
    #[error("balance of {0} overflows")]
    Overflow(AccountId),
    #[error("posting on {account} booked to GL {posted:?}, but the account is in {gl:?}")]
    GlMismatch {
        account: AccountId,
        posted: GlAccount,
        gl: GlAccount,
    },
    #[error("the date switches from {from} to {to}, but the open date is {open}")]
    DateOutOfOrder {
        from: BusinessDate,
        to: BusinessDate,
        open: BusinessDate,
    },
}

/// Results of one batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// One per command, in order.
    pub outcomes: Vec<Result<(), Reject>>,
    /// The effects of the accepted commands, in order: persist these.
    pub effects: Vec<Effect>,
}

/// All accounts in memory plus the ids of every applied transfer.
///
/// Memory grows with accounts and transfers: this is the reference and replay machine, fed a
/// bounded journal or a simulation. The production path keeps accounts in actors and
/// transfer ids in the store.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    accounts: HashMap<AccountId, LiveAccount>,
    transfers: HashSet<TransferId>,
    /// `None`: an undated ledger (transfers keep the dates they carry).
    period: Option<OpenPeriod>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A ledger that dates every transfer in `period`, as the production ledger does.
    pub fn dated(period: OpenPeriod) -> Ledger {
        Ledger {
            period: Some(period),
            ..Ledger::default()
        }
    }

    pub fn period(&self) -> Option<OpenPeriod> {
        self.period
    }

    /// Applies `batch` in order at time `now`.
    ///
    /// # Panics
    /// If `batch` is longer than [`BATCH_COMMANDS_MAX`].
    pub fn apply_batch(&mut self, batch: &[Command], now: Timestamp) -> Applied {
        assert!(
            batch.len() <= BATCH_COMMANDS_MAX,
            "batch of {} commands",
            batch.len()
        );
        let mut applied = Applied {
            outcomes: Vec::with_capacity(batch.len()),
            effects: Vec::with_capacity(batch.len()),
        };
        for command in batch {
            let outcome = match command {
                Command::CreateAccount {
                    id,
                    currency,
                    credit_limit,
                } => self.create_account(*id, *currency, *credit_limit, now),
                Command::Transfer(t) => {
                    let mut t = Transfer {
                        timestamp: now,
                        ..t.clone()
                    };
                    self.transfer(&mut t).map(|()| Effect::Posted(t))
                }
                Command::AssignGl { account, gl } => match self.accounts.get_mut(account) {
                    None => Err(Reject::UnknownAccount(*account)),
                    Some(a) if !a.is_quiescent() => Err(Reject::StatusChangePending(*account)),
                    Some(a) => {
                        let from = std::mem::replace(&mut a.account.gl, *gl);
                        Ok(Effect::GlAssigned {
                            account: *account,
                            from,
                            gl: *gl,
                            date: self.period.map(|p| p.open),
                        })
                    }
                },
                Command::SwitchDate => match self.period.and_then(|p| Some((p, p.switched()?))) {
                    // An undated ledger, or the last representable day: nothing to switch.
                    None => Err(Reject::InvalidAccountingDate),
                    Some((from, to)) => {
                        self.period = Some(to);
                        Ok(Effect::DateSwitched {
                            from: from.open,
                            to: to.open,
                        })
                    }
                },
                Command::SetStatus { account, status } => self
                    .accounts
                    .get_mut(account)
                    .ok_or(Reject::UnknownAccount(*account))
                    .and_then(|a| a.set_status(*status))
                    .map(|()| Effect::StatusSet {
                        account: *account,
                        status: *status,
                    }),
            };
            applied
                .outcomes
                .push(outcome.as_ref().map(|_| ()).map_err(|r| *r));
            if let Ok(effect) = outcome {
                applied.effects.push(effect);
            }
        }
        assert_eq!(applied.outcomes.len(), batch.len());
        applied
    }

    fn create_account(
        &mut self,
        id: AccountId,
        currency: Currency,
        credit_limit: i64,
        now: Timestamp,
    ) -> Result<Effect, Reject> {
        if credit_limit < 0 {
            return Err(Reject::InvalidCreditLimit);
        }
        if self.accounts.contains_key(&id) {
            return Err(Reject::AccountExists(id));
        }
        let account = Account::new(id, currency, credit_limit, now);
        self.accounts.insert(id, LiveAccount::new(account.clone()));
        Ok(Effect::AccountCreated(account))
    }

    /// Prepare every posting, then commit them all; on the first rejection release the ones
    /// prepared so far. The same protocol the account actors run, in one thread. Fills each
    /// posting's GL account, and the dates when the ledger is dated.
    fn transfer(&mut self, t: &mut Transfer) -> Result<(), Reject> {
        t.validate()?;
        if self.transfers.contains(&t.id) {
            return Err(Reject::DuplicateId);
        }
        if let Some(period) = self.period {
            let (accounting, value) = period.stamp(t.accounting_date, t.value_date)?;
            t.accounting_date = Some(accounting);
            t.value_date = Some(value);
        }
        for (i, p) in t.postings.iter().enumerate() {
            let prepared = match self.accounts.get_mut(&p.account) {
                None => Err(Reject::UnknownAccount(p.account)),
                Some(a) => a.prepare(p.currency, p.amount),
            };
            if let Err(reject) = prepared {
                for q in &t.postings[..i] {
                    self.live(q.account).release(q.amount);
                }
                return Err(reject);
            }
        }
        for p in &mut t.postings {
            let live = self.live(p.account);
            live.commit(p.amount);
            p.gl = Some(live.account.gl);
        }
        self.transfers.insert(t.id);
        Ok(())
    }

    fn live(&mut self, id: AccountId) -> &mut LiveAccount {
        self.accounts
            .get_mut(&id)
            .expect("account of a prepared posting exists")
    }

    /// Applies an effect read back from a journal. Effects are facts: no business rule is
    /// re-checked (an account frozen after a posting was prepared still receives it), only the
    /// log's own consistency.
    pub fn replay(&mut self, effect: &Effect) -> Result<(), ReplayError> {
        match effect {
            Effect::AccountCreated(a) => {
                if self.accounts.contains_key(&a.id) {
                    return Err(ReplayError::AccountExists(a.id));
                }
                self.accounts.insert(a.id, LiveAccount::new(a.clone()));
            }
            Effect::Posted(t) => {
                if !self.transfers.insert(t.id) {
                    return Err(ReplayError::DuplicateTransfer(t.id));
                }
                for p in &t.postings {
                    let a = self
                        .accounts
                        .get_mut(&p.account)
                        .ok_or(ReplayError::UnknownAccount(p.account))?;
                    if a.account.currency != p.currency {
                        return Err(ReplayError::CurrencyMismatch {
                            account: p.account,
                            currency: p.currency,
                        });
                    }
                    if let Some(posted) = p.gl.filter(|g| *g != a.account.gl) {
                        return Err(ReplayError::GlMismatch {
                            account: p.account,
                            posted,
                            gl: a.account.gl,
                        });
                    }
                    a.account.balance = a
                        .account
                        .balance
                        .checked_add(p.amount)
                        .ok_or(ReplayError::Overflow(p.account))?;
                }
            }
            Effect::StatusSet { account, status } => {
                let a = self
                    .accounts
                    .get_mut(account)
                    .ok_or(ReplayError::UnknownAccount(*account))?;
                a.account.status = *status;
            }
            Effect::GlAssigned { account, gl, .. } => {
                self.accounts
                    .get_mut(account)
                    .ok_or(ReplayError::UnknownAccount(*account))?
                    .account
                    .gl = *gl;
            }
            Effect::DateSwitched { from, to } => {
                let open = self.period.map_or(*from, |p| p.open);
                if open != *from || from.next() != Some(*to) {
                    return Err(ReplayError::DateOutOfOrder {
                        from: *from,
                        to: *to,
                        open,
                    });
                }
                self.period = Some(OpenPeriod {
                    open: *to,
                    closed_through: Some(*from),
                });
            }
        }
        Ok(())
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id).map(|a| &a.account)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values().map(|a| &a.account)
    }

    pub fn contains_transfer(&self, id: TransferId) -> bool {
        self.transfers.contains(&id)
    }

    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }
}

/// Sum of all balances per currency. Every transfer balances per currency, so each sum is zero
/// in a consistent ledger: the trial balance.
pub fn trial_balance<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
) -> BTreeMap<Currency, i128> {
    let mut sums = BTreeMap::new();
    for a in accounts {
        *sums.entry(a.currency).or_insert(0i128) += i128::from(a.balance);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{PaymentParties, TransferKind};

    const C: Currency = Currency::CNY;
    const FUNDS: AccountId = AccountId(1);
    const PAYER: AccountId = AccountId(2);
    const MERCHANT: AccountId = AccountId(3);
    const FEES: AccountId = AccountId(4);

    fn setup() -> Ledger {
        let mut l = Ledger::new();
        let applied = l.apply_batch(
            &[
                Command::CreateAccount {
                    id: FUNDS,
                    currency: C,
                    credit_limit: i64::MAX,
                },
                Command::CreateAccount {
                    id: PAYER,
                    currency: C,
                    credit_limit: 0,
                },
                Command::CreateAccount {
                    id: MERCHANT,
                    currency: C,
                    credit_limit: 0,
                },
                Command::CreateAccount {
                    id: FEES,
                    currency: C,
                    credit_limit: 0,
                },
                Command::Transfer(Transfer::between(
                    TransferId(1),
                    TransferKind::Deposit,
                    FUNDS,
                    PAYER,
                    C,
                    10_000,
                    Timestamp(0),
                )),
            ],
            Timestamp(5),
        );
        assert!(applied.outcomes.iter().all(Result::is_ok));
        l
    }

    fn pay(id: u128, amount: i64, fee: i64) -> Command {
        let parties = PaymentParties {
            payer: PAYER,
            merchant: MERCHANT,
            fee_account: FEES,
        };
        Command::Transfer(Transfer::payment(
            TransferId(id),
            parties,
            C,
            amount,
            fee,
            Timestamp(0),
        ))
    }

    #[test]
    fn batch_outcomes_in_order() {
        let mut l = setup();
        let applied = l.apply_batch(
            &[
                pay(2, 6_000, 36),
                pay(3, 6_000, 36),
                pay(2, 1, 0),
                pay(4, 4_000, 24),
            ],
            Timestamp(9),
        );
        assert_eq!(
            applied.outcomes,
            vec![
                Ok(()),
                Err(Reject::InsufficientFunds(PAYER)),
                Err(Reject::DuplicateId),
                Ok(())
            ]
        );
        assert_eq!(applied.effects.len(), 2);
        assert_eq!(l.account(PAYER).unwrap().balance, 0);
        assert_eq!(l.account(MERCHANT).unwrap().balance, 10_000 - 60);
        assert_eq!(l.account(FEES).unwrap().balance, 60);
        assert_eq!(trial_balance(l.accounts()).get(&C), Some(&0));
        match &applied.effects[0] {
            Effect::Posted(t) => assert_eq!(t.timestamp, Timestamp(9)),
            other => panic!("unexpected effect {other:?}"),
        }
    }

    #[test]
    fn rejected_transfer_changes_nothing() {
        let mut l = setup();
        let before: Vec<Account> = [FUNDS, PAYER, MERCHANT, FEES]
            .map(|id| l.account(id).unwrap().clone())
            .to_vec();
        let unknown = Command::Transfer(Transfer::between(
            TransferId(7),
            TransferKind::Transfer,
            PAYER,
            AccountId(99),
            C,
            5,
            Timestamp(0),
        ));
        let frozen = Command::SetStatus {
            account: MERCHANT,
            status: AccountStatus::Frozen,
        };
        let applied = l.apply_batch(&[unknown, frozen, pay(8, 100, 1)], Timestamp(1));
        assert_eq!(
            applied.outcomes[0],
            Err(Reject::UnknownAccount(AccountId(99)))
        );
        assert_eq!(applied.outcomes[2], Err(Reject::AccountFrozen(MERCHANT)));
        for a in &before {
            let now = l.account(a.id).unwrap();
            assert_eq!(now.balance, a.balance);
        }
        assert!(!l.contains_transfer(TransferId(8)));
    }

    #[test]
    fn replay_reproduces_state() {
        let mut live = Ledger::new();
        let mut effects = live
            .apply_batch(
                &[
                    Command::CreateAccount {
                        id: FUNDS,
                        currency: C,
                        credit_limit: i64::MAX,
                    },
                    Command::CreateAccount {
                        id: PAYER,
                        currency: C,
                        credit_limit: 0,
                    },
                    Command::CreateAccount {
                        id: MERCHANT,
                        currency: C,
                        credit_limit: 0,
                    },
                    Command::CreateAccount {
                        id: FEES,
                        currency: C,
                        credit_limit: 0,
                    },
                    Command::Transfer(Transfer::between(
                        TransferId(1),
                        TransferKind::Deposit,
                        FUNDS,
                        PAYER,
                        C,
                        500,
                        Timestamp(0),
                    )),
                ],
                Timestamp(1),
            )
            .effects;
        effects.extend(
            live.apply_batch(&[pay(2, 300, 2), pay(3, 300, 2)], Timestamp(2))
                .effects,
        );
        let mut replica = Ledger::new();
        for e in &effects {
            replica.replay(e).unwrap();
        }
        for id in [FUNDS, PAYER, MERCHANT, FEES] {
            assert_eq!(replica.account(id), live.account(id));
        }
        assert_eq!(
            replica.replay(&effects[4]),
            Err(ReplayError::DuplicateTransfer(TransferId(1)))
        );
    }
}
