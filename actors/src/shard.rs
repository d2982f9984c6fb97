//! Shard actors: each owns the live state of the accounts whose ids hash to it and
//! serializes every change to them. One message carries a whole round's postings for the
//! shard, so reaching an account costs a map lookup, not a mailbox round trip.
//!
//! An account lives in exactly one shard (`shard_of`), is activated from the store on first
//! use and passivated by the sweep once idle with nothing pending, or evicted (least recently
//! used first) when its shard is full: the shards are a bounded cache over every account the
//! store knows. Prepared postings reserve funds until their transfer is durable (`Commit`)
//! or abandoned (`Release`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use engine::gl::GlAccount;
use engine::{AccountId, AccountStatus, Currency, LiveAccount, Reject};
use storage::{Store, StoreError};

/// Hasher of the id-keyed maps: randomly seeded (ids may come from clients), fast on
/// 16-byte keys.
pub type IdHasher = foldhash::fast::RandomState;

/// Messages one shard may have queued before `send`ers wait (backpressure). Prepares come
/// one per round from the coordinator; commits and releases (`do_send`, never refused) are
/// bounded by the commands admitted.
pub const SHARD_MAILBOX_MAX: usize = 1_024;

/// Shard messages sent and not yet handled: waiting in a mailbox or being handled.
static MAILBOX_DEPTH: AtomicI64 = AtomicI64::new(0);

/// Messages waiting in (or being handled from) every shard's mailbox, summed.
pub fn mailbox_depth() -> i64 {
    MAILBOX_DEPTH.load(Ordering::Relaxed)
}

/// Accounts passivated since start (a counter).
pub const PASSIVATIONS: &str = "rongpay_accounts_passivated_total";

/// Carried by every shard message: counts it in [`mailbox_depth`] from its creation until it
/// is dropped (handled, or discarded with a stopped actor's mailbox), so the gauge cannot
/// drift whatever happens to the message.
#[derive(Debug)]
pub struct Queued(());

impl Default for Queued {
    fn default() -> Queued {
        MAILBOX_DEPTH.fetch_add(1, Ordering::Relaxed);
        Queued(())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        MAILBOX_DEPTH.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The shard that owns `id` among `shards`. A fixed function of the id (no machine-local
/// state), so the same account lands on the same shard after a restart or on a follower.
pub fn shard_of(id: AccountId, shards: usize) -> usize {
    // Ids are random or time-ordered 128-bit values: fold both halves so either kind spreads.
    let folded = (id.0 as u64) ^ ((id.0 >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % shards
}

/// Why a leg was not reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegError {
    /// A business rule refused it.
    Rejected(Reject),
    /// The shard holds as many accounts as it may, every one of them has something pending,
    /// and this one is not among them.
    Overloaded,
    /// Loading the account from the store failed.
    Store(StoreError),
}

/// One posting of a round, addressed to this shard; `outcome` is filled by the shard.
#[derive(Debug, Clone)]
pub struct Leg {
    pub account: AccountId,
    pub currency: Currency,
    pub amount: i64,
    pub outcome: Result<(), LegError>,
    /// The account's GL account, filled with a reserved leg's outcome.
    pub gl: Option<GlAccount>,
}

/// Check each leg against its account and reserve it, in order. Returns the legs with their
/// outcomes: a reserved leg must later be committed or released exactly once.
#[derive(Message)]
#[rtype(result = "Vec<Leg>")]
pub struct Prepare {
    pub legs: Vec<Leg>,
    pub queued: Queued,
}

/// Apply reserved legs whose transfers are durable. Sent with `do_send`: never refused.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Commit {
    pub legs: Vec<(AccountId, i64)>,
    pub queued: Queued,
}

/// Drop reserved legs whose transfers will not happen.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release {
    pub legs: Vec<(AccountId, i64)>,
    pub queued: Queued,
}

/// Check a status change and hold it pending until it is durable. While a change is pending
/// the account refuses new postings if either status would, and no other change may start.
#[derive(Message)]
#[rtype(result = "Result<(), LegError>")]
pub struct PrepareStatus {
    pub account: AccountId,
    pub status: AccountStatus,
    pub queued: Queued,
}

/// Finish a pending status change: `apply` once durable, or abandon it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishStatus {
    pub account: AccountId,
    pub apply: bool,
    pub queued: Queued,
}

/// The account as this shard sees it (durable state plus what is pending), or `None` when it
/// is not in memory (the store then holds exactly its state).
#[derive(Message)]
#[rtype(result = "Option<LiveAccount>")]
pub struct Snapshot {
    pub account: AccountId,
    pub queued: Queued,
}

/// Bring accounts into memory ahead of use; answers how many exist.
#[derive(Message)]
#[rtype(result = "Result<usize, LegError>")]
pub struct Activate {
    pub accounts: Vec<AccountId>,
    pub queued: Queued,
}

/// Move an account to another GL account now (sent by the coordinator between rounds, so
/// every leg prepared before it is written before its journal entry and every leg after it
/// carries the new GL account). It stays in memory until [`FinishGl`]. Answers the GL
/// account it leaves.
#[derive(Message)]
#[rtype(result = "Result<GlAccount, LegError>")]
pub struct AssignGl {
    pub account: AccountId,
    pub gl: GlAccount,
    pub queued: Queued,
}

/// The `GlAssigned` entry of an [`AssignGl`] is durable (or will never be): the account may
/// leave memory again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishGl {
    pub account: AccountId,
    pub queued: Queued,
}

