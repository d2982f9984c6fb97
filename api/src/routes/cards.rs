//! `/v1/cards` (merchant): tokenizes a bank card (the rules and the vault:
//! `services::cards`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use services::cards::CardView;
pub use services::cards::{card_token_text, parse_card_token, CardNumber, CreateCard};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

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
    let caller = auth::caller(&req, &state)?;
    let merchant = auth::merchant_of(&caller)?;
    let (body, raw): (CreateCard, _) = body::json_sensitive(&req, payload, state.limits).await?;
    // The idempotency fingerprint of a body holding a card number is keyed, never a plain
    // hash of it.
    let keyed = services::cards::keyed_fingerprint(&state, &raw);
    let idem = match idempotency::begin(&req, &state, &caller, &keyed)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::cards::create(&state, merchant, body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}
