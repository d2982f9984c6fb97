//! `/v1/channels` (admin): the banks and third-party channels payments can be routed to,
//! with each channel's live state; and the channels' result notifications. The rules and
//! the state: `services::channels`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use services::channels::ChannelView;
/// The request bodies, defined with the rules that check them.
pub use services::channels::{CreateChannel, UpdateChannel};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    data: Vec<ChannelView>,
}

#[utoipa::path(post, path = "/v1/channels", tag = "channels", request_body = CreateChannel,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "channel created", body = ChannelView),
        (status = 409, description = "a channel with that name exists", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Adds a channel.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateChannel, _) = body::json(
        &req,
        payload,
        state.limits,
        &["fee_fixed", "min_amount", "max_amount", "daily_limit"],
    )
    .await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let actor = crate::audit::actor(&req);
    let mut answer = Vec::new();
    services::channels::add(&state, body, |view| {
        answer = serde_json::to_vec(view).expect("a channel view serializes");
        let mut recs: Vec<_> = idem
            .as_ref()
            .map(|g| g.record(&answer))
            .into_iter()
            .collect();
        recs.push(services::audit::record(
            &state,
            &actor,
            "channel.create",
            &view.id,
            None::<&()>,
            Some(view),
        ));
        recs
    })
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/channels", tag = "channels",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every channel with its live state, by name", body = ChannelList),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Lists the channels.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let data = services::channels::list(&state).await?;
    Ok(HttpResponse::Ok().json(ChannelList { data }))
}

#[utoipa::path(patch, path = "/v1/channels/{id}", tag = "channels", request_body = UpdateChannel,
    params(("id" = String, Path, description = "channel id (chn_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the channel as changed", body = ChannelView),
        (status = 404, description = "unknown channel", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Changes a channel (enable, disable, fees, limits, priority, weight, endpoint).
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateChannel, _) = body::json(
        &req,
        payload,
        state.limits,
        &["fee_fixed", "min_amount", "max_amount", "daily_limit"],
    )
    .await?;
    let view = services::channels::update(&state, &crate::audit::actor(&req), &path, &body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationAccepted {
    /// Whether this notification changed the payment (false: already resolved, or a replay).
    applied: bool,
}

#[utoipa::path(post, path = "/v1/channels/{id}/notifications", tag = "channels",
    request_body = services::channels::wire::Notification,
    params(("id" = String, Path, description = "channel id (chn_…)"),
           ("Channel-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\" under the channel's notify_secret>")),
    responses(
        (status = 200, description = "verified; applied once", body = NotificationAccepted),
        (status = 401, description = "missing, malformed, wrong or stale signature", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown channel or payment", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (channels) A channel's asynchronous result for a charge: verified by its signature
/// (constant-time, timestamp within ±300 s), applied at most once.
pub async fn notification(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (body, raw): (services::channels::wire::Notification, _) =
        body::json(&req, payload, state.limits, &[]).await?;
    let signature = req
        .headers()
        .get("Channel-Signature")
        .and_then(|v| v.to_str().ok());
    let applied = services::channels::notification(&state, &path, signature, &raw, body).await?;
    Ok(HttpResponse::Ok().json(NotificationAccepted { applied }))
}

#[utoipa::path(post, path = "/v1/channels/{id}/payout_notifications", tag = "channels",
    request_body = services::channels::wire::PayoutNotification,
    params(("id" = String, Path, description = "channel id (chn_…)"),
           ("Channel-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\" under the channel's notify_secret>")),
    responses(
        (status = 200, description = "verified; applied once", body = NotificationAccepted),
        (status = 401, description = "missing, malformed, wrong or stale signature", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown channel or settlement", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (channels) The payout channel's asynchronous result for a settlement payout (issue #16):
/// verified by its signature like a charge's, applied at most once (paid: the batch is
/// paid; declined: its money is back in the merchant's available balance).
pub async fn payout_notification(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (body, raw): (services::channels::wire::PayoutNotification, _) =
        body::json(&req, payload, state.limits, &[]).await?;
    let signature = req
        .headers()
        .get("Channel-Signature")
        .and_then(|v| v.to_str().ok());
    let applied =
        services::channels::payout_notification(&state, &path, signature, &raw, body).await?;
    Ok(HttpResponse::Ok().json(NotificationAccepted { applied }))
}