/// Drop from memory every account untouched for `idle` with nothing pending.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Sweep {
    pub idle: Duration,
    pub queued: Queued,
}

struct Resident {
    live: LiveAccount,
    /// A status change waiting for its journal write.
    status_pending: Option<AccountStatus>,
    /// A GL reassignment not yet durable: until it is, a reload from the store would see
    /// the old GL account, so the account stays.
    gl_pending: bool,
    /// Seconds since the shard's epoch when last used; coarse on purpose.
    touched_s: u32,
}

impl Resident {
    fn is_idle(&self) -> bool {
        self.live.is_quiescent() && self.status_pending.is_none() && !self.gl_pending
    }
}

pub struct Shard {
    store: Arc<Store>,
    accounts: HashMap<AccountId, Resident, IdHasher>,
    /// Accounts in memory across all shards (a gauge).
    active: Arc<AtomicUsize>,
    /// Accounts this shard keeps in memory at most: a cache over every account in the store.
    /// Activating one more evicts the least recently used idle ones ([`EVICT_DIVISOR`]).
    resident_max: usize,
    epoch: Instant,
}

/// A full shard evicts this fraction (1/n) of its accounts at once, the least recently used
/// idle ones: one O(n) pass then pays for n/16 activations, so an activation costs O(1)
/// amortized, not a scan of the shard.
pub const EVICT_DIVISOR: usize = 16;

impl Shard {
    /// A shard over `store` keeping at most `resident_max` of its accounts in memory.
    pub fn new(store: Arc<Store>, active: Arc<AtomicUsize>, resident_max: usize) -> Shard {
        Shard {
            store,
            accounts: HashMap::default(),
            active,
            resident_max: resident_max.max(1),
            epoch: Instant::now(),
        }
    }

    /// Drops the least recently used idle accounts (about 1/[`EVICT_DIVISOR`] of those in
    /// memory, at least one); answers how many. An idle account has nothing reserved or
    /// pending, so the store holds exactly its state and a later activation reloads it.
    fn evict(&mut self) -> usize {
        let mut idle: Vec<u32> = self
            .accounts
            .values()
            .filter(|r| r.is_idle())
            .map(|r| r.touched_s)
            .collect();
        if idle.is_empty() {
            return 0;
        }
        let n = (self.accounts.len() / EVICT_DIVISOR).clamp(1, idle.len());
        let (below, cutoff, _) = idle.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        // Touch times are in seconds, so many may tie at the cutoff: take only as many of
        // those as make n.
        let mut at_cutoff = n - below.iter().filter(|&&t| t < cutoff).count();
        self.drop_where(|r| {
            if !r.is_idle() || r.touched_s > cutoff {
                return false;
            }
            if r.touched_s < cutoff {
                return true;
            }
            let take = at_cutoff > 0;
            at_cutoff = at_cutoff.saturating_sub(1);
            take
        })
    }

