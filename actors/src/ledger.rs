//! The ledger handle: the one entry point of the layers above. It admits a command, runs the
//! prepare / durable-write / commit protocol across the account actors, and answers.
//!
//! One transfer:
//! 1. validate its shape (engine), admit it (bounded in-flight count), claim its id (in-flight
//!    set, then the store's dedup index);
//! 2. `Prepare` each posting on its account's actor, in order: the actor checks status,
//!    currency, funds or overflow and reserves the amount; on a rejection, `Release` the ones
//!    reserved and answer the rejection;
//! 3. submit the journal entry to the group-commit writer and wait for its sync;
//! 4. `Commit` each posting on its actor and answer with the sequence number.
//!
//! Reserving before writing is what makes it atomic and overdraft-free under any
//! interleaving: an amount reserved by one transfer cannot be spent by another, and once all
//! legs are reserved none can fail. Steps 2–4 run in a spawned task so that a caller who stops
//! waiting (an HTTP client hanging up) cannot leave reservations or a durable transfer
//! half-applied.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use dashmap::DashMap;
use engine::{
    Account, AccountId, AccountStatus, Currency, Effect, LiveAccount, Posting, Reject, Timestamp,
    Transfer, TransferId,
};
use storage::{CommitUnit, Store};

use crate::account_actor::{
    AccountActor, Commit, FinishStatus, Prepare, PrepareError, PrepareStatus, Release, Snapshot,
};
use crate::error::LedgerError;
use crate::registry::{IdHasher, Registry};

/// A concurrent set of ids. foldhash: randomly seeded (ids may come from clients), and much
/// cheaper than SipHash on a 16-byte key.
type IdSet<K> = DashMap<K, (), IdHasher>;

/// Commands admitted at once; beyond it the answer is `Overloaded`. Bounds every queue
/// behind it: account mailboxes, the commit queue, pending commit messages.
pub const INFLIGHT_COMMANDS_MAX: usize = 16_384;
/// Accounts in memory at once (each costs well under a kilobyte).
pub const ACTIVE_ACCOUNTS_MAX: usize = 2_000_000;
/// Times a command retries an account whose actor was passivating under it.
const ACTIVATION_ATTEMPTS_MAX: u32 = 8;

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
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            inflight_max: INFLIGHT_COMMANDS_MAX,
            active_accounts_max: ACTIVE_ACCOUNTS_MAX,
            idle_after: Duration::from_secs(300),
            sweep_every: Duration::from_secs(10),
        }
    }
}

struct Inner {
    store: Arc<Store>,
    registry: Arc<Registry>,
    inflight: AtomicUsize,
    inflight_max: usize,
    /// Transfer ids between their claim and their durable write (or rejection): catches a
    /// duplicate that the store's index cannot see yet.
    transfers_inflight: IdSet<TransferId>,
    /// Same for account creations.
    accounts_inflight: IdSet<AccountId>,
}

/// A cheap, cloneable handle on the ledger. Use it from the actix arbiter that started it.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

/// Decrements the in-flight count when a command finishes, however it finishes.
struct Admitted(Arc<Inner>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes a claimed id from its in-flight set when the command finishes.
struct Claim<'a, K: std::hash::Hash + Eq>(&'a IdSet<K>, K);

impl<K: std::hash::Hash + Eq> Drop for Claim<'_, K> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
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
    /// Starts the ledger over an open store. Call it inside an actix `System`: account actors
    /// and the idle sweeper run on the calling arbiter.
    pub fn start(store: Arc<Store>, config: LedgerConfig) -> Ledger {
        let registry = Arc::new(Registry::new(config.active_accounts_max));
        let inner = Arc::new(Inner {
            store,
            registry: Arc::clone(&registry),
            inflight: AtomicUsize::new(0),
            inflight_max: config.inflight_max,
            transfers_inflight: IdSet::default(),
            accounts_inflight: IdSet::default(),
        });
        let weak = Arc::downgrade(&registry);
        actix_rt::spawn(async move {
            let mut tick = actix_rt::time::interval(config.sweep_every);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(registry) => {
                        registry.sweep(config.idle_after);
                    }
                    None => break,
                }
            }
        });
        Ledger { inner }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Accounts in memory now.
    pub fn active_accounts(&self) -> usize {
        self.inner.registry.len()
    }

    /// Commands in flight now.
    pub fn inflight(&self) -> usize {
        self.inner.inflight.load(Ordering::Acquire)
    }

    fn admit(&self) -> Result<Admitted, LedgerError> {
        let prior = self.inner.inflight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(Arc::clone(&self.inner));
        if prior >= self.inner.inflight_max {
            return Err(LedgerError::Overloaded("commands in flight"));
        }
        Ok(admitted)
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
            let account = Account::new(id, currency, credit_limit, now());
            let unit = CommitUnit {
                effects: vec![Effect::AccountCreated(account)],
                aux: records,
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
        let inner = Arc::clone(&self.inner);
        spawn_detached(async move {
            let _admitted = admitted;
            run_transfer(&inner, transfer, records).await
        })
        .await
    }

    /// Makes records of the layers above durable on their own, with no effect on any balance
    /// (e.g. a declined payment, which is an object but moves no money).
    pub async fn write_records(
        &self,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Seq, LedgerError> {
        let admitted = self.admit()?;
        let inner = Arc::clone(&self.inner);
        spawn_detached(async move {
            let _admitted = admitted;
            let ack = inner.store.submit(CommitUnit {
                effects: Vec::new(),
                aux: records,
            })?;
            Ok(ack.await.map_err(|_| LedgerError::ShuttingDown)??)
        })
        .await
    }

    /// Freezes, unfreezes or closes an account, durably.
    pub async fn set_status(
        &self,
        id: AccountId,
        status: AccountStatus,
    ) -> Result<Outcome, LedgerError> {
        let admitted = self.admit()?;
        let inner = Arc::clone(&self.inner);
        spawn_detached(async move {
            let _admitted = admitted;
            let addr = match with_actor(&inner, id, || PrepareStatus {
                status,
                queued: Default::default(),
            })
            .await?
            {
                Err(reject) => return Ok(Err(reject)),
                Ok(addr) => addr,
            };
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
            addr.do_send(FinishStatus {
                queued: Default::default(),
                apply: written.is_ok(),
            });
            Ok(Ok(written?))
        })
        .await
    }

    /// Brings an account into memory ahead of use (benchmarks, warm restarts). `Ok(false)`
    /// when it does not exist.
    pub fn activate(&self, id: AccountId) -> Result<bool, LedgerError> {
        Ok(self
            .inner
            .registry
            .get_or_activate(id, &self.inner.store)?
            .is_some())
    }

    /// The account as of now, pending reservations included; `None` if it does not exist.
    /// Reads an account that is not in memory straight from the store, without activating it.
    pub async fn account(&self, id: AccountId) -> Result<Option<LiveAccount>, LedgerError> {
        for _ in 0..ACTIVATION_ATTEMPTS_MAX {
            let Some(addr) = self.inner.registry.get(id) else {
                return Ok(self.inner.store.account(id)?.map(LiveAccount::new));
            };
            match addr.send(Snapshot(Default::default())).await {
                Ok(Ok(live)) => return Ok(Some(live)),
                Ok(Err(_)) | Err(_) => continue,
            }
        }
        Err(LedgerError::Overloaded("account activations"))
    }
}

/// Runs `f` in its own task and waits for it; dropping the returned future does not stop the
/// task. This is what makes the protocol cancellation-safe.
async fn spawn_detached<T: 'static>(
    f: impl std::future::Future<Output = Result<T, LedgerError>> + 'static,
) -> Result<T, LedgerError> {
    // The caller's span (a request's, carrying its payment id) follows the work.
    actix_rt::spawn(tracing::Instrument::in_current_span(f))
        .await
        .map_err(|_| LedgerError::ShuttingDown)?
}

