//! `/v1/cards` (merchant): tokenizes a bank card. The number is Luhn-checked, the expiry must
//! be in the future, the brand comes from the BIN; number and holder are sealed with the
//! vault's key before they are stored, and never appear in answers, errors, logs or `Debug`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Caller};
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::records::{self, Card};
use engine::cards::{brand_of, expired, luhn_valid};

use crate::state::{new_id, now_ns, AppState};

/// A card number in a request: `Debug` never shows it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "4111111111111111", pattern = r"^[0-9]{12,19}$")]
pub struct CardNumber(String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardNumber(****)")
    }
}

/// Tokenizes a card.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCard {
    /// 12–19 digits, Luhn-valid.
    card_number: CardNumber,
    #[schema(minimum = 1, maximum = 12)]
    #[serde(deserialize_with = "services::json_int::int")]
    exp_month: u8,
    #[schema(minimum = 2000, maximum = 2100)]
    #[serde(deserialize_with = "services::json_int::int")]
    exp_year: u16,
    /// The name on the card, 1–64 bytes (sealed like the number).
    #[schema(max_length = 64)]
    holder: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CardView {
    card_token: String,
    /// visa, mastercard, unionpay, amex, jcb, discover, diners or unknown.
    brand: String,
    last4: String,
    exp_month: u8,
    exp_year: u16,
}

pub use services::cards::{card_token_text, parse_card_token};

#[utoipa::path(post, path = "/v1/cards", tag = "cards", request_body = CreateCard,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the card's token; the number is sealed and never shown again", body = CardView),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Tokenizes a bank card for later payments.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let (body, raw): (CreateCard, _) = body::json_sensitive(&req, payload, state.limits).await?;
    let caller = Caller::Merchant(Box::new(merchant.clone()));
    // The idempotency fingerprint of a body holding a card number is keyed, never a plain
    // hash of it.
    let keyed = state.vault.mac(&raw);
    let idem = match idempotency::begin(&req, &state, &caller, &keyed)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let number = body.card_number.0.as_str();
    let invalid = |code: &'static str, message: &str, param: &str| {
        ApiError::invalid(code, message.to_string()).with_param(param.to_string())
    };
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "invalid_card_number",
            "card_number must be 12 to 19 digits",
            "card_number",
        ));
    }
    if !luhn_valid(number) {
        return Err(invalid(
            "invalid_card_number",
            "card_number fails its check digit",
            "card_number",
        ));
    }
    if !(1..=12).contains(&body.exp_month) {
        return Err(invalid(
            "invalid_parameter",
            "exp_month must be 1 to 12",
            "exp_month",
        ));
    }
    if !(2000..=2100).contains(&body.exp_year) {
        return Err(invalid(
            "invalid_parameter",
            "exp_year must be 2000 to 2100",
            "exp_year",
        ));
    }
    let now = now_ns();
    if expired(body.exp_month, body.exp_year, now) {
        return Err(invalid("card_expired", "the card has expired", "exp_year"));
    }
    if body.holder.trim().is_empty() || body.holder.len() > 64 || body.holder.contains('\0') {
        return Err(invalid(
            "invalid_parameter",
            "holder must be 1 to 64 bytes",
            "holder",
        ));
    }
    let token = new_id();
    let token_text = card_token_text(token);
    let mut secret = Vec::with_capacity(number.len() + 1 + body.holder.len());
    secret.extend_from_slice(number.as_bytes());
    secret.push(0);
    secret.extend_from_slice(body.holder.as_bytes());
    let sealed = state.vault.seal(&secret, token_text.as_bytes());
    secret.fill(0);
    let fp = state.vault.mac(number.as_bytes());
    let card = Card {
        token,
        merchant: merchant.id,
        sealed,
        brand: brand_of(number).to_string(),
        bin: number[..6].parse().unwrap_or(0),
        last4: number[number.len() - 4..].to_string(),
        exp_month: body.exp_month,
        exp_year: body.exp_year,
        fingerprint: u64::from_be_bytes(fp[..8].try_into().expect("8 bytes")),
        created_at_ns: now,
    };
    let answer = serde_json::to_vec(&CardView {
        card_token: token_text,
        brand: card.brand.clone(),
        last4: card.last4.clone(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
    })
    .expect("a card view serializes");
    let mut records = vec![(records::card_key(token), records::encode(&card))];
    records.extend(
        idem.as_ref()
            .map(|g| g.record(StatusCode::CREATED, &answer)),
    );
    state.ledger()?.write_records(records).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_never_shows_in_debug() {
        assert_eq!(
            format!("{:?}", CardNumber("4111111111111111".into())),
            "CardNumber(****)"
        );
    }
}
