//! The SMS platform: templates (one-time codes, alerts), per-recipient rate limits, a
//! provider interface with one implementation (an HTTP SMS gateway: the `sms-sim` simulator
//! in tests and development, a carrier aggregator's API of the same shape in production),
//! durable message records, and the gateway's delivery receipts.
//!
//! A message's text is never stored nor logged: a one-time code must exist only in the SMS.
//! Records keep the recipient, the template, the gateway's id and the delivery status, for
//! 30 days.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use governor::Quota;
use serde::Serialize;

use crate::error::{ApiError, ErrorType};
use crate::ratelimit::Limit;
use crate::records;
use crate::secret::Secret;
use crate::state::{new_id, now_ns, AppState};

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

pub use services::notifications::wire::{Accepted, Outgoing, Receipt};

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
                .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
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
    pub fn new(config: &crate::config::Config, http: reqwest::Client) -> Notifier {
        let per_hour = |n: u32, burst: u32| {
            std::num::NonZeroU32::new(n).map(|n| {
                Quota::with_period(Duration::from_secs(3600) / n.get())
                    .expect("a positive period")
                    .allow_burst(std::num::NonZeroU32::new(burst.max(1)).expect("positive"))
            })
        };
        let key = config.sms_gateway_key.clone();
        Notifier {
            provider: match (&config.sms_gateway_url, &key) {
                (Some(url), Some(key)) => Some(Arc::new(HttpGateway {
                    url: url.clone(),
                    key: key.clone(),
                    http,
                    timeout: Duration::from_millis(config.sms_timeout_ms),
                })),
                _ => None,
            },
            receipt_key: key,
            otp_limit: Limit::from_quota(
                per_hour(config.sms_otp_per_hour, config.sms_otp_burst),
                "phone number",
                "sms_otp",
            ),
            alert_limit: Limit::from_quota(
                per_hour(config.sms_alert_per_hour, config.sms_alert_burst),
                "phone number",
                "sms_alert",
            ),
            callback_url: format!("{}/v1/sms/receipts", config.public_url()),
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
    format!("sms_{id:032x}")
}

/// `+` and 8 to 15 digits (E.164).
pub fn check_phone(phone: &str, param: &str) -> Result<(), ApiError> {
    if services::notifications::is_e164(phone) {
        Ok(())
    } else {
        Err(ApiError::invalid(
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
pub async fn send(state: &AppState, to: &str, template: &Template) -> Result<u128, ApiError> {
    let notifier = &state.notifier;
    let Some(provider) = &notifier.provider else {
        return Err(ApiError::unavailable(
            "no SMS gateway is configured (sms_gateway_url, sms_gateway_key)",
        )
        .with_code("sms_unavailable"));
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
        Err(e) => Err(ApiError::unavailable(format!("the SMS was not sent: {e}"))
            .with_code("sms_unavailable")),
    }
}

async fn write(state: &AppState, record: &SmsRecord) -> Result<(), ApiError> {
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

fn read(state: &AppState, id: u128) -> Result<Option<SmsRecord>, ApiError> {
    records::read_expiring(state.store()?, &records::sms_key(id))
}

/// A message as the API shows it (the number masked).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SmsView {
    id: String,
    to: String,
    template: String,
    /// sent, delivered or failed.
    status: String,
    error: Option<String>,
    created_at: String,
    receipt_at: Option<String>,
}

fn view(r: &SmsRecord) -> SmsView {
    SmsView {
        id: sms_id_text(r.id),
        to: mask_phone(&r.to),
        template: r.template.clone(),
        status: r.status.clone(),
        error: r.error.clone(),
        created_at: records::time_text(r.created_at_ns),
        receipt_at: r.receipt_at_ns.map(records::time_text),
    }
}

#[utoipa::path(get, path = "/v1/sms/{id}", tag = "operations",
    params(("id" = String, Path, description = "message id (sms_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the message and its delivery status", body = SmsView),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown or expired", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) One SMS and its delivery receipt.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::admin(&req, &state.admin_token)?;
    let not_found = || ApiError::not_found(format!("no SMS {:?}", path.as_str()));
    let id = records::parse_id(&path, "sms_").ok_or_else(not_found)?;
    let record = read(&state, id)?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(view(&record)))
}

#[utoipa::path(post, path = "/v1/sms/receipts", tag = "operations", request_body = Receipt,
    params(("Sms-Signature" = String, Header, description = "t=<unix s>,v1=<hex HMAC-SHA256 of \"t.body\" under the gateway key>")),
    responses(
        (status = 200, description = "recorded (again: receipts are idempotent)"),
        (status = 404, description = "no such message, or no gateway configured", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// The SMS gateway's delivery receipt (signed with the gateway key).
pub async fn receipt(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = crate::body::bytes(&req, payload, state.limits).await?;
    // The header is required whatever the configuration (the document says so): a request
    // without it is refused as unsigned before anything else is looked at.
    if req.headers().get("sms-signature").is_none() {
        return Err(receipt_signature_error("is missing"));
    }
    let Some(key) = &state.notifier.receipt_key else {
        return Err(ApiError::not_found("no SMS gateway is configured"));
    };
    verify_receipt(&req, key.expose().as_bytes(), &raw)?;
    let r: Receipt = crate::body::parse(&raw, &[])?;
    let not_found = || ApiError::not_found(format!("no SMS {:?}", r.reference));
    let id = records::parse_id(&r.reference, "sms_").ok_or_else(not_found)?;
    if !matches!(r.status.as_str(), "delivered" | "failed") {
        return Err(
            ApiError::invalid("invalid_parameter", "status must be delivered or failed")
                .with_param("status"),
        );
    }
    let _serial = state.sms_receipts.lock().await;
    let mut record = read(&state, id)?.ok_or_else(not_found)?;
    if record.receipt_at_ns.is_none() {
        record.gateway_id = Some(r.id.chars().take(64).collect());
        record.status = r.status.clone();
        record.error = r.error.as_ref().map(|e| e.chars().take(200).collect());
        record.receipt_at_ns = Some(now_ns());
        write(&state, &record).await?;
        metrics::counter!(crate::metrics::SMS_RECEIPTS, "status" => if r.status == "delivered" { "delivered" } else { "failed" })
            .increment(1);
    }
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({"id": sms_id_text(id), "status": record.status})),
    )
}

fn receipt_signature_error(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorType::AuthenticationError,
        "invalid_signature",
        format!("Sms-Signature {why}"),
    )
}

fn verify_receipt(req: &HttpRequest, key: &[u8], body: &[u8]) -> Result<(), ApiError> {
    let bad = receipt_signature_error;
    let header = req
        .headers()
        .get("sms-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("is missing"))?;
    let t: u64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("has no t="))?;
    let now = now_ns() / 1_000_000_000;
    if now.abs_diff(t) > RECEIPT_SKEW_S {
        return Err(bad("is too old or from the future"));
    }
    let expected = services::signature::sign(key, t, body);
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
