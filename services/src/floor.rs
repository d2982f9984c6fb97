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

/// Makes `body` durable as `records` records (1 to [`RECORDS_MAX`]: the first keyed by a new
/// time-ordered id, the others by its random bits, as a payment's own record and its index
/// and idempotency keys are) in one unit of the group-commit writer; answers the id once the
/// unit's group is synced.
pub async fn write(state: &Platform, body: &[u8], records: u8) -> Result<u128> {
    if !(1..=RECORDS_MAX).contains(&records) {
        return Err(Error::invalid(
            "invalid_records",
            format!("records must be 1 to {RECORDS_MAX}"),
        )
        .with_param("records"));
    }
    let id = new_id();
    let expires = now_ns().saturating_add(RETENTION.as_nanos() as u64);
    let value = expiring_value(expires, body);
    let unit = (0..records)
        .map(|n| (records::bench_floor_key(id, n), value.clone()))
        .collect();
    state.ledger()?.write_records(unit).await?;
    Ok(id)
}
