//! `/v1/merchants` (admin): a merchant, its secret key (shown once), its balance account,
//! its settings and credentials. The flows: `services::merchants`.

use actix_web::{web, HttpRequest, HttpResponse};
pub use services::merchants::{
    merchant_id_text, parse_merchant_id, CreateMerchant, OnboardingView, RejectMerchant, Rotate,
    UpdateMerchant, OVERLAP_S_MAX,
};
use services::merchants::{AgreementList, Credential, MerchantCreated, MerchantView, Rotated};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", request_body = CreateMerchant, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "merchant created; secret_key shown once", body = MerchantCreated),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateMerchant, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let created: MerchantCreated =
        services::merchants::create(&state, &crate::audit::actor(&req), body, idem.as_ref())
            .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant, with its credentials' dates (never the credentials)", body = MerchantView),
        crate::openapi::ReadErrors
    ))]
/// (admin) A merchant, its settings and its credentials' dates.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let m: MerchantView = services::merchants::get(&state, &path).await?;
    Ok(HttpResponse::Ok().json(m))
}

#[utoipa::path(patch, path = "/v1/merchants/{id}", tag = "merchants", request_body = UpdateMerchant,
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant as changed", body = MerchantView),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Changes a merchant's settings (whether its requests must be signed).
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateMerchant, _) = body::json(&req, payload, state.limits, &[]).await?;
    let after =
        services::merchants::update(&state, &crate::audit::actor(&req), &path, body).await?;
    Ok(HttpResponse::Ok().json(after))
}

#[utoipa::path(post, path = "/v1/merchants/{id}/activate", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant, active: it takes payments from now on", body = MerchantView),
        (status = 401, description = "not an operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        (status = 409, description = "merchant_not_pending_review: it was not onboarded through review, or was decided already", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Activates a merchant onboarded through review (audited `merchant.activate`).
pub async fn activate(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let after =
        services::merchants::decide(&state, &crate::audit::actor(&req), &path, None).await?;
    Ok(HttpResponse::Ok().json(after))
}

#[utoipa::path(get, path = "/v1/merchants/{id}/agreements", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every version of the merchant's agreement (fees, settlement cycle, payment methods), oldest first", body = AgreementList),
        crate::openapi::ReadErrors
    ))]
/// (admin) The versions of a merchant's agreement; each payment records the one it was
/// taken under (`agreement_version`).
pub async fn agreements(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let list: AgreementList = services::merchants::agreements(&state, &path)?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/v1/merchants/{id}/reject", tag = "merchants", request_body = RejectMerchant,
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant, rejected: it never takes payments", body = MerchantView),
        (status = 400, description = "a reason that is empty or longer than 500 characters", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not an operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        (status = 409, description = "merchant_not_pending_review", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not application/json", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Rejects a merchant onboarded through review (audited `merchant.reject`).
pub async fn reject(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (RejectMerchant, _) = body::json(&req, payload, state.limits, &[]).await?;
    let after = services::merchants::decide(
        &state,
        &crate::audit::actor(&req),
        &path,
        Some(&body.reason),
    )
    .await?;
    Ok(HttpResponse::Ok().json(after))
}

async fn rotate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
    kind: Credential,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (Rotate, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let rotated: Rotated = services::merchants::rotate(
        &state,
        &crate::audit::actor(&req),
        &path,
        body,
        kind,
        idem.as_ref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(rotated))
}

#[utoipa::path(post, path = "/v1/merchants/{id}/secret_keys", tag = "merchants", request_body = Rotate,
    params(("id" = String, Path, description = "merchant id (mch_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a new secret key (shown once); the others expire after the overlap", body = Rotated),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Rotates a merchant's secret key: a new one now, the ones in use until the
/// overlap ends (`overlap_seconds: 0` revokes them at once).
pub async fn rotate_secret_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    rotate(req, payload, state, path, Credential::SecretKey).await
}

#[utoipa::path(post, path = "/v1/merchants/{id}/signing_secrets", tag = "merchants", request_body = Rotate,
    params(("id" = String, Path, description = "merchant id (mch_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a new signing secret (shown once); the others expire after the overlap", body = Rotated),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Creates or rotates a merchant's signing secret (sealed at rest under
/// `master_key`); the ones in use keep working until the overlap ends.
pub async fn rotate_signing_secret(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    rotate(req, payload, state, path, Credential::SigningSecret).await
}

/// The merchant `path` names, as `caller` may act on it: the operator on any, a merchant on
/// itself only (others are not found).
fn staff_merchant(
    state: &AppState,
    caller: &services::Caller,
    id_text: &str,
) -> Result<services::records::Merchant, ApiError> {
    let m = services::merchants::load(state, id_text)?;
    if !caller.may_see(m.id) {
        return Err(ApiError::not_found(format!("no merchant {id_text:?}")));
    }
    Ok(m)
}

#[utoipa::path(post, path = "/v1/merchants/{id}/staff", tag = "merchants",
    request_body = services::console::CreateStaff,
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the staff member: signs in to the merchant console (/console) with this phone and a one-time code", body = services::console::StaffView),
        (status = 404, description = "no such merchant, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "duplicate_staff_phone, or too_many_staff (200)", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin, the merchant itself) Adds a staff member to the merchant console.
pub async fn add_staff(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let m = staff_merchant(&state, &caller, &path)?;
    let (body, _): (services::console::CreateStaff, _) =
        body::json(&req, payload, state.limits, &[]).await?;
    let v = services::console::add_staff(&state, &staff_actor(&req, &caller), &m, body).await?;
    Ok(HttpResponse::Created().json(v))
}

fn staff_actor(req: &HttpRequest, caller: &services::Caller) -> services::audit::Actor {
    match caller {
        services::Caller::Admin => crate::audit::actor(req),
        services::Caller::Merchant(m) => services::audit::Actor {
            name: format!("merchant:{}", services::merchants::merchant_id_text(m.id)),
            source_ip: req.peer_addr().map(|a| a.ip().to_string()),
        },
    }
}

#[utoipa::path(get, path = "/v1/merchants/{id}/staff", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant's staff, oldest first (phones masked)", body = services::console::StaffList),
        crate::openapi::ReadErrors
    ))]
/// (admin, the merchant itself) The merchant's console staff.
pub async fn list_staff(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let m = staff_merchant(&state, &caller, &path)?;
    Ok(HttpResponse::Ok().json(services::console::list_staff(&state, m.id)?))
}

#[utoipa::path(patch, path = "/v1/merchants/{id}/staff/{staff_id}", tag = "merchants",
    request_body = services::console::UpdateStaff,
    params(("id" = String, Path, description = "merchant id (mch_…)"),
           ("staff_id" = String, Path, description = "staff id (stf_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the staff member as changed", body = services::console::StaffView),
        (status = 404, description = "no such merchant or staff member", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin, the merchant itself) Changes a staff member's role, or disables them.
pub async fn update_staff(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let (merchant, staff) = path.into_inner();
    let m = staff_merchant(&state, &caller, &merchant)?;
    let (body, _): (services::console::UpdateStaff, _) =
        body::json(&req, payload, state.limits, &[]).await?;
    let v =
        services::console::update_staff(&state, &staff_actor(&req, &caller), m.id, &staff, body)
            .await?;
    Ok(HttpResponse::Ok().json(v))
}
