//! The SMS platform: templates (one-time codes, alerts), per-recipient rate limits, a
//! provider interface with one implementation (an HTTP SMS gateway: the `sms-sim` simulator
//! in tests and development, a carrier aggregator's API of the same shape in production),
//! durable message records, and the gateway's delivery receipts.
//!
//! A message's text is never stored nor logged: a one-time code must exist only in the SMS.
//! Records keep the recipient, the template, the gateway's id and the delivery status, for
//! 30 days.
//!
//! - [`wire`]: the SMS gateway protocol (and `sms-sim` plays the gateway).

pub mod otp;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use crate::platform::{new_id, now_ns, Platform};
use crate::ratelimit::Limit;
use crate::records;
use crate::secret::Secret;
use crate::{Error, Result};

/// `+` and 8 to 15 digits (E.164).
pub fn is_e164(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// How long message records are kept.
pub const RECORD_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest text sent: five 70-character segments (the gateway splits; carriers join).
pub const TEXT_MAX_CHARS: usize = 350;
/// How far a receipt's signature time may be from ours.
const RECEIPT_SKEW_S: u64 = 300;

/// What an SMS says. Rendering is pure: the text exists only on its way to the gateway.
#[derive(Clone, Debug)]
pub enum Template {
    /// A one-time code.
    Otp { code: String, minutes: u64 },
    /// An alert from Alertmanager for the on-call.
    Alert {
        status: String,
        name: String,
        severity: String,
        summary: String,
    },
}

impl Template {
    /// The template's name (a metric label and what records keep).
    pub fn name(&self) -> &'static str {
        match self {
            Template::Otp { .. } => "otp",
            Template::Alert { .. } => "alert",
        }
    }

    pub fn render(&self) -> String {
        let text = match self {
            Template::Otp { code, minutes } => format!(
                "[rongpay] Your verification code is {code}. It expires in {minutes} minutes. Never share it with anyone."
            ),
            Template::Alert {
                status,
                name,
                severity,
                summary,
            } => format!(
                "[rongpay {}] {name} ({severity}): {summary}",
                status.to_uppercase()
            ),
        };
        text.chars().take(TEXT_MAX_CHARS).collect()
    }
}

pub use wire::{Accepted, Outgoing, Receipt};

/// Why a provider did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the gateway refused the message: {0}")]
    Refused(String),
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
}

type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, ProviderError>> + 'a>>;

/// Anything that sends SMS.
pub trait Provider: Send + Sync {
    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a>;
}

/// An SMS gateway over HTTP: `POST {url}/v1/messages` with a bearer key, JSON [`Outgoing`],
/// answered `202` [`Accepted`]; receipts come back signed with the same key.
pub struct HttpGateway {
    pub url: String,
    pub key: Secret,
    pub http: reqwest::Client,
    pub timeout: Duration,
}

impl Provider for HttpGateway {
    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let sent = self
                .http
                .post(format!("{}/v1/messages", self.url.trim_end_matches('/')))
                .bearer_auth(self.key.expose())
                .timeout(self.timeout)
                .json(message)
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(crate::tls::describe(e)))?;
            let status = sent.status();
            if status.is_success() {
                sent.json::<Accepted>()
                    .await
                    .map_err(|e| ProviderError::Unavailable(format!("unreadable answer: {e}")))
            } else if status.is_client_error() && status.as_u16() != 429 {
                Err(ProviderError::Refused(format!("HTTP {status}")))
            } else {
                Err(ProviderError::Unavailable(format!("HTTP {status}")))
            }
        })
    }
}

/// The SMS platform of one payd.
pub struct Notifier {
    provider: Option<Arc<dyn Provider>>,
    /// The gateway's key: receipts are signed with it.
    receipt_key: Option<Secret>,
    /// Per recipient: one-time codes, and alerts.
    otp_limit: Limit<String>,
    alert_limit: Limit<String>,
    callback_url: String,
}

impl Notifier {
    pub fn new(settings: &crate::platform::Settings, http: reqwest::Client) -> Notifier {
        let per_hour = |n: u32, burst: u32| {
            std::num::NonZeroU32::new(n).map(|n| {
                Quota::with_period(Duration::from_secs(3600) / n.get())
                    .expect("a positive period")
                    .allow_burst(std::num::NonZeroU32::new(burst.max(1)).expect("positive"))
            })
        };
        let key = settings.sms_gateway_key.clone();
        Notifier {
            provider: match (&settings.sms_gateway_url, &key) {
                (Some(url), Some(key)) => Some(Arc::new(HttpGateway {
                    url: url.clone(),
                    key: key.clone(),
                    http,
                    timeout: settings.sms_timeout,
                })),
                _ => None,
            },
            receipt_key: key,
            otp_limit: Limit::from_quota(
                per_hour(settings.sms_otp_per_hour, settings.sms_otp_burst),
                "phone number",
                "sms_otp",
            ),
            alert_limit: Limit::from_quota(
                per_hour(settings.sms_alert_per_hour, settings.sms_alert_burst),
                "phone number",
                "sms_alert",
            ),
            callback_url: format!("{}/v1/sms/receipts", settings.public_url),
        }
    }

