//! The ledger handle: the one entry point of the layers above. It admits a command, runs the
//! prepare / durable-write / commit protocol over the shard actors, and answers.
//!
//! Transfers go through one coordinator task, in rounds. A round is whatever queued while
//! the previous round was being prepared (up to [`ROUND_TRANSFERS_MAX`]):
//! 1. claim each transfer's id against the transfers in flight (a duplicate of one already
//!    durable is answered by the writer, from the group it writes);
//! 2. send each shard **one** `Prepare` with all of the round's legs on its accounts, in
//!    round order; the shard checks status, currency, funds or overflow and reserves each;
//! 3. a transfer with any leg refused has its reserved legs released (one `Release` per
//!    shard) and is answered with the refusal of its first refused leg;
//! 4. the rest go to the group-commit writer as one submission, and the coordinator takes the
//!    next round while this one's group syncs;
//! 5. once synced: one `Commit` per shard with the durable legs (a duplicate's legs are
//!    released), then each caller is answered.
//!
//! Reserving before writing is what makes a transfer atomic and overdraft-free under any
//! interleaving: an amount reserved by one transfer cannot be spent by another, and once all
//! legs are reserved none can fail. The coordinator owns a command from the moment it is
//! queued, so a caller who stops waiting (an HTTP client hanging up) cannot leave
//! reservations or a durable transfer half-applied.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use dashmap::DashMap;
use engine::gl::{BusinessDate, GlAccount, OpenPeriod};
use engine::{
    Account, AccountId, AccountStatus, Currency, Effect, LiveAccount, Reject, Timestamp, Transfer,
    TransferId,
};
use storage::records::{self, GlDates};
use storage::{CommitUnit, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::claims::{Claims, Token};
use crate::error::LedgerError;
use crate::shard::{
    shard_of, Activate, AssignGl, Commit, FinishGl, FinishStatus, IdHasher, Leg, LegError, Prepare,
    PrepareStatus, Release, Shard, Snapshot, Sweep, SHARD_MAILBOX_MAX,
};

/// Commands admitted at once; beyond it the answer is `Overloaded`. Bounds every queue
/// behind it: the coordinator's queue, shard mailboxes, the commit queue.
pub const INFLIGHT_COMMANDS_MAX: usize = 16_384;
/// Accounts in memory at once, over all shards (each shard keeps its share); beyond it the
/// least recently used idle ones are evicted.
pub const ACTIVE_ACCOUNTS_MAX: usize = 2_000_000;
/// Transfers one round prepares at most (TigerBeetle's batch: 8,190 events).
pub const ROUND_TRANSFERS_MAX: usize = 8_190;
/// Rounds are not split below this many transfers: a round's messages cost the same for 10
/// transfers as for 1,000.
pub const ROUND_TRANSFERS_MIN: usize = 128;
/// Shard actors of a ledger unless configured.
pub const SHARDS_DEFAULT: usize = 8;
/// Accounts whose [`AccountFacts`] the ledger remembers unless configured; the map is
/// cleared when full (a miss costs one point read of the account). ≈ 48 bytes an entry:
/// ≈ 12 MiB at most.
pub const FACTS_CACHED_MAX: usize = 1 << 18;

/// Key/value records of the layers above, written in the same unit as a command's effect.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The sequence number of the journal entry that made a command durable.
pub type Seq = u64;
/// A command's business outcome: durable at `Seq`, or rejected with nothing changed.
pub type Outcome = Result<Seq, Reject>;

/// Tunables of the ledger. `Default` is what payd uses.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    pub inflight_max: usize,
    pub active_accounts_max: usize,
    /// An account untouched this long is passivated (dropped from memory).
    pub idle_after: Duration,
    /// How often the sweeper looks for idle accounts.
    pub sweep_every: Duration,
    /// Shard actors the accounts are spread over (by a fixed hash of the id).
    pub shards: usize,
    /// Accounts whose facts ([`Ledger::facts`]) are kept in memory at most.
    pub facts_cached_max: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            inflight_max: INFLIGHT_COMMANDS_MAX,
            active_accounts_max: ACTIVE_ACCOUNTS_MAX,
            idle_after: Duration::from_secs(300),
            sweep_every: Duration::from_secs(10),
            shards: SHARDS_DEFAULT,
            facts_cached_max: FACTS_CACHED_MAX,
        }
    }
}

/// A concurrent set of ids. foldhash: randomly seeded (ids may come from clients), and much
/// cheaper than SipHash on a 16-byte key.
type IdSet<K> = DashMap<K, (), IdHasher>;

/// The ledger's accounting period, shared by the coordinator (which stamps every transfer of
/// a round with it and moves it at a switch) and the readers. `None`: the ledger is undated
/// (no business date yet), and transfers keep the dates they carry.
type Period = Arc<Mutex<Option<OpenPeriod>>>;

fn period_of(period: &Period) -> Option<OpenPeriod> {
    *period.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    store: Arc<Store>,
    shards: Vec<Addr<Shard>>,
    /// Work waiting for the coordinator; bounded by admission (never full when admitted).
    queue: mpsc::Sender<Work>,
    period: Period,
    inflight: Arc<AtomicUsize>,
    inflight_max: usize,
    active: Arc<AtomicUsize>,
    /// Account ids between their claim and their durable write (or rejection): catches a
    /// duplicate creation that the store cannot see yet.
    accounts_inflight: IdSet<AccountId>,
    /// Facts of accounts read before ([`Ledger::facts`]), at most `facts_cached_max`.
    facts: DashMap<AccountId, AccountFacts, IdHasher>,
    facts_cached_max: usize,
}

