//! Anti-abuse rate limits (GCRA, `governor`): per source IP on every request but the health
//! probes, per merchant key once a merchant is authenticated, and per payer account on
//! balance payments. Over the limit: `429 rate_limited` with `Retry-After` (whole seconds,
//! at least 1), and nothing changes.
//!
//! Memory is bounded: each keyed limiter forgets keys whose state is back to idle every
//! [`SWEEP_EVERY`], and one that still holds more than [`KEYS_MAX`] keys is cleared (a
//! flood of distinct keys then costs the flooder its own limits, never our memory).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{Error, Result};

/// Keys one limiter may hold before it is cleared.
pub const KEYS_MAX: usize = 100_000;

/// How often idle keys are forgotten.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A rate: `per_second` sustained, `burst` at once. `per_second == 0` turns it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_second(per_second).allow_burst(burst))
    }
}

/// One keyed limit, or none when turned off.
pub struct Limit<K: Hash + Eq + Clone> {
    /// Replaced by a fresh one when it holds too many keys (governor's keyed limiter has
    /// no `clear`); the read lock is uncontended on the request path.
    limiter: Option<RwLock<DefaultKeyedRateLimiter<K>>>,
    quota: Option<Quota>,
    /// What is limited, for the error message ("source IP", "merchant key", ...).
    what: &'static str,
    /// Its metric label: ip, merchant or payer.
    label: &'static str,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    pub fn new(rate: Rate, what: &'static str, label: &'static str) -> Limit<K> {
        Limit::from_quota(rate.quota(), what, label)
    }

    /// A limit of any period (`None`: no limit).
    pub fn from_quota(quota: Option<Quota>, what: &'static str, label: &'static str) -> Limit<K> {
        Limit {
            limiter: quota.map(|q| RwLock::new(RateLimiter::dashmap(q))),
            quota,
            what,
            label,
        }
    }

    /// Counts one request of `key`; `Err` is the 429 to answer.
    pub fn check(&self, key: &K) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let checked = limiter
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check_key(key);
        match checked {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                crate::metrics::rate_limited(self.label);
                Err(rate_limited(self.what, wait))
            }
        }
    }

    /// Forgets idle keys; clears the limiter when it still holds more than [`KEYS_MAX`].
    pub fn sweep(&self) {
        let (Some(limiter), Some(quota)) = (&self.limiter, self.quota) else {
            return;
        };
        let mut limiter = limiter
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        limiter.retain_recent();
        if limiter.len() > KEYS_MAX {
            *limiter = RateLimiter::dashmap(quota);
        }
        limiter.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| {
            l.read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The 429 answer: `Retry-After` is added from `retry_after_s` when it is rendered.
pub fn rate_limited(what: &str, wait: Duration) -> Error {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Error::RateLimited {
        message: format!(
            "too many requests for this {what}; retry after {} s",
            seconds.max(1)
        ),
        retry_after_s: seconds.max(1),
    }
}

/// Every limit payd applies.
pub struct Limits {
    pub ip: Limit<IpAddr>,
    pub merchant: Limit<u128>,
    pub payer: Limit<u128>,
}

impl Limits {
    pub fn new(ip: Rate, merchant: Rate, payer: Rate) -> Limits {
        Limits {
            ip: Limit::new(ip, "source IP", "ip"),
            merchant: Limit::new(merchant, "merchant key", "merchant"),
            payer: Limit::new(payer, "payer account", "payer"),
        }
    }

    pub fn sweep(&self) {
        self.ip.sweep();
        self.merchant.sweep();
        self.payer.sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_with_a_retry_after_and_off_means_off() {
        let limit = Limit::<u32>::new(
            Rate {
                per_second: 1,
                burst: 3,
            },
            "thing",
            "thing",
        );
        for _ in 0..3 {
            limit.check(&7).unwrap();
        }
        let e = limit.check(&7).unwrap_err();
        let Error::RateLimited { retry_after_s, .. } = e else {
            panic!("not a rate limit: {e:?}");
        };
        assert_eq!(retry_after_s, 1);
        limit.check(&8).expect("keys are limited apart");
        let off = Limit::<u32>::new(
            Rate {
                per_second: 0,
                burst: 0,
            },
            "thing",
            "thing",
        );
        for _ in 0..10_000 {
            off.check(&1).unwrap();
        }
        assert!(off.is_empty());
    }

    #[test]
    fn idle_keys_are_forgotten_and_a_flood_of_keys_is_bounded() {
        let limit = Limit::<u32>::new(
            Rate {
                per_second: 1_000_000,
                burst: 1,
            },
            "thing",
            "thing",
        );
        for k in 0..(KEYS_MAX as u32 + 10) {
            limit.check(&k).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        limit.sweep();
        assert!(limit.len() <= KEYS_MAX, "{}", limit.len());
    }
}