    /// Another provider (tests of the interface; a second gateway for failover later).
    pub fn with_provider(mut self, provider: Arc<dyn Provider>) -> Notifier {
        self.provider = Some(provider);
        self
    }

    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    pub fn sweep(&self) {
        self.otp_limit.sweep();
        self.alert_limit.sweep();
    }
}

pub use storage::records::SmsRecord;

pub fn sms_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("sms_", id)
}

/// `+` and 8 to 15 digits (E.164).
pub fn check_phone(phone: &str, param: &str) -> Result<()> {
    if is_e164(phone) {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_phone",
            "a phone number is + and 8 to 15 digits (E.164), e.g. +8613800138000",
        )
        .with_param(param.to_string()))
    }
}

/// `+86138****8000`: enough to recognise, not enough to use.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.len();
    if n < 8 {
        return "****".to_string();
    }
    format!("{}****{}", &phone[..n - 8], &phone[n - 4..])
}

/// Sends `template` to `to`: rate limit, provider, durable record. Returns the message id.
pub async fn send(state: &Platform, to: &str, template: &Template) -> Result<u128> {
    let notifier = &state.notifier;
    let Some(provider) = &notifier.provider else {
        return Err(Error::Unavailable {
            code: "sms_unavailable",
            message: "no SMS gateway is configured (sms_gateway_url, sms_gateway_key)".into(),
        });
    };
    let limit = match template {
        Template::Otp { .. } => &notifier.otp_limit,
        Template::Alert { .. } => &notifier.alert_limit,
    };
    if let Err(e) = limit.check(&to.to_string()) {
        metrics::counter!(crate::metrics::SMS, "template" => template.name(), "outcome" => "rate_limited")
            .increment(1);
        return Err(e);
    }
    let id = new_id();
    // Recorded before the gateway has it: its receipt can only find the record.
    let mut record = SmsRecord {
        id,
        to: to.to_string(),
        template: template.name().to_string(),
        status: "queued".to_string(),
        gateway_id: None,
        error: None,
        created_at_ns: now_ns(),
        receipt_at_ns: None,
    };
    write(state, &record).await?;
    let message = Outgoing {
        to: to.to_string(),
        text: template.render(),
        reference: sms_id_text(id),
        callback_url: notifier.callback_url.clone(),
    };
    let sent = provider.send(&message).await;
    let outcome = match &sent {
        Ok(accepted) => {
            record.gateway_id = Some(accepted.id.chars().take(64).collect());
            "sent"
        }
        Err(e) => {
            record.status = "failed".to_string();
            record.error = Some(e.to_string());
            "failed"
        }
    };
    metrics::counter!(crate::metrics::SMS, "template" => template.name(), "outcome" => outcome)
        .increment(1);
    tracing::info!(sms = %sms_id_text(id), to = %mask_phone(to), template = template.name(), outcome, "sms");
    // The receipt may have come first (a fast gateway): then it already says more.
    {
        let _serial = state.sms_receipts.lock().await;
        match read(state, id)? {
            Some(now) if now.receipt_at_ns.is_some() => {}
            _ => {
                if record.status == "queued" {
                    record.status = "sent".to_string();
                }
                write(state, &record).await?;
            }
        }
    }
    match sent {
        Ok(_) => Ok(id),
        Err(e) => Err(Error::Unavailable {
            code: "sms_unavailable",
            message: format!("the SMS was not sent: {e}"),
        }),
    }
}

async fn write(state: &Platform, record: &SmsRecord) -> Result<()> {
    let expires = now_ns().saturating_add(RECORD_TTL.as_nanos() as u64);
    state
        .ledger()?
        .write_records(vec![records::expiring(
            records::sms_key(record.id),
            expires,
            record,
        )])
        .await?;
    Ok(())
}

pub fn read(state: &Platform, id: u128) -> Result<Option<SmsRecord>> {
    records::read_expiring(state.store()?, &records::sms_key(id))
}

/// What paging the on-call for one alert did.
#[derive(Debug, Default)]
pub struct Paged {
    pub sent: usize,
    pub rate_limited: usize,
    /// The last failure other than a rate limit (the gateway is down, …).
    pub failed: Option<Error>,
}