/// What never changes about an account once it exists: what a payment is checked against
/// (the payer's currency, its age for the risk score) before the ledger is asked to move
/// money. Read without a message to the account's shard ([`Ledger::facts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    pub currency: Currency,
    pub created_at: Timestamp,
}

/// A cheap, cloneable handle on the ledger, usable from any thread.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

/// Decrements the in-flight count when a command finishes, however it finishes.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes a claimed id from its in-flight set when the command finishes.
struct Claim<'a, K: std::hash::Hash + Eq>(&'a IdSet<K>, K);

impl<K: std::hash::Hash + Eq> Drop for Claim<'_, K> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

type Answer = Result<Outcome, LedgerError>;

/// What the coordinator takes, in order: transfers, and the rare commands that must be
/// ordered against them in the journal.
enum Work {
    Transfer(Submitted),
    /// A day-end's switch closing `from`: the transfers queued before it are dated `from`,
    /// those after it the next day.
    Switch {
        from: BusinessDate,
        records: Records,
        reply: oneshot::Sender<Answer>,
        _admitted: Admitted,
    },
    /// A GL reassignment, ordered against the legs prepared on the account.
    AssignGl {
        account: AccountId,
        gl: GlAccount,
        reply: oneshot::Sender<Answer>,
        _admitted: Admitted,
    },
}

/// A transfer handed to the coordinator, with everything needed to finish it.
struct Submitted {
    transfer: Transfer,
    records: Records,
    /// The unit's note on its journal entry ([`CommitUnit::note`]; empty: none).
    note: Vec<u8>,
    waiter: Waiter,
}

/// Who waits for a transfer's answer. Kept apart from the transfer so that the transfer
/// moves into the commit unit without a copy.
struct Waiter {
    id: TransferId,
    reply: oneshot::Sender<Answer>,
    /// The caller's span: what is logged about the transfer is found by the request's id.
    span: tracing::Span,
    _admitted: Admitted,
}

impl Waiter {
    fn answer(self, answer: Answer) {
        if let Ok(Err(reject)) = &answer {
            self.span.in_scope(|| {
                tracing::debug!(transfer = %format_args!("{:032x}", self.id.0), %reject, "transfer refused");
            });
        }
        // A caller that stopped waiting is fine: the outcome stands regardless.
        let _ = self.reply.send(answer);
    }
}

fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Ledger {
    /// Starts the ledger over an open store. Call it inside an actix `System`: the shard
    /// actors, the coordinator and the idle sweeper run on the calling arbiter.
    pub fn start(store: Arc<Store>, config: LedgerConfig) -> Ledger {
        let active = Arc::new(AtomicUsize::new(0));
        let count = config.shards.max(1);
        // The fixed hash spreads accounts evenly, so an even share of the bound per shard.
        let per_shard = config.active_accounts_max.div_ceil(count);
        let shards: Vec<Addr<Shard>> = (0..count)
            .map(|_| {
                let shard = Shard::new(Arc::clone(&store), Arc::clone(&active), per_shard);
                Shard::create(move |ctx| {
                    ctx.set_mailbox_capacity(SHARD_MAILBOX_MAX);
                    shard
                })
            })
            .collect();
        let (queue, rx) = mpsc::channel(config.inflight_max.max(1));
        // The period a data dir already has (its first start leaves it to the layer that
        // knows the time zone: [`Ledger::open_period`]).
        let period: Period = Arc::new(Mutex::new(
            records::read::<GlDates>(&store, &records::gl_dates_key())
                .ok()
                .flatten()
                .map(|d| OpenPeriod {
                    open: d.business_date,
                    closed_through: d.closed_through,
                }),
        ));
        let inflight = Arc::new(AtomicUsize::new(0));
        actix_rt::spawn(coordinate(
            Arc::clone(&store),
            shards.clone(),
            Arc::clone(&period),
            Arc::clone(&inflight),
            rx,
        ));
        let sweep = shards.clone();
        actix_rt::spawn(async move {
            let mut tick = actix_rt::time::interval(config.sweep_every);
            loop {
                tick.tick().await;
                for shard in &sweep {
                    // A full mailbox means the shard is busy: sweep it next time.
                    if shard
                        .try_send(Sweep {
                            idle: config.idle_after,
                            queued: Default::default(),
                        })
                        .is_err()
                        && !shard.connected()
                    {
                        return;
                    }
                }
            }
        });
        Ledger {
            inner: Arc::new(Inner {
                store,
                shards,
                queue,
                period,
                inflight,
                inflight_max: config.inflight_max,
                active,
                accounts_inflight: IdSet::default(),
                facts: DashMap::default(),
                facts_cached_max: config.facts_cached_max.max(1),
            }),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The accounting period transfers are dated in; `None` before [`Ledger::open_period`]
    /// on a data dir's first start.
    pub fn period(&self) -> Option<OpenPeriod> {
        period_of(&self.inner.period)
    }

    /// Dates every later transfer in `period`: called once the period's record is durable,
    /// before traffic (a data dir's first start), or to install the one it has.
    pub fn open_period(&self, period: OpenPeriod) {
        *self.inner.period.lock().unwrap_or_else(|e| e.into_inner()) = Some(period);
    }

    /// A day-end's switch: closes the open date `from` and opens the next, durably, with
    /// `records` and the period's record in the same write. Ordered with the transfers: each
    /// one queued before it is dated `from` and written before it, each one after it is
    /// dated the next day. Refused (`invalid_accounting_date`) when `from` is not the open
    /// date (already switched) or the ledger is undated.
    pub async fn switch_date(
        &self,
        from: BusinessDate,
        records: Records,
    ) -> Result<Outcome, LedgerError> {
        let admitted = self.admit()?;
        let (reply, answer) = oneshot::channel();
        self.send_work(Work::Switch {
            from,
            records,
            reply,
            _admitted: admitted,
        })?;
        answer.await.map_err(|_| LedgerError::ShuttingDown)?
    }

    /// Moves `account` to GL account `gl`, durably (a `GlAssigned` journal entry); its
    /// balance moves with it. For migrations and the rare reclassification.
    pub async fn assign_gl(
        &self,
        account: AccountId,
        gl: GlAccount,
    ) -> Result<Outcome, LedgerError> {
        let admitted = self.admit()?;
        let (reply, answer) = oneshot::channel();
        self.send_work(Work::AssignGl {
            account,
            gl,
            reply,
            _admitted: admitted,
        })?;
        answer.await.map_err(|_| LedgerError::ShuttingDown)?
    }

    fn send_work(&self, work: Work) -> Result<(), LedgerError> {
        match self.inner.queue.try_send(work) {
            Ok(()) => Ok(()),
            // Admission bounds the queue's content to its capacity: full cannot happen.
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(LedgerError::Overloaded("commands in flight"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(LedgerError::ShuttingDown),
        }
    }

    /// Accounts in memory now.
    pub fn active_accounts(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Commands in flight now.
    pub fn inflight(&self) -> usize {
        self.inner.inflight.load(Ordering::Acquire)
    }

    fn admit(&self) -> Result<Admitted, LedgerError> {
        let prior = self.inner.inflight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(Arc::clone(&self.inner.inflight));
        if prior >= self.inner.inflight_max {
            return Err(LedgerError::Overloaded("commands in flight"));
        }
        Ok(admitted)
    }

    fn shard(&self, id: AccountId) -> &Addr<Shard> {
        &self.inner.shards[shard_of(id, self.inner.shards.len())]
    }

    /// Creates an empty active account.
    pub async fn create_account(
        &self,
        id: AccountId,
        currency: Currency,
        credit_limit: i64,
    ) -> Result<Outcome, LedgerError> {
        self.create_account_with(id, currency, credit_limit, Vec::new())
            .await
    }

    /// Creates an empty active account, writing `records` (key/value pairs of the layers
    /// above, e.g. the account's owner) in the same durable write.
    pub async fn create_account_with(
        &self,
        id: AccountId,
        currency: Currency,
        credit_limit: i64,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Outcome, LedgerError> {
        self.create_account_in(
            id,
            currency,
            GlAccount::default_for(id),
            credit_limit,
            records,
        )
        .await
    }

    /// [`Ledger::create_account_with`], in GL account `gl`.
    pub async fn create_account_in(
        &self,
        id: AccountId,
        currency: Currency,
        gl: GlAccount,
        credit_limit: i64,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Outcome, LedgerError> {
        if credit_limit < 0 {
            return Ok(Err(Reject::InvalidCreditLimit));
        }
        let admitted = self.admit()?;
        let inner = Arc::clone(&self.inner);
        spawn_detached(async move {
            let _admitted = admitted;
            if inner.accounts_inflight.insert(id, ()).is_some() {
                return Ok(Err(Reject::AccountExists(id)));
            }
            let _claim = Claim(&inner.accounts_inflight, id);
            if inner.store.account(id)?.is_some() {
                return Ok(Err(Reject::AccountExists(id)));
            }
            let account = Account::new(id, currency, credit_limit, now()).in_gl(gl);
            let unit = CommitUnit {
                effects: vec![Effect::AccountCreated(account)],
                aux: records,
                ..CommitUnit::default()
            };
            let ack = inner.store.submit(unit)?;
            let seq = ack.await.map_err(|_| LedgerError::ShuttingDown)??;
            Ok(Ok(seq))
        })
        .await
    }

    /// Applies a transfer atomically and durably, or rejects it with nothing changed. The
    /// transfer's timestamp is set to now.
    pub async fn transfer(&self, transfer: Transfer) -> Result<Outcome, LedgerError> {
        self.transfer_with(transfer, Vec::new()).await
    }

    /// [`Ledger::transfer`], writing `records` (the payment object, an idempotency key's
    /// response) in the same durable write as the transfer, so that a crash can never
    /// separate them. Nothing of `records` is written if the transfer is rejected.
    pub async fn transfer_with(
        &self,
        mut transfer: Transfer,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Outcome, LedgerError> {
        if let Err(reject) = transfer.validate() {
            return Ok(Err(reject));
        }
        let admitted = self.admit()?;
        transfer.timestamp = now();
        let answer = self.enqueue(
            transfer,
            (records, Vec::new()),
            admitted,
            tracing::Span::current(),
        )?;
        answer.await.map_err(|_| LedgerError::ShuttingDown)?
    }

    /// Hands an admitted, validated transfer to the coordinator, which owns it from now on.
    fn enqueue(
        &self,
        transfer: Transfer,
        (records, note): (Records, Vec<u8>),
        admitted: Admitted,
        span: tracing::Span,
    ) -> Result<oneshot::Receiver<Answer>, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter {
            id: transfer.id,
            reply,
            span,
            _admitted: admitted,
        };
        let submitted = Submitted {
            transfer,
            records,
            note,
            waiter,
        };
        self.send_work(Work::Transfer(submitted))?;
        Ok(answer)
    }

    /// Many transfers at once (a batch endpoint): each is applied atomically on its own and
    /// gets its own outcome, in order — one refused does not refuse the others. Admitted as a
    /// whole: when the batch does not fit in the commands in flight, `Overloaded` and nothing
    /// is applied. Each `Ok` outcome is durable when this returns. The transfers enter the
    /// coordinator's queue together, so they share rounds and group writes. Each transfer
    /// comes with its note (bytes kept with its journal entry, [`CommitUnit::note`]; empty
    /// for none) instead of records under keys of their own: a batch writes one key per
    /// transfer (its dedup key) and the notes of a group write together.
    pub async fn transfer_many(
        &self,
        batch: Vec<(Transfer, Vec<u8>)>,
    ) -> Result<Vec<Result<Outcome, LedgerError>>, LedgerError> {
        let n = batch.len();
        let prior = self.inner.inflight.fetch_add(n, Ordering::AcqRel);
        let mut admitted: Vec<Admitted> = (0..n)
            .map(|_| Admitted(Arc::clone(&self.inner.inflight)))
            .collect();
        if prior + n > self.inner.inflight_max {
            return Err(LedgerError::Overloaded("commands in flight"));
        }
        let span = tracing::Span::current();
        let at = now();
        let mut answers = Vec::with_capacity(n);
        for (mut transfer, note) in batch {
            let slot = admitted.pop().expect("one admission per transfer");
            if let Err(reject) = transfer.validate() {
                answers.push(Err(Ok(Err(reject))));
                continue;
            }
            transfer.timestamp = at;
            answers.push(
                self.enqueue(transfer, (Vec::new(), note), slot, span.clone())
                    .map_err(Err),
            );
        }
        let mut outcomes = Vec::with_capacity(n);
        for answer in answers {
            outcomes.push(match answer {
                Ok(answer) => answer.await.unwrap_or(Err(LedgerError::ShuttingDown)),
                Err(now) => now,
            });
        }
        Ok(outcomes)
    }

    /// Makes records of the layers above durable on their own, with no effect on any balance
    /// (e.g. a declined payment, which is an object but moves no money).
    ///
    /// Cancellation-safe without a task of its own (a card payment's attempt comes here, so
    /// a spawned task was one more task to schedule and wake per payment): the unit is queued
    /// before the first await, so dropping this future drops only the answer, as dropping the
    /// detached task's handle did. The admission then ends before the write does; what waits
    /// stays bounded by the store's queue (`Overloaded` when full).
    pub async fn write_records(
        &self,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Seq, LedgerError> {
        let _admitted = self.admit()?;
        let ack = self.inner.store.submit(CommitUnit {
            effects: Vec::new(),
            aux: records,
            ..CommitUnit::default()
        })?;
        Ok(ack.await.map_err(|_| LedgerError::ShuttingDown)??)
    }

    /// Freezes, unfreezes or closes an account, durably.
    pub async fn set_status(
        &self,
        id: AccountId,
        status: AccountStatus,
    ) -> Result<Outcome, LedgerError> {
        let admitted = self.admit()?;
        let inner = Arc::clone(&self.inner);
        let shard = self.shard(id).clone();
        spawn_detached(async move {
            let _admitted = admitted;
            let prepared = shard
                .send(PrepareStatus {
                    account: id,
                    status,
                    queued: Default::default(),
                })
                .await
                .map_err(|_| LedgerError::ShuttingDown)?;
            match prepared {
                Ok(()) => {}
                Err(LegError::Rejected(reject)) => return Ok(Err(reject)),
                Err(LegError::Overloaded) => {
                    return Err(LedgerError::Overloaded("active accounts"))
                }
                Err(LegError::Store(e)) => return Err(e.into()),
            }
            let written = match inner.store.submit(CommitUnit::effect(Effect::StatusSet {
                account: id,
                status,
            })) {
                Ok(ack) => ack
                    .await
                    .map_err(|_| LedgerError::ShuttingDown)
                    .and_then(|r| r.map_err(LedgerError::from)),
                Err(e) => Err(e.into()),
            };
            shard.do_send(FinishStatus {
                account: id,
                apply: written.is_ok(),
                queued: Default::default(),
            });
            Ok(Ok(written?))
        })
        .await
    }

    /// Brings an account into memory ahead of use (benchmarks, warm restarts). `Ok(false)`
    /// when it does not exist.
    pub async fn activate(&self, id: AccountId) -> Result<bool, LedgerError> {
        Ok(self.activate_many(vec![id]).await? == 1)
    }

    /// Brings accounts into memory ahead of use, one message per shard; answers how many
    /// exist.
    pub async fn activate_many(&self, ids: Vec<AccountId>) -> Result<usize, LedgerError> {
        let n = self.inner.shards.len();
        let mut per_shard = vec![Vec::new(); n];
        for id in ids {
            per_shard[shard_of(id, n)].push(id);
        }
        let requests: Vec<_> = per_shard
            .into_iter()
            .enumerate()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(s, accounts)| {
                self.inner.shards[s].send(Activate {
                    accounts,
                    queued: Default::default(),
                })
            })
            .collect();
        let mut found = 0;
        for request in requests {
            match request.await.map_err(|_| LedgerError::ShuttingDown)? {
                Ok(n) => found += n,
                Err(LegError::Overloaded) => {
                    return Err(LedgerError::Overloaded("active accounts"))
                }
                Err(LegError::Store(e)) => return Err(e.into()),
                Err(LegError::Rejected(reject)) => {
                    unreachable!("activation refuses nothing: {reject}")
                }
            }
        }
        Ok(found)
    }

    /// The account as of now, pending reservations included; `None` if it does not exist.
    /// Reads an account that is not in memory straight from the store, without activating it.
    pub async fn account(&self, id: AccountId) -> Result<Option<LiveAccount>, LedgerError> {
        let resident = self
            .shard(id)
            .send(Snapshot {
                account: id,
                queued: Default::default(),
            })
            .await
            .map_err(|_| LedgerError::ShuttingDown)?;
        match resident {
            Some(live) => Ok(Some(live)),
            // Not in memory: nothing is pending on it, the store holds its exact state.
            None => Ok(self.inner.store.account(id)?.map(LiveAccount::new)),
        }
    }

    /// The account's immutable facts; `None` if it does not exist. Answered from memory
    /// when read before, else from the store, never by its shard: an account's currency and
    /// creation time are written once, in the unit that creates it, and an account is
    /// acknowledged (its id known to anyone) only once that unit is durable. Nothing about
    /// its balance or status: those are the shard's, checked when a transfer is prepared.
    ///
    /// This is what a payment asks before scoring: as a message to the shard it cost each
    /// payment a round trip to the ledger's thread, and under a moderate load, where
    /// nothing batches them, each such hop is a wake-up of a sleeping thread
    /// (docs/BENCHMARKS.md, session 51).
    pub fn facts(&self, id: AccountId) -> Result<Option<AccountFacts>, LedgerError> {
        if let Some(facts) = self.inner.facts.get(&id) {
            return Ok(Some(*facts));
        }
        let Some(account) = self.inner.store.account(id)? else {
            // Not cached: the account may be created later.
            return Ok(None);
        };
        let facts = AccountFacts {
            currency: account.currency,
            created_at: account.created_at,
        };
        if self.inner.facts.len() >= self.inner.facts_cached_max {
            self.inner.facts.clear();
        }
        self.inner.facts.insert(id, facts);
        Ok(Some(facts))
    }

    /// Accounts whose facts are in memory now (at most `facts_cached_max`).
    pub fn facts_cached(&self) -> usize {
        self.inner.facts.len()
    }
}

/// Runs `f` in its own task and waits for it; dropping the returned future does not stop the
/// task. This is what makes the rare commands (creations, status changes) cancellation-safe.
async fn spawn_detached<T: 'static>(
    f: impl std::future::Future<Output = Result<T, LedgerError>> + 'static,
) -> Result<T, LedgerError> {
    // The caller's span (a request's, carrying its payment id) follows the work.
    actix_rt::spawn(tracing::Instrument::in_current_span(f))
        .await
        .map_err(|_| LedgerError::ShuttingDown)?
}

/// The ids in flight ([`Claims`]): the coordinator's, so behind a plain `RefCell`.
type Claimed = Rc<RefCell<Claims>>;

/// Transfers a round takes at most: half of the commands in flight (at least
/// [`ROUND_TRANSFERS_MIN`], at most [`ROUND_TRANSFERS_MAX`]). Callers that wait for their
/// answer before sending again (HTTP clients, the engine bench's submitters) otherwise move
/// in one convoy: a group's acknowledgement answers all of them at once, they all come back
/// in the same round, and the writer idles while the actors prepare it, then the actors idle
/// while it syncs. Two half rounds alternate instead: one is prepared and committed while the
/// other is written (1,024 submitters over 1M accounts: 199k → 233k transfers/s,
/// docs/BENCHMARKS.md; thirds and quarters measured lower).
fn round_limit(inflight: usize) -> usize {
    (inflight / 2).clamp(ROUND_TRANSFERS_MIN, ROUND_TRANSFERS_MAX)
}

/// The coordinator: takes what queued, prepares it as one round, hands the round's durable
/// part to the writer, and goes on with the next round while that one syncs.
async fn coordinate(
    store: Arc<Store>,
    shards: Vec<Addr<Shard>>,
    period: Period,
    inflight: Arc<AtomicUsize>,
    mut rx: mpsc::Receiver<Work>,
) {
    let claimed: Claimed = Rc::default();
    let mut queued = Vec::with_capacity(ROUND_TRANSFERS_MAX);
    // A round's transfers, and those of them that go on to the shards: buffers kept from
    // round to round (1.7 MB each at 8,190 transfers). A fresh one a round cost the batch
    // endpoint's rounds a large allocation, its first-touch page faults and cold copies.
    let mut round = Vec::with_capacity(ROUND_TRANSFERS_MAX);
    let mut cmds = Vec::with_capacity(ROUND_TRANSFERS_MAX);
    loop {
        let limit = round_limit(inflight.load(Ordering::Acquire));
        if rx.recv_many(&mut queued, limit).await == 0 {
            break;
        }
        for work in queued.drain(..) {
            let special = match work {
                Work::Transfer(s) => {
                    round.push(s);
                    continue;
                }
                special => special,
            };
            // What queued before it is prepared and submitted first, so the journal holds
            // it first.
            if !round.is_empty() {
                let period = period_of(&period);
                prepare_round(&store, &shards, &claimed, period, &mut round, &mut cmds).await;
            }
            match special {
                Work::Transfer(_) => unreachable!("transfers join the round"),
                Work::Switch {
                    from,
                    records,
                    reply,
                    _admitted,
                } => switch(&store, &period, from, records, reply, _admitted),
                Work::AssignGl {
                    account,
                    gl,
                    reply,
                    _admitted,
                } => {
                    let date = period_of(&period).map(|p| p.open);
                    assign_gl(&store, &shards, (account, gl, date), reply, _admitted).await
                }
            }
        }
        if !round.is_empty() {
            let period = period_of(&period);
            prepare_round(&store, &shards, &claimed, period, &mut round, &mut cmds).await;
        }
    }
}

/// Submits the switch's journal entry (with the new period's record) behind everything
/// already submitted, and dates what follows in the next day at once.
fn switch(
    store: &Arc<Store>,
    period: &Period,
    from: BusinessDate,
    mut records: Records,
    reply: oneshot::Sender<Answer>,
    admitted: Admitted,
) {
    let next = match period_of(period) {
        Some(p) if p.open == from => p.switched(),
        _ => None,
    };
    let Some(next) = next else {
        let _ = reply.send(Ok(Err(Reject::InvalidAccountingDate)));
        return;
    };
    let dates = GlDates {
        business_date: next.open,
        closed_through: next.closed_through,
    };
    records.push((records::gl_dates_key(), records::encode(&dates)));
    let unit = CommitUnit {
        effects: vec![Effect::DateSwitched {
            from,
            to: next.open,
        }],
        aux: records,
        ..CommitUnit::default()
    };
    match store.submit(unit) {
        Ok(ack) => {
            *period.lock().unwrap_or_else(|e| e.into_inner()) = Some(next);
            actix_rt::spawn(async move {
                let _admitted = admitted;
                let answer = match ack.await {
                    Ok(Ok(seq)) => Ok(Ok(seq)),
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(LedgerError::ShuttingDown),
                };
                let _ = reply.send(answer);
            });
        }
        Err(e) => {
            let _ = reply.send(Err(e.into()));
        }
    }
}

/// Moves the account's GL account in its shard, then submits the `GlAssigned` entry: legs
/// prepared before it carry the old GL account and are submitted before it, legs after it
/// the new one.
async fn assign_gl(
    store: &Arc<Store>,
    shards: &[Addr<Shard>],
    (account, gl, date): (AccountId, GlAccount, Option<BusinessDate>),
    reply: oneshot::Sender<Answer>,
    admitted: Admitted,
) {
    let shard = shards[shard_of(account, shards.len())].clone();
    let moved = shard
        .send(AssignGl {
            account,
            gl,
            queued: Default::default(),
        })
        .await;
    let from = match moved {
        Ok(Ok(from)) => from,
        Ok(Err(e)) => {
            let _ = reply.send(answer_of(e));
            return;
        }
        Err(_) => {
            let _ = reply.send(Err(LedgerError::ShuttingDown));
            return;
        }
    };
    let ack = store.submit(CommitUnit::effect(Effect::GlAssigned {
        account,
        from,
        gl,
        date,
    }));
    actix_rt::spawn(async move {
        let _admitted = admitted;
        let answer = match ack {
            Err(e) => Err(e.into()),
            Ok(ack) => match ack.await {
                Ok(Ok(seq)) => Ok(Ok(seq)),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(LedgerError::ShuttingDown),
            },
        };
        shard.do_send(FinishGl {
            account,
            queued: Default::default(),
        });
        let _ = reply.send(answer);
    });
}

/// Where a shard's leg came from: (command index in the round, posting index).
type Origin = (u32, u8);

/// One shard's legs of a round, as prepared, with where each came from.
struct ShardLegs {
    legs: Vec<Leg>,
    origin: Vec<Origin>,
}

/// Why a command of the round will not be written: its first refused leg's reason.
fn worse(current: &mut Option<(u8, LegError)>, posting: u8, e: LegError) {
    if current.as_ref().is_none_or(|(p, _)| posting < *p) {
        *current = Some((posting, e));
    }
}

fn answer_of(e: LegError) -> Answer {
    match e {
        LegError::Rejected(reject) => Ok(Err(reject)),
        LegError::Overloaded => Err(LedgerError::Overloaded("active accounts")),
        LegError::Store(e) => Err(e.into()),
    }
}

async fn prepare_round(
    store: &Arc<Store>,
    shards: &[Addr<Shard>],
    claimed: &Claimed,
    period: Option<OpenPeriod>,
    round: &mut Vec<Submitted>,
    cmds: &mut Vec<Submitted>,
) {
    let n = shards.len();
    // 1. Dates and claims, in place: the refused are taken out, the rest stay where they are
    //    (a round's transfers are not copied to another buffer, 1.7 MB at 8,190), and the
    //    buffers trade places.
    debug_assert!(cmds.is_empty());
    if let Some(period) = period {
        let mut why = Vec::new();
        let refused: Vec<Submitted> = round
            .extract_if(.., |s| {
                let t = &mut s.transfer;
                match period.stamp(t.accounting_date, t.value_date) {
                    Ok((accounting, value)) => {
                        t.accounting_date = Some(accounting);
                        t.value_date = Some(value);
                        false
                    }
                    Err(reject) => {
                        why.push(reject);
                        true
                    }
                }
            })
            .collect();
        for (s, reject) in refused.into_iter().zip(why) {
            s.waiter.answer(Ok(Err(reject)));
        }
    }
    let (token, refused) = {
        let mut claims = claimed.borrow_mut();
        let (token, duplicate) = claims.claim(round.iter().map(|s| s.transfer.id));
        let mut duplicate = duplicate.iter();
        let refused: Vec<Submitted> = round
            .extract_if(.., |_| *duplicate.next().expect("one flag per transfer"))
            .collect();
        (token, refused)
    };
    for s in refused {
        s.waiter.answer(Ok(Err(Reject::DuplicateId)));
    }
    std::mem::swap(round, cmds);
    if cmds.is_empty() {
        claimed.borrow_mut().finish(token);
        return;
    }
    // 2. One Prepare per shard with all its legs, in round order. Sized for a shard's share
    //    and a quarter more (accounts hash evenly over the shards), so that a full round's
    //    legs (16,380 at the batch endpoint) are not copied at every doubling.
    let legs_total: usize = cmds.iter().map(|c| c.transfer.postings.len()).sum();
    let share = if legs_total < 8 * n {
        0 // a few legs (a round of payments): allocated by the first push, as before
    } else {
        legs_total / n + legs_total / (4 * n)
    };
    let mut per_shard: Vec<ShardLegs> = (0..n)
        .map(|_| ShardLegs {
            legs: Vec::with_capacity(share),
            origin: Vec::with_capacity(share),
        })
        .collect();
    for (c, cmd) in cmds.iter().enumerate() {
        for (p, posting) in cmd.transfer.postings.iter().enumerate() {
            let s = &mut per_shard[shard_of(posting.account, n)];
            s.legs.push(Leg {
                account: posting.account,
                currency: posting.currency,
                amount: posting.amount,
                outcome: Ok(()),
                gl: None,
            });
            s.origin.push((c as u32, p as u8));
        }
    }
    let requests: Vec<_> = per_shard
        .iter_mut()
        .enumerate()
        .map(|(s, sl)| {
            (!sl.legs.is_empty()).then(|| {
                shards[s].send(Prepare {
                    legs: std::mem::take(&mut sl.legs),
                    queued: Default::default(),
                })
            })
        })
        .collect();
    let mut refused: Vec<Option<(u8, LegError)>> = vec![None; cmds.len()];
    for (s, request) in requests.into_iter().enumerate() {
        let Some(request) = request else { continue };
        let sl = &mut per_shard[s];
        match request.await {
            Ok(legs) => {
                for (leg, &(c, p)) in legs.iter().zip(&sl.origin) {
                    match &leg.outcome {
                        Err(e) => worse(&mut refused[c as usize], p, e.clone()),
                        // The journal's leg names the GL account it is booked to.
                        Ok(()) => cmds[c as usize].transfer.postings[p as usize].gl = leg.gl,
                    }
                }
                sl.legs = legs;
            }
            Err(_) => {
                // The shard is gone (the system is stopping): nothing of it was reserved.
                for &(c, p) in &sl.origin {
                    worse(
                        &mut refused[c as usize],
                        p,
                        LegError::Store(StoreError::Closed),
                    );
                }
                sl.origin.clear();
            }
        }
    }
    // 3. Release what refused commands reserved.
    let failed = |c: u32| refused[c as usize].is_some();
    send_legs(shards, &per_shard, failed, |legs| Release {
        legs,
        queued: Default::default(),
    });
    // A refused command whose id is already durable is a duplicate, whatever its legs said
    // now (a retry after the funds moved on): the writer answers that for the accepted ones,
    // a multi-get does for the refused (rare) ones.
    let refused_ids: Vec<TransferId> = cmds
        .iter()
        .zip(&refused)
        .filter(|(_, r)| matches!(r, Some((_, LegError::Rejected(_)))))
        .map(|(cmd, _)| cmd.transfer.id)
        .collect();
    if !refused_ids.is_empty() {
        match store.transfer_seqs(&refused_ids) {
            Ok(seqs) => {
                let mut seqs = seqs.into_iter();
                for r in refused.iter_mut() {
                    if matches!(r, Some((_, LegError::Rejected(_))))
                        && seqs.next().flatten().is_some()
                    {
                        *r = Some((0, LegError::Rejected(Reject::DuplicateId)));
                    }
                }
            }
            Err(e) => {
                for r in refused.iter_mut().filter(|r| r.is_some()) {
                    *r = Some((0, LegError::Store(e.clone())));
                }
            }
        }
    }
    // 4. The rest to the writer, as one submission.
    let mut accepted = Vec::with_capacity(cmds.len());
    let mut units = Vec::with_capacity(cmds.len());
    let mut index_of = vec![u32::MAX; cmds.len()];
    for (c, (cmd, why)) in cmds.drain(..).zip(refused).enumerate() {
        match why {
            Some((_, e)) => cmd_answer(cmd.waiter, answer_of(e), claimed, token),
            None => {
                index_of[c] = accepted.len() as u32;
                units.push(CommitUnit {
                    effects: vec![Effect::Posted(cmd.transfer)],
                    aux: cmd.records,
                    note: cmd.note,
                });
                accepted.push(cmd.waiter);
            }
        }
    }
    if accepted.is_empty() {
        claimed.borrow_mut().finish(token);
        return;
    }
    // Keep only the accepted commands' legs, renumbered to their place in `accepted` (in
    // place; when every command was accepted the numbers are already theirs).
    if accepted.len() < index_of.len() {
        for sl in &mut per_shard {
            let mut kept = 0;
            for i in 0..sl.origin.len() {
                let (c, p) = sl.origin[i];
                let a = index_of[c as usize];
                if a != u32::MAX {
                    sl.legs.swap(kept, i);
                    sl.origin[kept] = (a, p);
                    kept += 1;
                }
            }
            sl.legs.truncate(kept);
            sl.origin.truncate(kept);
        }
    }
    let ack = store.submit_many(units);
    let shards = shards.to_vec();
    let claimed = Rc::clone(claimed);
    // 5. Finish when the group is synced; the coordinator goes on meanwhile.
    actix_rt::spawn(async move {
        let outcomes: Vec<Answer> = match ack {
            Err(e) => {
                let e = LedgerError::from(e);
                accepted.iter().map(|_| Err(e.clone())).collect()
            }
            Ok(ack) => match ack.await {
                Ok(Ok(outcomes)) => outcomes
                    .into_iter()
                    .map(|o| match o {
                        Ok(seq) => Ok(Ok(seq)),
                        Err(StoreError::DuplicateTransfer(_)) => Ok(Err(Reject::DuplicateId)),
                        Err(e) => Err(e.into()),
                    })
                    .collect(),
                // Not acknowledged. The store is poisoned now, so nothing more will be
                // written and the in-memory state must not move either.
                Ok(Err(e)) => {
                    let e = LedgerError::from(e);
                    accepted.iter().map(|_| Err(e.clone())).collect()
                }
                Err(_) => accepted
                    .iter()
                    .map(|_| Err(LedgerError::ShuttingDown))
                    .collect(),
            },
        };
        let durable = |a: u32| matches!(outcomes[a as usize], Ok(Ok(_)));
        send_legs(&shards, &per_shard, durable, |legs| Commit {
            legs,
            queued: Default::default(),
        });
        send_legs(
            &shards,
            &per_shard,
            |a| !durable(a),
            |legs| Release {
                legs,
                queued: Default::default(),
            },
        );
        for (cmd, outcome) in accepted.into_iter().zip(outcomes) {
            if let (true, Ok(Ok(seq))) = (tracing::enabled!(tracing::Level::DEBUG), &outcome) {
                cmd.span.in_scope(|| {
                    tracing::debug!(seq, transfer = %format_args!("{:032x}", cmd.id.0), "transfer durable");
                });
            }
            if token == Token::Single {
                claimed.borrow_mut().release(cmd.id, token);
            }
            cmd.answer(outcome);
        }
        // A bulk claim's ids are released together.
        claimed.borrow_mut().finish(token);
    });
}

/// Answers a command of a round before the round is done, and lets its id be claimed again.
fn cmd_answer(waiter: Waiter, answer: Answer, claimed: &Claimed, token: Token) {
    claimed.borrow_mut().release(waiter.id, token);
    waiter.answer(answer);
}

/// Sends each shard one message with the reserved legs of the commands `pick` selects.
fn send_legs<M>(
    shards: &[Addr<Shard>],
    per_shard: &[ShardLegs],
    pick: impl Fn(u32) -> bool,
    make: impl Fn(Vec<(AccountId, i64)>) -> M,
) where
    M: Message<Result = ()> + Send + 'static,
    Shard: Handler<M>,
{
    for (s, sl) in per_shard.iter().enumerate() {
        let mut picked = sl
            .legs
            .iter()
            .zip(&sl.origin)
            .filter(|(leg, &(c, _))| leg.outcome.is_ok() && pick(c))
            .map(|(leg, _)| (leg.account, leg.amount));
        let Some(first) = picked.next() else {
            continue;
        };
        // Sized for the rest at once (collected from a filter it would grow from nothing,
        // copying at each doubling).
        let mut legs: Vec<(AccountId, i64)> = Vec::with_capacity(sl.legs.len());
        legs.push(first);
        legs.extend(picked);
        // Never refused (a full mailbox does not apply to `do_send`): a reserved leg must be
        // committed or released exactly once.
        shards[s].do_send(make(legs));
    }
}
