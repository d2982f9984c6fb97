//! The per-account actor: owns one account's live state and serializes every change to it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use engine::{AccountStatus, Currency, LiveAccount, Reject};

use crate::registry::Registry;

/// Messages one account actor may have queued before senders wait (backpressure). The hot
/// merchant account of a benchmark receives a prepare per transfer, so this is generous; the
/// total is still bounded by the ledger's admission limit.
pub const ACCOUNT_MAILBOX_MAX: usize = 4_096;

/// Account messages sent and not yet handled: waiting in a mailbox or being handled.
static MAILBOX_DEPTH: AtomicI64 = AtomicI64::new(0);

/// Messages waiting in (or being handled from) every account actor's mailbox, summed.
pub fn mailbox_depth() -> i64 {
    MAILBOX_DEPTH.load(Ordering::Relaxed)
}

/// Accounts passivated since start (a counter).
pub const PASSIVATIONS: &str = "rongpay_accounts_passivated_total";

/// Carried by every account message: counts it in [`mailbox_depth`] from its creation until
/// it is dropped (handled, or discarded with a stopped actor's mailbox), so the gauge cannot
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

/// Why a prepare did not reserve anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareError {
    /// A business rule refused it.
    Rejected(Reject),
    /// The actor was passivating: look the account up again (it reloads from the store).
    Passivated,
}

/// Check a posting against the account and reserve it.
#[derive(Message)]
#[rtype(result = "Result<(), PrepareError>")]
pub struct Prepare {
    pub currency: Currency,
    pub amount: i64,
    pub queued: Queued,
    /// The sender's span: what the actor logs about this posting is found by the request's
    /// (and the payment's) id.
    pub span: tracing::Span,
}

/// Apply a prepared posting: its transfer is durable. Sent with `do_send`: it must never be
/// refused, and the number in flight is bounded by the prepares admitted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Commit {
    pub amount: i64,
    pub queued: Queued,
}

/// Drop a prepared posting: its transfer will not happen.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release {
    pub amount: i64,
    pub queued: Queued,
}

/// Check a status change and hold it pending until it is durable. While a change is pending
/// the account refuses new postings if either status would, and no other change may start.
#[derive(Message)]
#[rtype(result = "Result<(), PrepareError>")]
pub struct PrepareStatus {
    pub status: AccountStatus,
    pub queued: Queued,
}

/// Finish a pending status change: `apply` once durable, or abandon it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinishStatus {
    pub apply: bool,
    pub queued: Queued,
}

/// The account as this actor sees it: durable state plus what is pending.
#[derive(Message)]
#[rtype(result = "Result<LiveAccount, PrepareError>")]
pub struct Snapshot(pub Queued);

/// The sweeper thinks this actor is idle: stop if nothing is pending.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate(pub Queued);

pub struct AccountActor {
    live: LiveAccount,
    /// A status change waiting for its journal write.
    status_pending: Option<AccountStatus>,
    /// Set when the actor decided to stop; any message still delivered is answered
    /// `Passivated` so its sender reloads the account instead of using a dead copy.
    passivated: bool,
    registry: Arc<Registry>,
}

impl AccountActor {
    pub fn new(live: LiveAccount, registry: Arc<Registry>) -> AccountActor {
        AccountActor {
            live,
            status_pending: None,
            passivated: false,
            registry,
        }
    }

    fn is_idle(&self) -> bool {
        self.live.is_quiescent() && self.status_pending.is_none()
    }
}

impl Actor for AccountActor {
    type Context = Context<Self>;
}

impl Handler<Prepare> for AccountActor {
    type Result = Result<(), PrepareError>;

    fn handle(&mut self, msg: Prepare, _: &mut Context<Self>) -> Self::Result {
        if self.passivated {
            return Err(PrepareError::Passivated);
        }
        let id = self.live.account.id;
        match self.status_pending {
            Some(AccountStatus::Frozen) => {
                return Err(PrepareError::Rejected(Reject::AccountFrozen(id)))
            }
            Some(AccountStatus::Closed) => {
                return Err(PrepareError::Rejected(Reject::AccountClosed(id)))
            }
            Some(AccountStatus::Active) | None => {}
        }
        let _in = msg.span.enter();
        self.live
            .prepare(msg.currency, msg.amount)
            .map_err(|reject| {
                tracing::debug!(account = %id, amount = msg.amount, %reject, "posting refused");
                PrepareError::Rejected(reject)
            })
    }
}

impl Handler<Commit> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: Commit, _: &mut Context<Self>) {
        assert!(
            !self.passivated,
            "commit on a passivated account {}",
            self.live.account.id
        );
        self.live.commit(msg.amount);
    }
}

impl Handler<Release> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) {
        assert!(
            !self.passivated,
            "release on a passivated account {}",
            self.live.account.id
        );
        self.live.release(msg.amount);
    }
}

impl Handler<PrepareStatus> for AccountActor {
    type Result = Result<(), PrepareError>;

    fn handle(&mut self, msg: PrepareStatus, _: &mut Context<Self>) -> Self::Result {
        if self.passivated {
            return Err(PrepareError::Passivated);
        }
        let id = self.live.account.id;
        if self.status_pending.is_some() {
            return Err(PrepareError::Rejected(Reject::StatusChangePending(id)));
        }
        // Validate on a copy: the change takes effect only once durable.
        let mut probe = self.live.clone();
        probe
            .set_status(msg.status)
            .map_err(PrepareError::Rejected)?;
        self.status_pending = Some(msg.status);
        Ok(())
    }
}

impl Handler<FinishStatus> for AccountActor {
    type Result = ();

    fn handle(&mut self, msg: FinishStatus, _: &mut Context<Self>) {
        let status = self
            .status_pending
            .take()
            .expect("a status change was pending");
        if msg.apply {
            // Validated at prepare, and nothing could be prepared since that breaks it.
            self.live.account.status = status;
        }
    }
}

impl Handler<Snapshot> for AccountActor {
    type Result = Result<LiveAccount, PrepareError>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        if self.passivated {
            return Err(PrepareError::Passivated);
        }
        Ok(self.live.clone())
    }
}

impl Handler<Passivate> for AccountActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Context<Self>) {
        if self.passivated || !self.is_idle() {
            return;
        }
        // Nothing pending: the store holds exactly this state, so a later activation that
        // reloads it sees the same account.
        self.passivated = true;
        metrics::counter!(PASSIVATIONS).increment(1);
        self.registry.remove(self.live.account.id, &ctx.address());
        ctx.stop();
    }
}
