//! Merchant webhooks (issue #6): a durable outbox of payment and refund events, delivered
//! signed, retried on a schedule, in order per merchant.
//!
//! - A merchant registers a URL (`PUT /v1/webhook_endpoint`) and gets a signing secret
//!   (`whsec_…`, shown once, sealed under `master_key`).
//! - Every payment and refund state a merchant with a URL sees (the state an answer reports,
//!   and every later change: status sync, review, refund settlement) becomes an event
//!   **written in the same durable unit as the change**: the event record
//!   (`"ev" + merchant + event id`) and a pending marker (expiring aux key
//!   `"x" "wq" + merchant + event id`). A crash can lose neither without the change, nor
//!   invent one without it.
//! - One dispatcher task scans the pending markers in key order (event ids grow with time),
//!   takes each merchant's oldest pending event and POSTs it with
//!   `Rongpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` and
//!   `Rongpay-Event-Id`. A 2xx marks it delivered (and expires its marker) in one write;
//!   anything else schedules the next try after `webhook_retry_ms[attempt]` (default
//!   Alipay-like: 4 m, 10 m, 10 m, 1 h, 2 h, 6 h, 15 h: 8 tries over about 25 h), and that
//!   merchant's later events wait behind it, so a receiver that was down gets every event
//!   later, in order. After the last try the event is `failed` (resend it by hand) and the
//!   queue moves on.
//! - Delivery is at least once: a crash between the receiver's 2xx and our write sends the
//!   event again; receivers deduplicate by event id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Arc;

use crate::records::{self, time_text};

use crate::platform::{now_ns, Platform};
use crate::{Error, Result};

/// Events whose markers one dispatcher pass looks at.
pub const SCAN_MAX: usize = 100_000;

/// Deliveries in flight at once (one per merchant at most).
pub const DELIVERIES_MAX: usize = 64;

/// Longest URL accepted.
pub const URL_LEN_MAX: usize = 2_048;

/// How long a pending marker is kept (longer than any retry schedule).
const MARKER_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most events one list answers.
pub const LIST_MAX: usize = 100;

pub use storage::records::{Endpoint, Event, EventStatus};

fn marker(merchant: u128, id: u128, live: bool) -> (Vec<u8>, Vec<u8>) {
    let expires = if live {
        now_ns().saturating_add(MARKER_KEEP.as_nanos() as u64)
    } else {
        // Already expired: the scan skips it and compaction drops it.
        1
    };
    (
        records::webhook_pending_key(merchant, id),
        storage::schema::expiring_value(expires, &[]),
    )
}

pub fn event_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("evt_", id)
}

pub fn parse_event_id(text: &str) -> Option<u128> {
    records::parse_id(text, "evt_")
}

/// Event ids: nanoseconds, strictly increasing within the process (so a payment's events
/// sort in the order they happened), then random bits.
pub fn next_id(last: &AtomicU64) -> u128 {
    let now = now_ns();
    let mut prev = last.load(Ordering::SeqCst);
    loop {
        let next = now.max(prev + 1);
        match last.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return (u128::from(next) << 64) | u128::from(rand::random::<u64>()),
            Err(seen) => prev = seen,
        }
    }
}

/// The outbox records of one event (`kind` about `object_id`, `data` its JSON as of now)
/// for `merchant`, to be written with the change; none when the merchant has no endpoint.
pub fn event_records(
    state: &Platform,
    merchant: u128,
    kind: &str,
    object_id: &str,
    data: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    if !state.webhook_endpoints.contains_key(&merchant) {
        return Vec::new();
    }
    let id = next_id(&state.last_event_ns);
    let created_at_ns = now_ns();
    let mut payload = format!(
        r#"{{"id":"{}","type":"{kind}","created_at":"{}","data":"#,
        event_id_text(id),
        time_text(created_at_ns)
    )
    .into_bytes();
    payload.extend_from_slice(data);
    payload.push(b'}');
    let event = Event {
        id,
        merchant,
        kind: kind.to_string(),
        object_id: object_id.to_string(),
        payload,
        created_at_ns,
        status: EventStatus::Pending,
        attempts: 0,
        next_at_ns: 0,
        last_error: None,
        delivered_at_ns: None,
    };
    // Early, but cheap: the dispatcher also looks every `webhook_poll_ms`.
    state.webhook_wake.notify_one();
    vec![
        (
            records::webhook_event_key(merchant, id),
            records::encode(&event),
        ),
        marker(merchant, id, true),
    ]
}

