//! Today's totals per currency (UTC day), for the ops page: payments and refunds count as
//! they reach their final status; at start they are seeded from the payments and refunds
//! created today (read from the store).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use storage::records::{self, Payment, PaymentStatus, Refund};

use crate::platform::now_ns;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub payments_succeeded: u64,
    /// Minor units.
    pub amount_succeeded: i64,
    pub payments_failed: u64,
    pub refunds_succeeded: u64,
    pub amount_refunded: i64,
}

#[derive(Default)]
struct TodayInner {
    /// UTC day number.
    day: u64,
    by_currency: BTreeMap<u16, CurrencyTotals>,
}

/// Today's totals per currency.
#[derive(Default)]
pub struct Today(Mutex<TodayInner>);

const DAY_NS: u64 = 86_400 * 1_000_000_000;

fn day_of(ns: u64) -> u64 {
    ns / DAY_NS
}

/// The creation time of an id (`state::new_id` puts milliseconds in its top 48 bits).
fn id_time_ns(id: u128) -> u64 {
    ((id >> 80) as u64).saturating_mul(1_000_000)
}

impl Today {
    fn with(&self, at_ns: u64, currency: u16, f: impl FnOnce(&mut CurrencyTotals)) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let day = day_of(at_ns);
        if t.day != day {
            t.day = day;
            t.by_currency.clear();
        }
        f(t.by_currency.entry(currency).or_default());
    }

    /// A payment reached `p.status` now.
    pub fn payment(&self, p: &Payment) {
        match p.status {
            PaymentStatus::Succeeded => self.with(now_ns(), p.currency, |t| {
                t.payments_succeeded += 1;
                t.amount_succeeded = t.amount_succeeded.saturating_add(p.amount);
            }),
            PaymentStatus::Failed => self.with(now_ns(), p.currency, |t| t.payments_failed += 1),
            // Held or released, not taken: counted when captured (succeeded).
            PaymentStatus::Processing | PaymentStatus::Authorized | PaymentStatus::Canceled => {}
        }
    }

    /// A refund (of a payment in `currency`) reached its status now.
    pub fn refund(&self, r: &Refund, currency: u16) {
        if r.status == PaymentStatus::Succeeded {
            self.with(now_ns(), currency, |t| {
                t.refunds_succeeded += 1;
                t.amount_refunded = t.amount_refunded.saturating_add(r.amount);
            });
        }
    }

    pub fn snapshot(&self) -> (u64, BTreeMap<u16, CurrencyTotals>) {
        let t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if t.day == day_of(now_ns()) {
            (t.day, t.by_currency.clone())
        } else {
            (day_of(now_ns()), BTreeMap::new())
        }
    }

    /// Counts the payments and refunds created today as they stand in the store (at start,
    /// before requests are served). Returns how many records were read.
    pub fn seed(&self, store: &storage::Store) -> Result<usize, String> {
        let now = now_ns();
        let start_ms = u128::from(day_of(now) * DAY_NS / 1_000_000);
        let from_id = start_ms << 80;
        let mut read = 0;
        for (prefix, is_payment) in [
            (storage::records::prefix::PAYMENT, true),
            (storage::records::prefix::REFUND, false),
        ] {
            let from = [prefix, &from_id.to_be_bytes()].concat();
            let mut refunds: Vec<Refund> = Vec::new();
            store
                .for_each_aux_with_prefix_from(prefix, &from, usize::MAX, |_, value| {
                    read += 1;
                    if is_payment {
                        if let Ok(p) =
                            storage::codec::decode::<Payment>(storage::codec::Kind::Aux, value)
                        {
                            if day_of(id_time_ns(p.id)) == day_of(now) {
                                self.payment(&p);
                            }
                        }
                    } else if let Ok(r) =
                        storage::codec::decode::<Refund>(storage::codec::Kind::Aux, value)
                    {
                        refunds.push(r);
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            for r in refunds {
                let currency = records::read::<Payment>(store, &records::payment_key(r.payment))
                    .ok()
                    .flatten()
                    .map(|p| p.currency)
                    .unwrap_or(0);
                self.refund(&r, currency);
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_creation_day() {
        let id = crate::platform::new_id();
        assert_eq!(day_of(id_time_ns(id)), day_of(now_ns()));
    }
}
