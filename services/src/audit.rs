//! The audit log (issue #6): every operator action — who, what, when, the object before and
//! after — in the store's own `audit` column family, written in the same durable unit as
//! the action wherever the action is one unit (creations, deposits, merchant and channel
//! changes); right after it otherwise (account status, reviews, rules reloads). Never
//! rewritten, never expires.

use serde::Serialize;
use storage::records;

use crate::platform::{now_ns, Platform};
use crate::Result;

/// Entries one page answers.
pub const PAGE_MAX: usize = 100;

/// Filtered pages read at most this many entries each.
const PAGE_SCAN_MAX: usize = 100_000;

pub use storage::records::AuditEntry as Entry;

/// Who acts: the operator credential's short fingerprint (`admin:1a2b3c4d`) and the address
/// the request came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub source_ip: Option<String>,
}

/// The record of one action, to write with it (or right after).
pub fn record(
    platform: &Platform,
    actor: &Actor,
    action: &str,
    target: &str,
    before: Option<&impl Serialize>,
    after: Option<&impl Serialize>,
) -> (Vec<u8>, Vec<u8>) {
    let id = crate::webhooks::next_id(&platform.last_event_ns);
    let json = |v: &dyn erased::Json| v.to_json();
    let entry = Entry {
        id,
        at_ns: now_ns(),
        actor: actor.name.clone(),
        source_ip: actor.source_ip.clone(),
        action: action.to_string(),
        target: target.to_string(),
        before: before.map(|b| json(b)),
        after: after.map(|a| json(a)),
    };
    (records::audit_key(id), records::encode(&entry))
}

mod erased {
    /// Serializes to JSON text (object-safe).
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

/// Writes an action's record on its own (for actions that are not one unit).
pub async fn write(platform: &Platform, entry: (Vec<u8>, Vec<u8>)) -> Result<()> {
    platform.ledger()?.write_records(vec![entry]).await?;
    Ok(())
}

/// Entries after `after` (oldest first), only `action`'s if given: at most [`PAGE_MAX`],
/// and whether more follow.
pub fn page(
    platform: &Platform,
    after: Option<u128>,
    action: Option<&str>,
) -> Result<(Vec<Entry>, bool)> {
    let from = match after {
        None => Vec::new(),
        Some(id) => [id.to_be_bytes().as_slice(), &[0]].concat(),
    };
    let store = platform.store()?;
    let mut data = Vec::new();
    let mut has_more = false;
    store.for_each_audit_from(&from, PAGE_SCAN_MAX, |_, value| {
        if data.len() > PAGE_MAX {
            has_more = true;
            return Ok(());
        }
        if let Ok(e) = storage::codec::decode::<Entry>(storage::codec::Kind::Aux, value) {
            if action.is_none_or(|a| a == e.action) {
                data.push(e);
            }
        }
        Ok(())
    })?;
    if data.len() > PAGE_MAX {
        data.truncate(PAGE_MAX);
        has_more = true;
    }
    Ok((data, has_more))
}
