//! Bank cards: tokenized for later payments. The number is Luhn-checked, the expiry must be
//! in the future, the brand comes from the BIN; number and holder are sealed with the vault's
//! key ([`crate::vault`]) before they are stored, and never appear in answers, errors, logs
//! or `Debug`. Tokens (`tok_…`) stand for them.

use serde::{Deserialize, Serialize};

use crate::idempotency::Guard;
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{self, Card, Merchant};
use crate::{Error, Result};
use engine::cards::{brand_of, expired, luhn_valid};

/// A card number in a request: `Debug` never shows it.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(
    feature = "openapi",
    schema(value_type = String, example = "4111111111111111", pattern = r"^[0-9]{12,19}$")
)]
pub struct CardNumber(pub String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardNumber(****)")
    }
}

/// Tokenizes a card.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCard {
    /// 12–19 digits, Luhn-valid.
    pub card_number: CardNumber,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 12))]
    #[serde(deserialize_with = "crate::json_int::int")]
    pub exp_month: u8,
    #[cfg_attr(feature = "openapi", schema(minimum = 2000, maximum = 2100))]
    #[serde(deserialize_with = "crate::json_int::int")]
    pub exp_year: u16,
    /// The name on the card, 1–64 bytes (sealed like the number).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\u0000]*\S[^\u0000]*$", max_length = 64)
    )]
    pub holder: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CardView {
    pub card_token: String,
    /// visa, mastercard, unionpay, amex, jcb, discover, diners or unknown.
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

pub fn card_token_text(token: u128) -> String {
    engine::ids::prefixed_hex("tok_", token)
}

pub fn parse_card_token(text: &str) -> Option<u128> {
    records::parse_id(text, "tok_")
}

/// The keyed fingerprint of a request body that holds a card number (what its idempotency
/// record compares): never a plain hash of a card number.
pub fn keyed_fingerprint(state: &Platform, body: &[u8]) -> [u8; 32] {
    state.vault.mac(body)
}

/// Tokenizes a card for `merchant`, durably with the idempotency record of its answer.
/// Returns the answer: the card's view as JSON.
pub async fn create(
    state: &Platform,
    merchant: &Merchant,
    body: CreateCard,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let number = body.card_number.0.as_str();
    let invalid = |code: &'static str, message: &str, param: &str| {
        Error::invalid(code, message.to_string()).with_param(param.to_string())
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
    if body.holder.trim().is_empty()
        || body.holder.chars().count() > 64
        || body.holder.contains('\0')
    {
        return Err(invalid(
            "invalid_parameter",
            "holder must be 1 to 64 characters, not blank",
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
    records.extend(idem.map(|g| g.record(&answer)));
    state.ledger()?.write_records(records).await?;
    Ok(answer)
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
