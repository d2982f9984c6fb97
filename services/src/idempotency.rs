//! Idempotency keys: the first answer to a request is kept with its effect and replayed to
//! a repeat; the same key with a different request, or while the first is in flight, is
//! refused.
//!
//! The record — request fingerprint, the answer's tag and bytes (for a payment, the payment's
//! record its answer renders: [`Guard::record_payment`]) — is written in the same
//! durable unit as the effect it guards (flows add [`Guard::record`] to their records), so
//! no crash can leave the effect without its key, or the key without its effect. Records
//! are kept [`RETENTION`] (≥ 24 h, across restarts) and then dropped by compaction: bounded
//! storage. What the fingerprint covers and what the tag means is the caller's (the HTTP
//! layer: method, path and body; the status it answered).

use std::time::Duration;

use storage::codec::{self, Kind};
use storage::records::{IdemForm, IdemRecord, Payment, Tail};
use storage::schema::{expiring_value, split_expiring};

use crate::platform::{now_ns, Platform};
use crate::{Error, Result};

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);

/// Whose keys: the operator's, or one merchant's (keys never collide across callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Merchant(u128),
}

impl Scope {
    fn bytes(self) -> [u8; 17] {
        let mut s = [0u8; 17];
        if let Scope::Merchant(m) = self {
            s[0] = 1;
            s[1..].copy_from_slice(&m.to_be_bytes());
        }
        s
    }
}

/// A keyed request in progress: holds the in-flight claim until dropped.
pub struct Guard<'a> {
    platform: &'a Platform,
    store_key: Vec<u8>,
    fingerprint: [u8; 32],
    tag: u16,
}

impl Guard<'_> {
    /// The record to write with the effect: the answer `body` (with the tag given at claim).
    pub fn record(&self, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.record_as(body, IdemForm::Answer)
    }

    /// The record to write with a payment whose answer is its view
    /// ([`crate::payments::view`]): `payment` is the payment's record as written in the same
    /// unit (a fifth of its view's JSON). A replay renders the view of that record, so it
    /// answers the payment as it was then, whatever happened to it since.
    pub fn record_payment(&self, payment: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.record_as(payment, IdemForm::Payment)
    }

    fn record_as(&self, body: &[u8], form: IdemForm) -> (Vec<u8>, Vec<u8>) {
        let record = IdemRecord {
            fingerprint: self.fingerprint,
            status: self.tag,
            body: body.to_vec(),
            form: Tail(form),
        };
        let expires = now_ns().saturating_add(RETENTION.as_nanos() as u64);
        (
            self.store_key.clone(),
            expiring_value(expires, &codec::encode(Kind::Aux, &record)),
        )
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.platform.idempotency_claims.remove(&self.store_key);
    }
}

/// What a key's claim found.
pub enum Claim<'a> {
    /// New (or expired): run the request and write [`Guard::record`] with its effect.
    New(Guard<'a>),
    /// The same request was answered before: its tag and bytes.
    Replay { tag: u16, body: Vec<u8> },
}

/// Claims `key` of `scope` for a request with `fingerprint`, whose completed answer will
/// carry `tag`: new, a replay, or refused (in flight, or used with another request).
pub fn claim<'a>(
    platform: &'a Platform,
    scope: Scope,
    key: &[u8],
    fingerprint: [u8; 32],
    tag: u16,
) -> Result<Claim<'a>> {
    let store_key = storage::records::idempotency_key(&scope.bytes(), key);
    match platform.idempotency_claims.entry(store_key.clone()) {
        dashmap::mapref::entry::Entry::Occupied(_) => {
            crate::metrics::idempotency("in_progress");
            return Err(Error::IdempotencyKeyInUse);
        }
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(());
        }
    }
    let guard = Guard {
        platform,
        store_key,
        fingerprint,
        tag,
    };
    let stored = platform.store()?.aux(&guard.store_key)?;
    let Some(value) = stored else {
        crate::metrics::idempotency("new");
        return Ok(Claim::New(guard));
    };
    let (expires_at, bytes) = split_expiring(&value)
        .ok_or_else(|| Error::storage("a stored idempotency record is malformed"))?;
    if expires_at < now_ns() {
        crate::metrics::idempotency("new");
        return Ok(Claim::New(guard));
    }
    let record: IdemRecord = codec::decode(Kind::Aux, bytes)
        .map_err(|e| Error::storage(format!("a stored idempotency record does not decode: {e}")))?;
    if record.fingerprint != guard.fingerprint {
        crate::metrics::idempotency("reused");
        return Err(Error::IdempotencyKeyReused);
    }
    let body = match record.form.0 {
        IdemForm::Answer => record.body,
        IdemForm::Payment => {
            let payment: Payment = codec::decode(Kind::Aux, &record.body).map_err(|e| {
                Error::storage(format!(
                    "the payment of a stored idempotency record does not decode: {e}"
                ))
            })?;
            crate::payments::view_json(&payment)
        }
    };
    crate::metrics::idempotency("replayed");
    Ok(Claim::Replay {
        tag: record.status,
        body,
    })
}

/// Writes a keyed request's answer on its own, for a request whose effects are many units
/// (a transfer batch) and so cannot carry the record in the same write.
pub async fn remember(platform: &Platform, guard: &Guard<'_>, body: &[u8]) -> Result<()> {
    platform
        .ledger()?
        .write_records(vec![guard.record(body)])
        .await?;
    Ok(())
}
