//! Decoders of record format 1 (before the chart of accounts, issue #15). Format 2 added a
//! GL account to [`engine::Account`], to each [`engine::Posting`] and to [`AccountDelta`],
//! the accounting and value dates to [`engine::Transfer`], and two effects. Records written
//! by format 1 stay readable forever: each old layout is kept here as it was, and upgraded
//! on read —
//! - an account gets the GL account its id implies ([`GlAccount::default_for`]: a platform
//!   account its role's, any other the customers' balances; merchants' accounts are moved
//!   by a `GlAssigned` entry written at the first start of a build with the chart);
//! - a posting gets no GL account and a transfer no dates: they were booked before the
//!   general ledger existed, and the GL's opening balances are taken from the accounts when
//!   a store gains it (store layout 4), so nothing needs them.
//!
//! Aux and meta payloads did not change: [`codec::decode`] reads them in either format.

use bincode::{Decode, Encode};
use engine::gl::GlAccount;
use engine::{
    Account, AccountId, AccountStatus, Currency, Effect, Posting, Timestamp, Transfer, TransferId,
    TransferKind,
};

use crate::codec::{self, CodecError, Kind};
use crate::schema::{AccountDelta, JournalEntry, JournalGroup};

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccountV1 {
    pub id: AccountId,
    pub currency: Currency,
    pub balance: i64,
    pub held: i64,
    pub credit_limit: i64,
    pub status: AccountStatus,
    pub created_at: Timestamp,
}

impl From<AccountV1> for Account {
    fn from(a: AccountV1) -> Account {
        Account {
            id: a.id,
            currency: a.currency,
            balance: a.balance,
            held: a.held,
            credit_limit: a.credit_limit,
            status: a.status,
            created_at: a.created_at,
            gl: GlAccount::default_for(a.id),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PostingV1 {
    pub account: AccountId,
    pub currency: Currency,
    pub amount: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TransferV1 {
    pub id: TransferId,
    pub kind: TransferKind,
    pub postings: Vec<PostingV1>,
    pub timestamp: Timestamp,
}

impl From<TransferV1> for Transfer {
    fn from(t: TransferV1) -> Transfer {
        let postings = t
            .postings
            .into_iter()
            .map(|p| Posting::new(p.account, p.currency, p.amount))
            .collect();
        Transfer::new(t.id, t.kind, postings, t.timestamp)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum EffectV1 {
    AccountCreated(AccountV1),
    Posted(TransferV1),
    StatusSet {
        account: AccountId,
        status: AccountStatus,
    },
}

impl From<EffectV1> for Effect {
    fn from(e: EffectV1) -> Effect {
        match e {
            EffectV1::AccountCreated(a) => Effect::AccountCreated(a.into()),
            EffectV1::Posted(t) => Effect::Posted(t.into()),
            EffectV1::StatusSet { account, status } => Effect::StatusSet { account, status },
        }
    }
}

fn effects(v: Vec<EffectV1>) -> Vec<Effect> {
    v.into_iter().map(Effect::from).collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JournalEntryV1 {
    pub seq: u64,
    pub effects: Vec<EffectV1>,
}

impl From<JournalEntryV1> for JournalEntry {
    fn from(e: JournalEntryV1) -> JournalEntry {
        JournalEntry {
            seq: e.seq,
            effects: effects(e.effects),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JournalGroupV1 {
    pub first_seq: u64,
    pub entries: Vec<Vec<EffectV1>>,
}

impl From<JournalGroupV1> for JournalGroup {
    fn from(g: JournalGroupV1) -> JournalGroup {
        JournalGroup {
            first_seq: g.first_seq,
            entries: g.entries.into_iter().map(effects).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct AccountDeltaV1 {
    pub balance: i128,
    pub held: i128,
    pub status: Option<AccountStatus>,
}

impl From<AccountDeltaV1> for AccountDelta {
    fn from(d: AccountDeltaV1) -> AccountDelta {
        AccountDelta {
            balance: d.balance,
            held: d.held,
            status: d.status,
            gl: None,
        }
    }
}

/// An account record of either format.
pub fn decode_account(bytes: &[u8]) -> Result<Account, CodecError> {
    codec::decode_upgrading::<Account, AccountV1>(Kind::Account, bytes)
}

/// An account merge operand of either format.
pub fn decode_delta(bytes: &[u8]) -> Result<AccountDelta, CodecError> {
    codec::decode_upgrading::<AccountDelta, AccountDeltaV1>(Kind::AccountDelta, bytes)
}

/// A single journal entry record of either format.
pub fn decode_entry(bytes: &[u8]) -> Result<JournalEntry, CodecError> {
    codec::decode_upgrading::<JournalEntry, JournalEntryV1>(Kind::Journal, bytes)
}

/// A group journal record of either format.
pub fn decode_group(bytes: &[u8]) -> Result<JournalGroup, CodecError> {
    codec::decode_upgrading::<JournalGroup, JournalGroupV1>(Kind::JournalGroup, bytes)
}
