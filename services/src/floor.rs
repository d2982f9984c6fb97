//! The durable floor (issue #14): a request that makes its body durable through the same
//! group-commit writer as a payment and does nothing else. What a payment costs above it is
//! the payment's own work; what the floor itself reaches against `/healthz` bounds any
//! durable request on the machine (docs/BENCHMARKS.md). Served only with `bench_floor` on
//! (off by default), to the operator, for load tests on a throwaway data dir; its records
//! expire an hour after they are written and compaction drops them.

use std::time::Duration;

use storage::records;
use storage::schema::expiring_value;

use crate::platform::{new_id, now_ns, Platform};
use crate::{Error, Result};

/// Most records one request may write.
pub const RECORDS_MAX: u8 = 8;

/// How long a floor record is kept.
const RETENTION: Duration = Duration::from_secs(3_600);

/// Makes `body` durable as `records` records (1 to [`RECORDS_MAX`]) in one unit of the
/// group-commit writer, and answers the request's id once the unit's group is synced. The
/// first record is keyed by the id, time-ordered, as a payment's own record is; the others by
/// `client_key` (the request's `Idempotency-Key`), as a payment's `out_trade_no` index and
/// idempotency record are keyed by the client's texts, or without one by the id's random
/// bits.
pub async fn write(
    state: &Platform,
    body: &[u8],
    records: u8,
    client_key: Option<&[u8]>,
) -> Result<u128> {
    if !(1..=RECORDS_MAX).contains(&records) {
        return Err(Error::invalid(
            "invalid_records",
            format!("records must be 1 to {RECORDS_MAX}"),
        )
        .with_param("records"));
    }
    let id = new_id();
    let random = id.rotate_left(48).to_be_bytes();
    let expires = now_ns().saturating_add(RETENTION.as_nanos() as u64);
    let value = expiring_value(expires, body);
    let unit = (0..records)
        .map(|n| {
            let key = match (n, client_key) {
                (0, _) => records::bench_floor_key(0, &id.to_be_bytes()),
                (n, Some(k)) => records::bench_floor_key(n, k),
                (n, None) => records::bench_floor_key(n, &random),
            };
            (key, value.clone())
        })
        .collect();
    state.ledger()?.write_records(unit).await?;
    Ok(id)
}
