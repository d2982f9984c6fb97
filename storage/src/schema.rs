//! Column families, keys and the records stored under them.

use bincode::{Decode, Encode};
use engine::gl::{BusinessDate, GlAccount};
use engine::{AccountStatus, Currency, Effect};

/// Journal: key = commit sequence number (u64 big-endian) → [`JournalEntry`], or, for a group
/// write of several units, key = the first unit's sequence number → [`JournalGroup`] (one
/// record per group instead of one per unit). The ordered log of everything that happened;
/// replaying it from the start rebuilds every balance.
pub const CF_JOURNAL: &str = "journal";
/// Accounts: key = account id (u128 big-endian) → [`engine::Account`] base record, updated by
/// [`AccountDelta`] merge operands in the same write as the journal entry that causes them.
pub const CF_ACCOUNTS: &str = "accounts";
/// Dedup: key = transfer id (u128 big-endian) → sequence number of the entry that posted it.
/// Makes "applied at most once" a single point lookup.
pub const CF_DEDUP: &str = "dedup";
/// Idempotency and other records of the layers above, written atomically with the effects.
pub const CF_AUX: &str = "aux";
/// Keys of the `aux` column family starting with this byte hold expiring records: the value is
/// `[expires_at: u64 ns since the epoch, big-endian][record]`. Compaction drops them once
/// expired, which bounds their storage (idempotency keys).
pub const AUX_EXPIRING_PREFIX: u8 = b'x';

/// An expiring aux value: the expiry, then the record.
pub fn expiring_value(expires_at_ns: u64, record: &[u8]) -> Vec<u8> {
    [expires_at_ns.to_be_bytes().as_slice(), record].concat()
}

/// Splits an expiring aux value into its expiry and its record.
pub fn split_expiring(value: &[u8]) -> Option<(u64, &[u8])> {
    let (head, record) = value.split_at_checked(8)?;
    Some((u64::from_be_bytes(head.try_into().ok()?), record))
}

/// Store metadata: format version, creation time.
pub const CF_META: &str = "meta";
/// Audit log of operator actions: key = entry id (u128 big-endian, time-ordered) → the
/// entry (the API layer's record). Never expires, never rewritten.
pub const CF_AUDIT: &str = "audit";
/// A record of a commit unit whose key starts with these bytes goes to [`CF_AUDIT`] (under
/// the rest of the key), in the same atomic write as everything else in the unit.
pub const AUDIT_ROUTE: &[u8] = &[0xff, b'A'];

pub const COLUMN_FAMILIES: [&str; 6] =
    [CF_JOURNAL, CF_ACCOUNTS, CF_DEDUP, CF_AUX, CF_META, CF_AUDIT];

pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// Meta key of the GL book's [`BalancesThrough`]: the book in the meta family
/// ([`META_GL_BALANCES`], each open date's turnover) is as of that entry. Written with the
/// book in the synced write of the group that brings a balance checkpoint due, before the
/// checkpoint's accounts: never behind [`ACCOUNTS_THROUGH_KEY`] (store layout 5 and older:
/// the accounts' position too).
pub const META_BALANCES_THROUGH: &[u8] = b"balances_through";
/// Key, in the accounts family, of the accounts' [`BalancesThrough`]: the family's records
/// and merge operands hold every journal entry through it. Written in the same write or
/// table file as the checkpoint's operands, so a crash keeps both or neither. 17 bytes,
/// after every 16-byte account key: scans of accounts stop before it.
pub const ACCOUNTS_THROUGH_KEY: [u8; 17] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00,
];

/// The store's layout, in [`FormatMeta`] (records keep their own framing version,
/// [`crate::codec::FORMAT_VERSION`]). 1: every group write carried its balance merge
/// operands. 2: balances are checkpointed ([`BalancesThrough`]); the journal after the
/// checkpoint is replayed on open. A build that reads only layout 1 refuses a layout-2 store
/// (its balances lag the journal), so an older payd cannot silently lose the tail.
/// 3: a group write of several units stores their journal entries as one [`JournalGroup`]
/// record (layout 2 is read as it is: its records are single entries).
/// 4: the GL book ([`GlBalances`], each date's turnover) is kept with the balance
/// checkpoints; a store of layout 1–3 gains it on open, its balances summed from the
/// accounts.
/// 5: a transfer's dedup key may reach the dedup family after its entry (ingested from the
/// writer's runs, `crate::dedup`), with [`META_DEDUP_THROUGH`] saying how far it is
/// complete; an older build would take a posted transfer missing from it as new.
/// 6: the accounts family carries its own checkpoint position under
/// [`ACCOUNTS_THROUGH_KEY`] (balance checkpoints may be ingested as table files, which hold
/// one column family's keys), and [`META_BALANCES_THROUGH`] is the GL book's; an older
/// build would read that key as an account.
pub const LAYOUT_VERSION: u8 = 6;
/// Layout 5: the dedup runs, one checkpoint position for balances and the GL book. Opened
/// by writing the accounts family's position (the same) and the label.
pub const LAYOUT_DEDUP_RUNS: u8 = 5;
/// Layout 4: the GL book, every dedup key written with its entry. Opened by marking the
/// dedup family complete through the last entry.
pub const LAYOUT_GL_BOOK: u8 = 4;
/// Layout 3: one journal record per group, no GL book. Opened by opening the book.
pub const LAYOUT_GROUP_RECORDS: u8 = 3;
/// Layout 2: checkpointed balances, one journal record per unit. Opened as it is.
pub const LAYOUT_CHECKPOINTED: u8 = 2;
/// The layout before checkpointed balances: opened by migrating it to [`LAYOUT_VERSION`].
pub const LAYOUT_PER_GROUP_BALANCES: u8 = 1;