    /// Drops the accounts `f` selects, keeping the gauges true.
    fn drop_where(&mut self, mut f: impl FnMut(&Resident) -> bool) -> usize {
        let before = self.accounts.len();
        self.accounts.retain(|_, r| !f(r));
        let dropped = before - self.accounts.len();
        if dropped > 0 {
            self.active.fetch_sub(dropped, Ordering::Relaxed);
            metrics::counter!(PASSIVATIONS).increment(dropped as u64);
        }
        dropped
    }

    fn now_s(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// The resident account `id`, loaded from the store when not in memory; `Ok(None)` when
    /// it does not exist.
    fn resident(&mut self, id: AccountId, now: u32) -> Result<Option<&mut Resident>, LegError> {
        use std::collections::hash_map::Entry;
        // A miss on a full shard makes room first (eviction needs the whole map, so this is
        // the one case that pays a second lookup); a hit or a miss with room costs one.
        let mut loaded = None;
        if self.accounts.len() >= self.resident_max && !self.accounts.contains_key(&id) {
            let Some(account) = self.store.account(id).map_err(LegError::Store)? else {
                return Ok(None);
            };
            if self.evict() == 0 {
                return Err(LegError::Overloaded);
            }
            loaded = Some(account);
        }
        let r = match self.accounts.entry(id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                let account = match loaded {
                    Some(account) => account,
                    None => match self.store.account(id).map_err(LegError::Store)? {
                        Some(account) => account,
                        None => return Ok(None),
                    },
                };
                self.active.fetch_add(1, Ordering::Relaxed);
                slot.insert(Resident {
                    live: LiveAccount::new(account),
                    status_pending: None,
                    gl_pending: false,
                    touched_s: now,
                })
            }
        };
        r.touched_s = now;
        Ok(Some(r))
    }

    /// Reserves `leg`; answers its account's GL account.
    fn prepare(&mut self, leg: &Leg, now: u32) -> Result<GlAccount, LegError> {
        let id = leg.account;
        let Some(r) = self.resident(id, now)? else {
            return Err(LegError::Rejected(Reject::UnknownAccount(id)));
        };
        match r.status_pending {
            Some(AccountStatus::Frozen) => {
                return Err(LegError::Rejected(Reject::AccountFrozen(id)))
            }
            Some(AccountStatus::Closed) => {
                return Err(LegError::Rejected(Reject::AccountClosed(id)))
            }
            Some(AccountStatus::Active) | None => {}
        }
        r.live
            .prepare(leg.currency, leg.amount)
            .map_err(LegError::Rejected)?;
        Ok(r.live.account.gl)
    }

    /// The resident account a reserved leg was prepared on.
    ///
    /// # Panics
    /// If it is not resident: a reserved leg keeps its account from passivating, so this is a
    /// broken invariant, and continuing would corrupt balances.
    fn reserved(&mut self, id: AccountId) -> &mut LiveAccount {
        &mut self
            .accounts
            .get_mut(&id)
            .unwrap_or_else(|| panic!("a leg was reserved on {id}, which is not in memory"))
            .live
    }
}

impl Actor for Shard {
    type Context = Context<Self>;
}

impl Handler<Prepare> for Shard {
    type Result = MessageResult<Prepare>;

