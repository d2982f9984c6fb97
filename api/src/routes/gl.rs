//! `/v1/gl/…`: the general ledger (issue #15). The flows: `services::gl`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
pub use services::gl::DatesView;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{auth, body, idempotency};

#[utoipa::path(get, path = "/v1/gl/business_date", tag = "general ledger",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the open business date and the last closed one", body = DatesView),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The business date: set by the first start from the wall clock in `timezone`,
/// moved only by a day-end; `closed_through` is null before the first day-end.
pub async fn business_date(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(services::gl::dates(&state)?))
}

pub use services::gl::{
    GlAccountList, GlAccountView, JournalEntryList, JournalEntryView, JournalLegView,
    TrialBalanceRowView, TrialBalanceView,
};

fn number<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get(name)
        .map(|text| {
            text.parse::<T>()
                .ok()
                .filter(|_| !text.starts_with('-'))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "invalid_parameter",
                        format!("{name} must be a non-negative integer, got {text:?}"),
                    )
                    .with_param(name.to_string())
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/gl/accounts", tag = "general ledger",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every GL account of the chart with its balance, per currency", body = GlAccountList),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Every GL account of the chart (docs/GL.md) with its balance now: the sum of its
/// ledger accounts, signed on its normal side. Read in O(GL accounts).
pub async fn accounts(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    super::query_params(&req, &[])?;
    Ok(HttpResponse::Ok().json(services::gl::accounts(&state)?))
}

#[utoipa::path(get, path = "/v1/gl/trial_balance", tag = "general ledger",
    params(
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "business date YYYY-MM-DD; the open date unless given"),
        ("currency" = Option<String>, Query, pattern = r"^[A-Z]{3}$", description = "ISO 4217 code; the platform's unless given")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the date's trial balance: opening, debit and credit turnover, closing per GL account", body = TrialBalanceView),
        (status = 400, description = "invalid date or currency", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The trial balance of a business date: the running figures of the open date, the
/// final ones of a closed date (identical on every read). O(GL accounts × days since).
pub async fn trial_balance(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let q = super::query_params(&req, &["date", "currency"])?;
    let view = services::gl::trial_balance(
        &state,
        q.get("date").map(String::as_str),
        q.get("currency").map(String::as_str),
    )?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/gl/entries", tag = "general ledger",
    params(
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "only entries of this accounting date"),
        ("gl_code" = Option<String>, Query, pattern = r"^[0-9]{4}$", description = "only entries with a leg on this GL account (a code the chart lacks matches nothing)"),
        ("account_id" = Option<String>, Query, pattern = r"^acct_[0-9a-f]{32}$", description = "only entries with a leg on this ledger account"),
        ("after" = Option<u64>, Query, minimum = 0, description = "start after this journal position (a page's next_after)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 500, description = "entries per page, 1..=500 (50)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the journal, in order, one page", body = JournalEntryList),
        (status = 400, description = "invalid filter", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The journal: every entry with its dates and its legs, each leg with its GL
/// account. A page reads at most 20,000 entries; `has_more` and `next_after` say where to go
/// on.
pub async fn entries(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let q = super::query_params(&req, &["date", "gl_code", "account_id", "after", "limit"])?;
    let list = services::gl::entries(
        &state,
        services::gl::EntryQuery {
            date: q.get("date").map(String::as_str),
            gl_code: q.get("gl_code").map(String::as_str),
            account_id: q.get("account_id").map(String::as_str),
            after: number::<i64>(&q, "after")?.map(|a| a.unsigned_abs()),
            limit: number(&q, "limit")?,
        },
    )?;
    Ok(HttpResponse::Ok().json(list))
}

pub use services::day_end::{DayEndStepView, DayEndView, StartDayEnd};

#[utoipa::path(post, path = "/v1/gl/day_end", tag = "general ledger", request_body = StartDayEnd,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "the open date is closed (the switch is durable); its steps run in the background", body = DayEndView),
        (status = 200, description = "that date's day-end is already done", body = DayEndView),
        crate::openapi::CreateErrors
    ))]
/// (admin) The day-end (日切): closes the open business date `D` at once — every entry
/// written after it is dated `D+1` while payments go on — then runs `D`'s steps (snapshot,
/// trial balance, checks, chained hash) in the background. With `{"date": "D"}` for a
/// closed date: its day-end as it stands (rerun if it failed).
pub async fn day_end(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (StartDayEnd, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin_answering(
        &req,
        &state,
        &caller,
        &raw,
        actix_web::http::StatusCode::ACCEPTED,
    )? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let (running, answer) = services::day_end::start(&state.platform, body, idem.as_ref()).await?;
    let status = if running {
        actix_web::http::StatusCode::ACCEPTED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(idempotency::respond(status, answer))
}

#[utoipa::path(get, path = "/v1/gl/day_end/{date}", tag = "general ledger",
    params(("date" = String, Path, description = "business date YYYY-MM-DD")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the day-end of that date, with each step's outcome", body = DayEndView),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no day-end for that date", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) A day-end: its steps in order with their status and detail (progress while it
/// runs), the accounts and postings in its snapshot, and its chained hash.
pub async fn day_end_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(services::day_end::get(&state, &path)?))
}

pub use services::gl::{CreateEntry, CreateLeg};

#[utoipa::path(post, path = "/v1/gl/entries", tag = "general ledger", request_body = CreateEntry,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "booked in the open period", body = JournalEntryView),
        (status = 404, description = "an unknown account", body = crate::openapi::ErrorResponse),
        (status = 409, description = "period_closed: the date is closed; or an account frozen or closed", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) A manual entry by finance staff (a correction): balanced legs on any accounts,
/// dated in the open period. A closed day is never edited: an entry dated on it is refused
/// (`409 period_closed`), and the correction is an entry today with the closed day as its
/// value date. Audited with its memo.
pub async fn create_entry(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateEntry, _) =
        body::json(&req, payload, state.limits, &["debit", "credit"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer =
        services::gl::create_entry(&state, &crate::audit::actor(&req), body, idem.as_ref()).await?;
    Ok(idempotency::respond(
        actix_web::http::StatusCode::CREATED,
        answer,
    ))
}
