//! Which accounts are in memory: lazy activation from the store, passivation when idle.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use engine::{AccountId, LiveAccount};
use storage::Store;

use crate::account_actor::{AccountActor, Passivate, ACCOUNT_MAILBOX_MAX};
use crate::error::LedgerError;

/// Hasher of the id-keyed maps: randomly seeded, fast on 16-byte keys.
pub type IdHasher = foldhash::fast::RandomState;

struct Slot {
    addr: Addr<AccountActor>,
    /// Seconds since the registry's epoch when the account was last looked up; the sweeper
    /// passivates accounts not touched for a while. Coarse on purpose: one relaxed store.
    touched_s: AtomicU32,
}

/// The account actors currently in memory, by id.
pub struct Registry {
    actors: DashMap<AccountId, Slot, IdHasher>,
    epoch: Instant,
    /// More active accounts than this and activation answers `Overloaded` until the sweeper
    /// passivated some: memory stays bounded whatever the access pattern.
    active_max: usize,
}

impl Registry {
    pub fn new(active_max: usize) -> Registry {
        Registry {
            actors: DashMap::default(),
            epoch: Instant::now(),
            active_max,
        }
    }

    fn now_s(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    pub fn len(&self) -> usize {
        self.actors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }

    /// The actor of an account that is in memory, without activating it.
    pub fn get(&self, id: AccountId) -> Option<Addr<AccountActor>> {
        self.actors.get(&id).map(|slot| slot.addr.clone())
    }

    /// The actor of `id`, started from the store's record when not in memory. `Ok(None)`
    /// when the account does not exist. Must be called on an actix arbiter: the actor starts
    /// on the caller's.
    pub fn get_or_activate(
        self: &Arc<Self>,
        id: AccountId,
        store: &Store,
    ) -> Result<Option<Addr<AccountActor>>, LedgerError> {
        let now = self.now_s();
        if let Some(slot) = self.actors.get(&id) {
            slot.touched_s.store(now, Ordering::Relaxed);
            return Ok(Some(slot.addr.clone()));
        }
        if self.actors.len() >= self.active_max {
            return Err(LedgerError::Overloaded("active accounts"));
        }
        // Load under the shard's lock so two activations of one account cannot both start.
        match self.actors.entry(id) {
            Entry::Occupied(slot) => Ok(Some(slot.get().addr.clone())),
            Entry::Vacant(vacant) => {
                let Some(account) = store.account(id)? else {
                    return Ok(None);
                };
                let registry = Arc::clone(self);
                let addr = AccountActor::create(move |ctx| {
                    ctx.set_mailbox_capacity(ACCOUNT_MAILBOX_MAX);
                    AccountActor::new(LiveAccount::new(account), registry)
                });
                vacant.insert(Slot {
                    addr: addr.clone(),
                    touched_s: AtomicU32::new(now),
                });
                Ok(Some(addr))
            }
        }
    }

    /// Forgets `id` if it is still served by `addr` (called by the actor as it stops).
    pub fn remove(&self, id: AccountId, addr: &Addr<AccountActor>) {
        self.actors.remove_if(&id, |_, slot| slot.addr == *addr);
    }

    /// Asks every account untouched for `idle` to passivate; returns how many were asked.
    /// An actor with anything pending ignores the request.
    pub fn sweep(&self, idle: Duration) -> usize {
        let now = self.now_s();
        let idle_s = u32::try_from(idle.as_secs()).unwrap_or(u32::MAX);
        let mut asked = 0;
        for slot in self.actors.iter() {
            if now.saturating_sub(slot.touched_s.load(Ordering::Relaxed)) >= idle_s {
                // A full mailbox means the account is busy, not idle: skip it.
                if slot.addr.try_send(Passivate(Default::default())).is_ok() {
                    asked += 1;
                }
            }
        }
        asked
    }
}