/// Meta key of the end of the archive: journal records of keys below it are in archive
/// segments ([`crate::archive`]), stored as a [`BalancesThrough`]-shaped `seq`.
pub const META_ARCHIVED_THROUGH: &[u8] = b"archived_through";
/// Meta key of [`GlBalances`].
pub const META_GL_BALANCES: &[u8] = b"gl_balances";
/// Meta key ([`BalancesThrough`]): transfers of journal entries before this sequence number
/// may have left the dedup index (their records are shelved, their at-most-once window over:
/// `Store::shelve`).
pub const META_DEDUP_PRUNED_THROUGH: &[u8] = b"dedup_pruned_through";
/// Meta key ([`BalancesThrough`]): every transfer posted by the journal entries through this
/// one is in the dedup family; later ones may be held only in the writer's runs
/// (`crate::dedup`), and open puts them there from the journal.
pub const META_DEDUP_THROUGH: &[u8] = b"dedup_through";
/// Meta key prefix of a business date's GL turnover ([`gl_day_key`] → [`engine::gl::Turnover`]).
pub const META_GL_DAY: &[u8] = b"gl_day/";

/// The meta key of `date`'s GL turnover: ordered by date.
pub fn gl_day_key(date: BusinessDate) -> Vec<u8> {
    [META_GL_DAY, &date.0.to_be_bytes()].concat()
}

/// The date of a [`gl_day_key`].
pub fn gl_day_of_key(key: &[u8]) -> Option<BusinessDate> {
    let rest = key.strip_prefix(META_GL_DAY)?;
    Some(BusinessDate(i32::from_be_bytes(rest.try_into().ok()?)))
}

/// Meta: every GL account's credit-positive balance per currency (the GL book), as of
/// [`BalancesThrough`] and written in the same batch. Each date's turnover is under
/// [`gl_day_key`], also as of the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct GlBalances {
    pub rows: Vec<(Currency, GlAccount, i128)>,
}

/// Meta: the accounts family holds the effects of every journal entry up to `seq` and none
/// after it. Written in the same batch as the merge operands that bring it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BalancesThrough {
    pub seq: u64,
}

/// The name RocksDB records for our merge operator; changing it makes old stores unreadable.
pub const ACCOUNT_MERGE_OPERATOR: &str = "rongpay.account.v1";

/// One commit unit as written to the journal.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JournalEntry {
    /// Redundant with the key: a record copied to the wrong key is detected.
    pub seq: u64,
    pub effects: Vec<Effect>,
}

/// The journal entries of one group write: entry `i` has sequence number `first_seq + i`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JournalGroup {
    /// Redundant with the key, as [`JournalEntry::seq`] is.
    pub first_seq: u64,
    pub entries: Vec<Vec<Effect>>,
}

/// A merge operand on an account record. Deltas are summed, so operands from concurrent
/// transfers combine in any order; a status change is a last-writer-wins field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct AccountDelta {
    /// i128: a sum of deltas may exceed i64 even though every balance fits.
    pub balance: i128,
    pub held: i128,
    pub status: Option<AccountStatus>,
    /// A GL reassignment (`Effect::GlAssigned`): last writer wins, as for the status.
    pub gl: Option<GlAccount>,
}

impl AccountDelta {
    /// `account` with this delta applied; `None` when a balance would leave i64.
    pub fn apply(&self, account: &mut engine::Account) -> Option<()> {
        account.balance =
            i64::try_from(i128::from(account.balance).checked_add(self.balance)?).ok()?;
        account.held = i64::try_from(i128::from(account.held).checked_add(self.held)?).ok()?;
        if let Some(status) = self.status {
            account.status = status;
        }
        if let Some(gl) = self.gl {
            account.gl = gl;
        }
        Some(())
    }

    pub fn then(self, next: AccountDelta) -> Option<AccountDelta> {
        Some(AccountDelta {
            balance: self.balance.checked_add(next.balance)?,
            held: self.held.checked_add(next.held)?,
            status: next.status.or(self.status),
            gl: next.gl.or(self.gl),
        })
    }
}

/// Metadata: the store's layout version ([`LAYOUT_VERSION`]).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct FormatMeta {
    pub format_version: u8,
}

pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn seq_from_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}