    fn handle(&mut self, msg: Prepare, _: &mut Context<Self>) -> Self::Result {
        let now = self.now_s();
        let mut legs = msg.legs;
        for leg in &mut legs {
            match self.prepare(leg, now) {
                Ok(gl) => leg.gl = Some(gl),
                Err(e) => leg.outcome = Err(e),
            }
        }
        MessageResult(legs)
    }
}

impl Handler<Commit> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) {
        for (id, amount) in msg.legs {
            self.reserved(id).commit(amount);
        }
    }
}

impl Handler<Release> for Shard {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) {
        for (id, amount) in msg.legs {
            self.reserved(id).release(amount);
        }
    }
}

impl Handler<PrepareStatus> for Shard {
    type Result = Result<(), LegError>;

    fn handle(&mut self, msg: PrepareStatus, _: &mut Context<Self>) -> Self::Result {
        let now = self.now_s();
        let id = msg.account;
        let Some(r) = self.resident(id, now)? else {
            return Err(LegError::Rejected(Reject::UnknownAccount(id)));
        };
        if r.status_pending.is_some() {
            return Err(LegError::Rejected(Reject::StatusChangePending(id)));
        }
        // Validate on a copy: the change takes effect only once durable.
        let mut probe = r.live.clone();
        probe.set_status(msg.status).map_err(LegError::Rejected)?;
        r.status_pending = Some(msg.status);
        Ok(())
    }
}

impl Handler<FinishStatus> for Shard {
    type Result = ();

    fn handle(&mut self, msg: FinishStatus, _: &mut Context<Self>) {
        let id = msg.account;
        let r = self
            .accounts
            .get_mut(&id)
            .unwrap_or_else(|| panic!("a status change was pending on {id}, not in memory"));
        let status = r
            .status_pending
            .take()
            .expect("a status change was pending");
        if msg.apply {
            // Validated at prepare, and nothing could be prepared since that breaks it.
            r.live.account.status = status;
        }
    }
}

impl Handler<AssignGl> for Shard {
    type Result = Result<GlAccount, LegError>;

    fn handle(&mut self, msg: AssignGl, _: &mut Context<Self>) -> Self::Result {
        let now = self.now_s();
        let id = msg.account;
        let Some(r) = self.resident(id, now)? else {
            return Err(LegError::Rejected(Reject::UnknownAccount(id)));
        };
        if r.gl_pending || r.status_pending.is_some() {
            return Err(LegError::Rejected(Reject::StatusChangePending(id)));
        }
        let from = std::mem::replace(&mut r.live.account.gl, msg.gl);
        r.gl_pending = true;
        Ok(from)
    }
}

impl Handler<FinishGl> for Shard {
    type Result = ();

    fn handle(&mut self, msg: FinishGl, _: &mut Context<Self>) {
        if let Some(r) = self.accounts.get_mut(&msg.account) {
            r.gl_pending = false;
        }
    }
}

impl Handler<Snapshot> for Shard {
    type Result = Option<LiveAccount>;

    fn handle(&mut self, msg: Snapshot, _: &mut Context<Self>) -> Self::Result {
        self.accounts.get(&msg.account).map(|r| r.live.clone())
    }
}

impl Handler<Activate> for Shard {
    type Result = Result<usize, LegError>;

    fn handle(&mut self, msg: Activate, _: &mut Context<Self>) -> Self::Result {
        let now = self.now_s();
        let mut found = 0;
        for id in msg.accounts {
            if self.resident(id, now)?.is_some() {
                found += 1;
            }
        }
        Ok(found)
    }
}

impl Handler<Sweep> for Shard {
    type Result = usize;

    fn handle(&mut self, msg: Sweep, _: &mut Context<Self>) -> usize {
        let now = self.now_s();
        let idle_s = u32::try_from(msg.idle.as_secs()).unwrap_or(u32::MAX);
        // Nothing pending: the store holds exactly this state, so a later activation that
        // reloads it sees the same account.
        self.drop_where(|r| r.is_idle() && now.saturating_sub(r.touched_s) >= idle_s)
    }
}