/// The `Rongpay-Signature` of a delivery: `t=…,v1=<hex HMAC-SHA256 of "t.body">`.
pub use crate::signature::sign;

fn secret_context(merchant: u128) -> Vec<u8> {
    [b"webhook".as_slice(), &merchant.to_be_bytes()].concat()
}

/// Loads every endpoint into memory (at start). Merchants are few; one entry each.
pub fn load(state: &Platform, store: &storage::Store) -> Result<usize, String> {
    let mut n = 0;
    store
        .for_each_aux_with_prefix(
            records::prefix::WEBHOOK_ENDPOINT,
            10_000_000,
            |key, value| {
                let Some(id) = records::id_after(key, records::prefix::WEBHOOK_ENDPOINT) else {
                    return Ok(());
                };
                if let Ok(e) = storage::codec::decode::<Endpoint>(storage::codec::Kind::Aux, value)
                {
                    state.webhook_endpoints.insert(id, e);
                    n += 1;
                }
                Ok(())
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(n)
}

/// The dispatcher: runs for the life of the process.
pub fn spawn_dispatcher(state: Arc<Platform>) {
    actix_rt::spawn(async move {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(DELIVERIES_MAX));
        loop {
            let wait = state.settings.webhook_poll;
            let _ = tokio::time::timeout(wait, state.webhook_wake.notified()).await;
            if state.store.get().is_none() || state.ledger.get().is_none() {
                continue;
            }
            let heads = match pending_heads(&state) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(%e, "webhook dispatcher cannot scan the outbox");
                    continue;
                }
            };
            for (merchant, id) in heads {
                // One delivery per merchant at a time: its order is its queue's.
                if state.webhook_busy.insert(merchant, ()).is_some() {
                    continue;
                }
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    state.webhook_busy.remove(&merchant);
                    break;
                };
                let state = state.clone();
                actix_rt::spawn(async move {
                    drain(&state, merchant, id).await;
                    state.webhook_busy.remove(&merchant);
                    drop(permit);
                });
            }
        }
    });
}

/// Each merchant's oldest live pending marker: (merchant, event id).
fn pending_heads(state: &Platform) -> Result<Vec<(u128, u128)>> {
    let store = state.store()?;
    let prefix = records::prefix::WEBHOOK_PENDING;
    let now = now_ns();
    let mut heads: Vec<(u128, u128)> = Vec::new();
    store.for_each_aux_with_prefix(prefix, SCAN_MAX, |key, value| {
        let live = storage::schema::split_expiring(value).is_some_and(|(at, _)| at > now);
        let rest = &key[prefix.len()..];
        if let (true, Some(m), Some(id)) = (
            live,
            rest.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()),
            rest.get(16..32).and_then(|b| <[u8; 16]>::try_from(b).ok()),
        ) {
            let m = u128::from_be_bytes(m);
            if heads.last().is_none_or(|(last, _)| *last != m) {
                heads.push((m, u128::from_be_bytes(id)));
            }
        }
        Ok(())
    })?;
    Ok(heads)
}

/// What one look at a merchant's head event did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Delivered, given up, or not pending: the queue moves on.
    Done,
    /// Not due yet, or tried and scheduled again: the queue waits.
    Wait,
}

/// Delivers a merchant's pending events in order, starting at `first`, until one must
/// wait (not due, or failed and scheduled again) or none is left.
async fn drain(state: &Platform, merchant: u128, first: u128) {
    let mut next = Some(first);
    while let Some(id) = next {
        match deliver(state, merchant, id).await {
            Ok(Step::Done) => {}
            Ok(Step::Wait) => return,
            Err(e) => {
                tracing::warn!(event = %event_id_text(id), %e, "webhook delivery not recorded");
                return;
            }
        }
        next = match next_pending(state, merchant, id) {
            Ok(n) => n,
            Err(_) => return,
        };
    }
}

