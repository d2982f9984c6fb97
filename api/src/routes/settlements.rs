//! `/v1/settlements…`: merchant settlement batches (issue #16). The flows:
//! `services::settlement`.

use actix_web::{web, HttpRequest, HttpResponse};
pub use services::settlement::{ItemView, PayoutView, SettlementList, SettlementView};

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/settlements", tag = "settlements",
    params(
        ("merchant_id" = Option<String>, Query, pattern = r"^mch_[0-9a-f]{32}$", description = "one merchant's batches (a merchant always gets its own)"),
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "the business date whose day-end made them")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "settlement batches, oldest first (at most 1,000; has_more says if more exist)", body = SettlementList),
        (status = 400, description = "invalid date or merchant id", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 403, description = "a merchant asking for another merchant's settlements", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// Settlement batches: one per merchant and business date whose day-end matured, netted or
/// paid out anything. The operator sees all; a merchant its own.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let query = super::query_params(&req, &["merchant_id", "date"])?;
    if let (services::Caller::Merchant(m), Some(asked)) = (&caller, query.get("merchant_id")) {
        if services::merchants::parse_merchant_id(asked) != Some(m.id) {
            return Err(
                ApiError::forbidden("a merchant sees only its own settlements")
                    .with_param("merchant_id"),
            );
        }
    }
    let list = services::settlement::list(
        &state,
        &caller,
        query.get("merchant_id").map(String::as_str),
        query.get("date").map(String::as_str),
    )?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements",
    params(
        ("id" = String, Path, pattern = r"^stl_[0-9a-f]{40}$"),
        ("Accept" = Option<String>, Header, description = "text/csv for the batch's statement as CSV")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the batch with its items (the matured dates); with Accept: text/csv its statement", body = SettlementView),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "no such batch (or another merchant's)", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// One settlement batch with its items; its statement as CSV with `Accept: text/csv`.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    if super::wants_csv(&req) {
        let body = services::settlement::statement_csv(&state, &caller, &path)?;
        return Ok(super::csv_response(&format!("{}.csv", path.as_str()), body));
    }
    Ok(HttpResponse::Ok().json(services::settlement::get(&state, &caller, &path)?))
}