/// Sends `alert` to every on-call number (`oncall_phones`), each under its own limit.
pub async fn page_oncall(state: &Platform, alert: &Template) -> Paged {
    let mut paged = Paged::default();
    for phone in &state.settings.oncall_phones {
        match send(state, phone, alert).await {
            Ok(_) => paged.sent += 1,
            Err(Error::RateLimited { .. }) => paged.rate_limited += 1,
            Err(e) => paged.failed = Some(e),
        }
    }
    paged
}

/// The message `id_text` (`sms_…`), while its record is kept.
pub fn message(state: &Platform, id_text: &str) -> Result<SmsRecord> {
    let not_found = || Error::not_found(format!("no SMS {id_text:?}"));
    let id = records::parse_id(id_text, "sms_").ok_or_else(not_found)?;
    read(state, id)?.ok_or_else(not_found)
}

/// Checks a delivery receipt's `Sms-Signature` (`header`) over `body` with the gateway key.
pub fn verify_receipt(state: &Platform, header: Option<&str>, body: &[u8]) -> Result<()> {
    let Some(key) = &state.notifier.receipt_key else {
        return Err(Error::not_found("no SMS gateway is configured"));
    };
    check_receipt_signature(key.expose().as_bytes(), header, body)
}

/// The refusal of a receipt's signature.
pub fn receipt_signature_error(why: &str) -> Error {
    Error::Unauthenticated {
        code: "invalid_signature",
        message: format!("Sms-Signature {why}"),
    }
}

/// Records a verified delivery receipt (once: a repeated receipt changes nothing). Returns
/// the message as it stands.
pub async fn apply_receipt(state: &Platform, r: &Receipt) -> Result<SmsRecord> {
    let not_found = || Error::not_found(format!("no SMS {:?}", r.reference));
    let id = records::parse_id(&r.reference, "sms_").ok_or_else(not_found)?;
    if !matches!(r.status.as_str(), "delivered" | "failed") {
        return Err(
            Error::invalid("invalid_parameter", "status must be delivered or failed")
                .with_param("status"),
        );
    }
    let _serial = state.sms_receipts.lock().await;
    let mut record = read(state, id)?.ok_or_else(not_found)?;
    if record.receipt_at_ns.is_none() {
        record.gateway_id = Some(r.id.chars().take(64).collect());
        record.status = r.status.clone();
        record.error = r.error.as_ref().map(|e| e.chars().take(200).collect());
        record.receipt_at_ns = Some(now_ns());
        write(state, &record).await?;
        metrics::counter!(crate::metrics::SMS_RECEIPTS, "status" => if r.status == "delivered" { "delivered" } else { "failed" })
            .increment(1);
    }
    Ok(record)
}

fn check_receipt_signature(key: &[u8], header: Option<&str>, body: &[u8]) -> Result<()> {
    let bad = receipt_signature_error;
    let header = header.ok_or_else(|| bad("is missing"))?;
    let t: u64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("has no t="))?;
    let now = now_ns() / 1_000_000_000;
    if now.abs_diff(t) > RECEIPT_SKEW_S {
        return Err(bad("is too old or from the future"));
    }
    let expected = crate::signature::sign(key, t, body);
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        header.as_bytes(),
    )) {
        Ok(())
    } else {
        Err(bad("does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+8613800138000"));
        assert!(is_e164("+12345678"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("8613800138000"));
        assert!(!is_e164("+86138001380001234"));
        assert!(!is_e164("+86 13800138000"));
    }

    #[test]
    fn templates_render_within_the_limit_and_name_themselves() {
        let otp = Template::Otp {
            code: "042917".into(),
            minutes: 5,
        };
        assert_eq!(otp.name(), "otp");
        assert!(otp.render().contains("042917"));
        assert!(otp.render().contains("5 minutes"));
        let alert = Template::Alert {
            status: "firing".into(),
            name: "ChannelBreakerOpen".into(),
            severity: "page".into(),
            summary: "x".repeat(1000),
        };
        assert!(alert
            .render()
            .starts_with("[rongpay FIRING] ChannelBreakerOpen (page): xxx"));
        assert_eq!(alert.render().chars().count(), TEXT_MAX_CHARS);
    }

    #[test]
    fn phones_are_e164_and_masked() {
        assert!(check_phone("+8613800138000", "phone").is_ok());
        for bad in [
            "13800138000",
            "+86 138",
            "+1234567",
            "+1234567890123456",
            "+86abc45678",
        ] {
            assert!(check_phone(bad, "phone").is_err(), "{bad}");
        }
        assert_eq!(mask_phone("+8613800138000"), "+86138****8000");
    }
}