/// The merchant's first live pending marker after event `after`.
fn next_pending(state: &Platform, merchant: u128, after: u128) -> Result<Option<u128>> {
    let store = state.store()?;
    let prefix = records::webhook_pending_prefix(merchant);
    let from = [marker(merchant, after, false).0.as_slice(), &[0]].concat();
    let now = now_ns();
    let mut found = None;
    store.for_each_aux_with_prefix_from(&prefix, &from, SCAN_MAX, |key, value| {
        if found.is_none() && storage::schema::split_expiring(value).is_some_and(|(at, _)| at > now)
        {
            found = key
                .get(prefix.len()..prefix.len() + 16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(u128::from_be_bytes);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Tries one event now if it is due; records the outcome durably.
async fn deliver(state: &Platform, merchant: u128, id: u128) -> Result<Step> {
    let store = state.store()?;
    let key = records::webhook_event_key(merchant, id);
    let Some(mut event) = records::read::<Event>(store, &key)? else {
        // A marker without its event cannot be delivered: retire it.
        state
            .ledger()?
            .write_records(vec![marker(merchant, id, false)])
            .await?;
        return Ok(Step::Done);
    };
    if event.status != EventStatus::Pending {
        state
            .ledger()?
            .write_records(vec![marker(merchant, id, false)])
            .await?;
        return Ok(Step::Done);
    }
    let now = now_ns();
    if event.next_at_ns > now {
        return Ok(Step::Wait);
    }
    let endpoint = state.webhook_endpoints.get(&merchant).map(|e| e.clone());
    let outcome = match endpoint {
        None => Err("no webhook endpoint".to_string()),
        Some(e) => post(state, merchant, &e, &event).await,
    };
    event.attempts += 1;
    let schedule = &state.settings.webhook_retry;
    let mut records = Vec::new();
    let step = match &outcome {
        Ok(()) => Step::Done,
        Err(_) if (event.attempts as usize) <= schedule.len() => Step::Wait,
        Err(_) => Step::Done,
    };
    match outcome {
        Ok(()) => {
            event.status = EventStatus::Delivered;
            event.delivered_at_ns = Some(now_ns());
            event.last_error = None;
            records.push(marker(merchant, id, false));
            metrics::counter!(crate::metrics::WEBHOOKS, "outcome" => "delivered").increment(1);
        }
        Err(why) => {
            event.last_error = Some(why);
            match schedule.get(event.attempts as usize - 1) {
                Some(delay) => {
                    event.next_at_ns = now_ns().saturating_add(delay.as_nanos() as u64);
                    metrics::counter!(crate::metrics::WEBHOOKS, "outcome" => "retry").increment(1);
                }
                None => {
                    event.status = EventStatus::Failed;
                    records.push(marker(merchant, id, false));
                    metrics::counter!(crate::metrics::WEBHOOKS, "outcome" => "failed").increment(1);
                }
            }
        }
    }
    // A payment's events are found with its other lines (by payment_id).
    let payment_id = event
        .object_id
        .starts_with("pay_")
        .then_some(event.object_id.as_str());
    tracing::info!(
        event = %event_id_text(id),
        kind = %event.kind,
        payment_id,
        object_id = %event.object_id,
        attempt = event.attempts,
        status = ?event.status,
        error = event.last_error.as_deref(),
        "webhook delivery"
    );
    records.push((key, records::encode(&event)));
    state.ledger()?.write_records(records).await?;
    Ok(step)
}

async fn post(
    state: &Platform,
    merchant: u128,
    endpoint: &Endpoint,
    event: &Event,
) -> Result<(), String> {
    let secret = crate::secret::Secret::new(
        state
            .master
            .open(&endpoint.sealed_secret, &secret_context(merchant))
            .map_err(|_| "the webhook secret does not open with master_key".to_string())?,
    );
    let t = now_ns() / 1_000_000_000;
    let sent = state
        .http
        .post(&endpoint.url)
        .timeout(state.settings.webhook_timeout)
        .header("Content-Type", "application/json")
        .header(
            "Rongpay-Signature",
            sign(secret.expose(), t, &event.payload),
        )
        .header("Rongpay-Event-Id", event_id_text(event.id))
        .body(event.payload.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("the endpoint answered {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err("the endpoint did not answer in time".into()),
        Err(e) if e.is_connect() => Err(match crate::tls::failure(&e) {
            Some(tls) => format!("the endpoint's {tls}"),
            None => "the endpoint refused the connection".into(),
        }),
        Err(_) => Err("the delivery failed".into()),
    }
}

/// What a webhook URL may be, as the API document says it (ECMA-262): `http` or `https`, a
/// host name whose last label starts with a letter or a dotted IPv4 address, an optional
/// port (0–65535), an optional path of visible ASCII. [`url_allowed`] checks exactly this.
pub const URL_PATTERN: &str = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?)(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$";

/// Whether `url` matches [`URL_PATTERN`].
pub fn url_allowed(url: &str) -> bool {
    let rest = match url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        Some(rest) => rest,
        None => return false,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port {
        let canonical = p
            .parse::<u16>()
            .is_ok_and(|n| n.to_string() == p || p.len() <= 4)
            && !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit());
        if !canonical {
            return false;
        }
    }
    let octet = |l: &str| {
        !l.is_empty()
            && l.len() <= 3
            && l.bytes().all(|b| b.is_ascii_digit())
            && (l.len() == 1 || !l.starts_with('0'))
            && l.parse::<u16>().is_ok_and(|n| n <= 255)
    };
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() == 4 && labels.iter().all(|l| octet(l)) {
        return true;
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(|l| label(l))
        && labels
            .last()
            .is_some_and(|l| l.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()))
}

/// A new signing secret for the merchant's endpoint at `url` (checked), in force at once
/// (the previous secret stops). Returns the endpoint and its secret (shown once).
pub async fn set_endpoint(
    platform: &Platform,
    merchant: u128,
    url: String,
) -> Result<(Endpoint, String)> {
    let invalid_url =
        |message: String| Error::invalid("invalid_parameter", message).with_param("url");
    crate::pan::refuse(&url, "url")?;
    if url.len() > URL_LEN_MAX {
        return Err(invalid_url(format!(
            "url is longer than {URL_LEN_MAX} bytes"
        )));
    }
    if !url_allowed(&url) {
        return Err(invalid_url(format!(
            "url {url:?} must be http:// or https://, a host name or IPv4 address, an optional port and path"
        )));
    }
    // Every URL of that shape parses; a parser that disagrees is a fault, not the caller's.
    reqwest::Url::parse(&url)
        .map_err(|e| Error::storage(format!("url {url:?} does not parse: {e}")))?;
    let secret = format!(
        "whsec_{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let endpoint = Endpoint {
        url,
        sealed_secret: platform
            .master
            .seal(secret.as_bytes(), &secret_context(merchant)),
        created_at_ns: now_ns(),
    };
    platform
        .ledger()?
        .write_records(vec![(
            records::webhook_endpoint_key(merchant),
            records::encode(&endpoint),
        )])
        .await?;
    platform
        .webhook_endpoints
        .insert(merchant, endpoint.clone());
    Ok((endpoint, secret))
}

/// The merchant's endpoint.
pub fn endpoint(platform: &Platform, merchant: u128) -> Result<Endpoint> {
    platform
        .webhook_endpoints
        .get(&merchant)
        .map(|e| e.clone())
        .ok_or_else(|| Error::not_found("no webhook endpoint is set"))
}

/// The merchant's events after `after`, oldest first: at most [`LIST_MAX`], and whether
/// more follow.
pub fn events(
    platform: &Platform,
    merchant: u128,
    after: Option<u128>,
) -> Result<(Vec<Event>, bool)> {
    let store = platform.store()?;
    let prefix = records::webhook_events_prefix(merchant);
    // Page: start just after `after` (its key plus one byte sorts right after it).
    let from = match after {
        Some(a) => [records::webhook_event_key(merchant, a).as_slice(), &[0]].concat(),
        None => prefix.clone(),
    };
    let mut data = Vec::new();
    store.for_each_aux_with_prefix_from(&prefix, &from, LIST_MAX + 1, |_, value| {
        if let Ok(e) = storage::codec::decode::<Event>(storage::codec::Kind::Aux, value) {
            data.push(e);
        }
        Ok(())
    })?;
    let has_more = data.len() > LIST_MAX;
    data.truncate(LIST_MAX);
    Ok((data, has_more))
}

/// Queues event `id_text` of the merchant again, whatever its state (e.g. failed after
/// every try, or delivered but lost by the receiver).
pub async fn resend(platform: &Platform, merchant: u128, id_text: &str) -> Result<Event> {
    let not_found = || Error::not_found(format!("no event {id_text:?}"));
    let id = parse_event_id(id_text).ok_or_else(not_found)?;
    let key = records::webhook_event_key(merchant, id);
    let _busy = WaitIdle::new(platform, merchant).await;
    let mut event = records::read::<Event>(platform.store()?, &key)?.ok_or_else(not_found)?;
    event.status = EventStatus::Pending;
    event.attempts = 0;
    event.next_at_ns = 0;
    platform
        .ledger()?
        .write_records(vec![
            (key, records::encode(&event)),
            marker(merchant, id, true),
        ])
        .await?;
    platform.webhook_wake.notify_one();
    Ok(event)
}

/// Holds a merchant's delivery slot (so a resend never races a delivery of the same
/// event's record).
struct WaitIdle<'a> {
    state: &'a Platform,
    merchant: u128,
}

impl<'a> WaitIdle<'a> {
    async fn new(state: &'a Platform, merchant: u128) -> WaitIdle<'a> {
        while state.webhook_busy.insert(merchant, ()).is_some() {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        WaitIdle { state, merchant }
    }
}

impl Drop for WaitIdle<'_> {
    fn drop(&mut self) {
        self.state.webhook_busy.remove(&self.merchant);
    }
}

/// The webhook backlog (pending markers, up to `SCAN_MAX`), for the metrics.
pub fn backlog(state: &Platform) -> usize {
    pending_count(state).unwrap_or(0)
}

fn pending_count(state: &Platform) -> Result<usize> {
    let store = state.store()?;
    let now = now_ns();
    let mut n = 0;
    store.for_each_aux_with_prefix(records::prefix::WEBHOOK_PENDING, SCAN_MAX, |_, value| {
        if storage::schema::split_expiring(value).is_some_and(|(at, _)| at > now) {
            n += 1;
        }
        Ok(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written check and the document's pattern accept the same URLs.
    #[test]
    fn url_check_is_the_documented_pattern() {
        let pattern = regex_lite::Regex::new(URL_PATTERN).unwrap();
        let hosts = [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "localhost",
            "a",
            "a-b.c",
            "-a.b",
            "a-.b",
            "a.b-",
            "a.1b",
            "a.b1",
            "xn--bcher-kva.example",
            "a..b",
            "a.",
            ".a",
            "",
            "ä.com",
            "a_b.com",
            "A.COM",
            "1a.2b",
            "[::1]",
            "a@b",
            "a b",
        ];
        let ports = [
            "", ":", ":0", ":80", ":0080", ":00080", ":9999", ":10000", ":65535", ":65536",
            ":99999", ":+80", ":8a",
        ];
        let paths = [
            "", "/", "/hooks", "/a?b=c#d", "/ä", "/a b", "/%zz", "?x", "#x",
        ];
        let mut n = 0;
        for scheme in ["http://", "https://", "HTTP://", "ftp://", "http:/", ""] {
            for host in hosts {
                for port in ports {
                    for path in paths {
                        let url = format!("{scheme}{host}{port}{path}");
                        assert_eq!(url_allowed(&url), pattern.is_match(&url), "{url:?}");
                        if url_allowed(&url) {
                            reqwest::Url::parse(&url).expect("an allowed URL parses");
                        }
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 10_000);
    }
}
