//! `/v1/sms` (admin) and the SMS gateway's delivery receipts. The SMS platform itself —
//! templates, limits, the gateway, message records — is `services::notifications`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;
use crate::records;
use crate::state::AppState;
pub use services::notifications::{
    check_phone, mask_phone, send, sms_id_text, Receipt, SmsRecord, Template,
};

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
    let record = services::notifications::message(&state, &path)?;
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
        return Err(services::notifications::receipt_signature_error("is missing").into());
    }
    let header = req
        .headers()
        .get("sms-signature")
        .and_then(|v| v.to_str().ok());
    services::notifications::verify_receipt(&state, header, &raw)?;
    let r: Receipt = crate::body::parse(&raw, &[])?;
    let record = services::notifications::apply_receipt(&state, &r).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"id": sms_id_text(record.id), "status": record.status})))
}
