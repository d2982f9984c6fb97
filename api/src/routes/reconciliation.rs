//! `/v1/reconciliation…` (issue #17, admin): channel statements uploaded, the runs that
//! matched them and their mismatches. The flows: `services::recon`.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
pub use services::recon::{
    MatchedView, MismatchList, MismatchView, ResolutionView, ResolveMismatch, RunList, RunView,
    SuspenseView,
};

use crate::auth;
use crate::body::{self, BodyLimits};
use crate::error::{ApiError, ErrorType};
use crate::state::AppState;

/// A statement of 256 MiB arrives over a slow link in minutes, not seconds.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

#[utoipa::path(post, path = "/v1/reconciliation/statements", tag = "reconciliation",
    params(
        ("channel" = String, Query, description = "the channel's name"),
        ("date" = String, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "the statement's business date (closed)"),
        ("format" = String, Query, pattern = "^(alipay|wechat)$", description = "alipay (trade bill CSV) or wechat (trade bill)")
    ),
    request_body(content = String, content_type = "text/csv", description = "the statement file as the channel published it: GBK or UTF-8 (with or without a BOM), CRLF or LF; at most 256 MiB"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the statement matched: the run", body = RunView),
        (status = 200, description = "the same file (same SHA-256) was reconciled before: its run, nothing changed", body = RunView),
        (status = 400, description = "a bad channel, date or format parameter", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such channel", body = crate::openapi::ErrorResponse),
        (status = 409, description = "the date is not closed, the channel is reconciled through a later date with other statements (statement_conflict), or an earlier date comes first (reconciliation_out_of_order)", body = crate::openapi::ErrorResponse),
        (status = 413, description = "larger than 256 MiB", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not text/csv or application/octet-stream", body = crate::openapi::ErrorResponse),
        (status = 422, description = "statement_invalid: the file does not parse, its totals disagree with its rows, or it is of another date; the message names the line. Nothing changed.", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Uploads a channel's statement of a closed date and reconciles it.
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let query = super::query_params(&req, &["channel", "date", "format"])?;
    let required = |name: &str| {
        query.get(name).cloned().ok_or_else(|| {
            ApiError::invalid("invalid_parameter", format!("{name} is required")).with_param(name)
        })
    };
    let (channel, date, format) = (required("channel")?, required("date")?, required("format")?);
    let essence = crate::body::content_type_essence(&req);
    if !matches!(
        essence.as_deref(),
        Some("text/csv" | "application/octet-stream" | "text/plain")
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequestError,
            "unsupported_media_type",
            "content-type must be text/csv or application/octet-stream",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = body::read_body(
        payload,
        BodyLimits {
            limit_bytes: services::recon::STATEMENT_BYTES_MAX,
            timeout: UPLOAD_TIMEOUT,
        },
        declared,
    )
    .await?;
    let ran = services::recon::upload(
        &state.platform,
        &crate::audit::actor(&req),
        &channel,
        &date,
        &format,
        &bytes,
    )
    .await?;
    let status = if ran.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(ran.run))
}

#[utoipa::path(get, path = "/v1/reconciliation/runs", tag = "reconciliation",
    params(
        ("channel" = Option<String>, Query, description = "only this channel's (by name)"),
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "only runs of this statement date")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "runs, newest first (at most 1,000; without their mismatches)", body = RunList),
        (status = 400, description = "invalid date", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Reconciliation runs: one per channel and statement date.
pub async fn runs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let query = super::query_params(&req, &["channel", "date"])?;
    let list = services::recon::list_runs(
        &state,
        query.get("channel").map(String::as_str),
        query.get("date").map(String::as_str),
    )?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/v1/reconciliation/runs/{id}", tag = "reconciliation",
    params(
        ("id" = String, Path, description = "rec_…"),
        ("Accept" = Option<String>, Header, description = "text/csv for the report as CSV (one line per mismatch)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the run: counts, suspense booked, its first 1,000 mismatches (or the CSV report)", body = RunView),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such run", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) One reconciliation run. JSON, or CSV with `Accept: text/csv`.
pub async fn run(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    super::query_params(&req, &[])?;
    if super::wants_csv(&req) {
        let csv = services::recon::run_csv(&state, &path)?;
        return Ok(super::csv_response(
            &format!("reconciliation-{path}.csv"),
            csv,
        ));
    }
    Ok(HttpResponse::Ok().json(services::recon::get_run(&state, &path)?))
}

#[utoipa::path(get, path = "/v1/reconciliation/mismatches", tag = "reconciliation",
    params(
        ("run" = Option<String>, Query, pattern = r"^rec_[0-9a-f]{32}$", description = "only this run's (rec_…)"),
        ("status" = Option<String>, Query, pattern = "^(open|proposed|resolved)$", description = "open, proposed or resolved"),
        ("starting_after" = Option<String>, Query, pattern = r"^rcm_[0-9a-f]{40}$", description = "a mismatch id (rcm_…): the page after it"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "at most this many (default 100)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "mismatches, oldest first", body = MismatchList),
        (status = 400, description = "a bad status, limit or starting_after", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such run", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Reconciliation mismatches, across runs or of one.
pub async fn mismatches(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let query = super::query_params(&req, &["run", "status", "starting_after", "limit"])?;
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1_000).contains(&n) => n,
            _ => {
                return Err(
                    ApiError::invalid("invalid_parameter", "limit must be 1 to 1000")
                        .with_param("limit"),
                )
            }
        },
    };
    let list = services::recon::list_mismatches(
        &state,
        query.get("run").map(String::as_str),
        query.get("status").map(String::as_str),
        query.get("starting_after").map(String::as_str),
        limit,
    )?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/v1/reconciliation/mismatches/{id}/resolve", tag = "reconciliation", request_body = ResolveMismatch,
    params(("id" = String, Path, description = "rcm_…")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the mismatch: `proposed` (a resolution that moves money waits for a second operator's approval) or `resolved` (one that moves nothing)", body = MismatchView),
        (status = 400, description = "an unknown action, or a note that is empty or longer than 500 characters", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not an operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such mismatch", body = crate::openapi::ErrorResponse),
        (status = 409, description = "a resolution is proposed already, or the mismatch is resolved", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not application/json", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Proposes how a mismatch is resolved: `write_off` (to GL 5003) or `reverse` (the
/// difference is gone; the suspense goes back against our position at the channel).
pub async fn resolve(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (ResolveMismatch, _) = body::json(&req, payload, state.limits, &[]).await?;
    let view = services::recon::resolve(&state, &crate::audit::actor(&req), &path, body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/reconciliation/mismatches/{id}/approve", tag = "reconciliation",
    params(("id" = String, Path, description = "rcm_…")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the mismatch, resolved: its correcting entry booked", body = MismatchView),
        (status = 401, description = "not an operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such mismatch", body = crate::openapi::ErrorResponse),
        (status = 409, description = "no resolution is proposed, or the approver is the proposer (approver_is_proposer)", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) A second operator approves a proposed resolution; it is booked at once.
pub async fn approve(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let view = services::recon::approve(&state, &crate::audit::actor(&req), &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/reconciliation/mismatches/{id}/reject", tag = "reconciliation",
    params(("id" = String, Path, description = "rcm_…")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the mismatch, open again", body = MismatchView),
        (status = 401, description = "not an operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such mismatch", body = crate::openapi::ErrorResponse),
        (status = 409, description = "no resolution is proposed", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Withdraws a proposed resolution: the mismatch is open again.
pub async fn reject(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let view = services::recon::reject(&state, &crate::audit::actor(&req), &path).await?;
    Ok(HttpResponse::Ok().json(view))
}