/// Sends a prepare-style message to `id`'s actor, activating it if needed and retrying when
/// the actor passivated under us. `Ok(Err(reject))` is a business refusal.
async fn with_actor<M>(
    inner: &Inner,
    id: AccountId,
    make: impl Fn() -> M,
) -> Result<Result<Addr<AccountActor>, Reject>, LedgerError>
where
    M: Message<Result = Result<(), PrepareError>> + Send + 'static,
    AccountActor: Handler<M>,
{
    for _ in 0..ACTIVATION_ATTEMPTS_MAX {
        let Some(addr) = inner.registry.get_or_activate(id, &inner.store)? else {
            return Ok(Err(Reject::UnknownAccount(id)));
        };
        match addr.send(make()).await {
            Ok(Ok(())) => return Ok(Ok(addr)),
            Ok(Err(PrepareError::Rejected(reject))) => return Ok(Err(reject)),
            // Passivated, or stopped between lookup and delivery: look it up again.
            Ok(Err(PrepareError::Passivated)) | Err(_) => continue,
        }
    }
    Err(LedgerError::Overloaded("account activations"))
}

async fn run_transfer(
    inner: &Inner,
    transfer: Transfer,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Outcome, LedgerError> {
    let id = transfer.id;
    if inner.transfers_inflight.insert(id, ()).is_some() {
        return Ok(Err(Reject::DuplicateId));
    }
    let _claim = Claim(&inner.transfers_inflight, id);
    if inner.store.transfer_seq(id)?.is_some() {
        return Ok(Err(Reject::DuplicateId));
    }
    let mut prepared: Vec<(Addr<AccountActor>, i64)> = Vec::with_capacity(transfer.postings.len());
    let release = |prepared: Vec<(Addr<AccountActor>, i64)>| {
        for (addr, amount) in prepared {
            addr.do_send(Release {
                amount,
                queued: Default::default(),
            });
        }
    };
    for &Posting {
        account,
        currency,
        amount,
    } in &transfer.postings
    {
        match with_actor(inner, account, || Prepare {
            currency,
            amount,
            queued: Default::default(),
            span: tracing::Span::current(),
        })
        .await
        {
            Ok(Ok(addr)) => prepared.push((addr, amount)),
            Ok(Err(reject)) => {
                release(prepared);
                return Ok(Err(reject));
            }
            Err(e) => {
                release(prepared);
                return Err(e);
            }
        }
    }
    let unit = CommitUnit {
        effects: vec![Effect::Posted(transfer)],
        aux: records,
    };
    let ack = match inner.store.submit(unit) {
        Ok(ack) => ack,
        Err(e) => {
            release(prepared);
            return Err(e.into());
        }
    };
    match ack.await {
        Ok(Ok(seq)) => {
            tracing::debug!(seq, transfer = %format_args!("{:032x}", id.0), "transfer durable");
            for (addr, amount) in prepared {
                addr.do_send(Commit {
                    amount,
                    queued: Default::default(),
                });
            }
            Ok(Ok(seq))
        }
        Ok(Err(e)) => {
            // Not acknowledged. The store is poisoned now, so nothing more will be written
            // and the in-memory state must not move either.
            release(prepared);
            Err(e.into())
        }
        Err(_) => {
            release(prepared);
            Err(LedgerError::ShuttingDown)
        }
    }
}
