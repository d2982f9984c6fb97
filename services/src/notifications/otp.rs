//! One-time codes by SMS: six random digits sent to a phone, stored only as an HMAC under a
//! key derived from the master key, expiring after `otp_ttl_s`, and locked after
//! `otp_attempts_max` wrong tries. Every try is durable before it is answered, so a restart
//! does not reset the count, and tries on one code take turns.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{check_phone, mask_phone, send, sms_id_text, Template};
use crate::platform::{new_id, now_ns, Platform};
use crate::records;
use crate::{Error, Result};

/// How long a used or expired code's record is kept after it expires (for support).
const KEEP_AFTER_EXPIRY_NS: u64 = 24 * 3600 * 1_000_000_000;

pub use storage::records::OtpRecord;

fn otp_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("otp_", id)
}

fn code_mac(state: &Platform, id: u128, code: &str) -> [u8; 32] {
    state
        .master
        .mac(&[b"otp".as_slice(), &id.to_be_bytes(), code.as_bytes()].concat())
}

/// `POST /v1/otp`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOtp {
    /// E.164: `+` and 8 to 15 digits.
    #[cfg_attr(feature = "openapi", schema(example = "+8613800138000"))]
    pub phone: String,
    /// What the code confirms (1–32 of `a-z 0-9 _`; default `verify`).
    #[cfg_attr(feature = "openapi", schema(example = "login"))]
    pub purpose: Option<String>,
}

/// `POST /v1/otp/verify`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyOtp {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "otp_0193a1b2c3d4e5f60718293a4b5c6d7e")
    )]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(example = "042917"))]
    pub code: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpView {
    id: String,
    /// The number, masked.
    phone: String,
    purpose: String,
    /// pending, verified, expired or locked.
    status: &'static str,
    expires_at: String,
    attempts_left: u32,
    /// The SMS that carried it (`GET /v1/sms/{id}` shows its delivery).
    sms_id: String,
}

fn status(r: &OtpRecord, now: u64) -> &'static str {
    if r.verified_at_ns.is_some() {
        "verified"
    } else if r.attempts >= r.attempts_max {
        "locked"
    } else if now >= r.expires_at_ns {
        "expired"
    } else {
        "pending"
    }
}

pub fn view(r: &OtpRecord) -> OtpView {
    OtpView {
        id: otp_id_text(r.id),
        phone: mask_phone(&r.phone),
        purpose: r.purpose.clone(),
        status: status(r, now_ns()),
        expires_at: records::time_text(r.expires_at_ns),
        attempts_left: r.attempts_max.saturating_sub(r.attempts),
        sms_id: sms_id_text(r.sms),
    }
}

async fn write(state: &Platform, r: &OtpRecord) -> Result<()> {
    let expires = r.expires_at_ns.saturating_add(KEEP_AFTER_EXPIRY_NS);
    state
        .ledger()?
        .write_records(vec![records::expiring(records::otp_key(r.id), expires, r)])
        .await?;
    Ok(())
}

fn read(state: &Platform, id: u128) -> Result<Option<OtpRecord>> {
    records::read_expiring(state.store()?, &records::otp_key(id))
}

fn outcome(o: &'static str) {
    metrics::counter!(crate::metrics::OTP, "outcome" => o).increment(1);
}

/// Sends a one-time code for `merchant` to `body.phone`. Returns the code's record.
pub async fn create(state: &Platform, merchant: u128, body: CreateOtp) -> Result<OtpRecord> {
    check_phone(&body.phone, "phone")?;
    let purpose = body.purpose.unwrap_or_else(|| "verify".to_string());
    crate::accounts::check_word(&purpose, "purpose")?;
    let id = new_id();
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let ttl_s = state.settings.otp_ttl_s;
    let sms = send(
        state,
        &body.phone,
        &Template::Otp {
            code: code.clone(),
            minutes: ttl_s.div_ceil(60),
        },
    )
    .await?;
    let record = OtpRecord {
        id,
        merchant,
        phone: body.phone,
        purpose,
        code_mac: code_mac(state, id, &code),
        expires_at_ns: now_ns().saturating_add(ttl_s.saturating_mul(1_000_000_000)),
        attempts: 0,
        attempts_max: state.settings.otp_attempts_max,
        verified_at_ns: None,
        sms,
    };
    write(state, &record).await?;
    outcome("issued");
    Ok(record)
}

/// Checks a one-time code of `merchant`'s: verified (once), or refused (wrong, expired,
/// locked, already used). Every try is durable before it is answered.
pub async fn verify(state: &Platform, merchant: u128, body: VerifyOtp) -> Result<OtpRecord> {
    let not_found = || Error::not_found(format!("no code {:?}", body.id)).with_param("id");
    let id = records::parse_id(&body.id, "otp_").ok_or_else(not_found)?;
    // Tries on one code take turns: each is counted durably before the next is judged.
    let claim = state.otp_claims.entry(id).or_default().clone();
    let _turn = claim.lock().await;
    let result = judge(state, merchant, id, &body.code, not_found).await;
    drop(_turn);
    state
        .otp_claims
        .remove_if(&id, |_, c| std::sync::Arc::strong_count(c) <= 2);
    result
}

async fn judge(
    state: &Platform,
    merchant: u128,
    id: u128,
    code: &str,
    not_found: impl Fn() -> Error,
) -> Result<OtpRecord> {
    let mut record = read(state, id)?
        .filter(|r| r.merchant == merchant)
        .ok_or_else(|| {
            outcome("unknown");
            not_found()
        })?;
    let now = now_ns();
    match status(&record, now) {
        "verified" => {
            return Err(Error::conflict(
                "otp_already_verified",
                "this code was already used",
            ))
        }
        "locked" => {
            outcome("locked");
            return Err(Error::conflict(
                "otp_locked",
                "too many wrong tries: ask for a new code",
            ));
        }
        "expired" => {
            outcome("expired");
            return Err(Error::invalid(
                "otp_expired",
                "the code has expired: ask for a new one",
            ));
        }
        _ => {}
    }
    let right: bool = code_mac(state, id, code).ct_eq(&record.code_mac).into();
    if right {
        record.verified_at_ns = Some(now);
        write(state, &record).await?;
        outcome("verified");
        return Ok(record);
    }
    record.attempts += 1;
    write(state, &record).await?;
    outcome("wrong_code");
    let left = record.attempts_max.saturating_sub(record.attempts);
    Err(Error::invalid(
        "otp_incorrect",
        format!("the code is not right; {left} tries left"),
    )
    .with_param("code"))
}
