//! `/v1/reports/…`: daily reports (issue #15). The flows: `services::reports`.

use actix_web::{web, HttpRequest, HttpResponse};
pub use services::reports::{DailyReport, Line};
use services::Caller;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/reports/daily", tag = "reports",
    params(
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "business date YYYY-MM-DD; the open date unless given"),
        ("merchant_id" = Option<String>, Query, pattern = r"^mch_[0-9a-f]{32}$", description = "(admin) one merchant's report; the platform's unless given. A merchant always gets its own"),
        ("Accept" = Option<String>, Header, description = "text/csv for CSV")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the date's report: payments by status, method and channel, fees, refunds, net, success rate (final once the date's day-end froze it)", body = DailyReport),
        (status = 400, description = "invalid date or merchant id", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 403, description = "a merchant asking for another merchant's report", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// The daily report of a business date, for the platform (admin) or one merchant (admin with
/// `merchant_id`, or the merchant itself). JSON, or CSV with `Accept: text/csv`.
pub async fn daily(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let query = super::query_params(&req, &["date", "merchant_id"])?;
    let asked = match query.get("merchant_id") {
        None => None,
        Some(text) => Some(services::merchants::parse_merchant_id(text).ok_or_else(|| {
            ApiError::invalid("invalid_parameter", format!("no merchant id {text:?}"))
                .with_param("merchant_id")
        })?),
    };
    let merchant = match &caller {
        Caller::Admin => asked,
        Caller::Merchant(m) => match asked {
            Some(other) if other != m.id => {
                return Err(ApiError::forbidden("a merchant sees only its own report")
                    .with_param("merchant_id"))
            }
            _ => Some(m.id),
        },
    };
    let report = services::reports::daily(&state, query.get("date").map(String::as_str), merchant)?;
    if super::wants_csv(&req) {
        return Ok(super::csv_response(
            &format!("report-{}.csv", report.date),
            services::reports::csv(&report),
        ));
    }
    Ok(HttpResponse::Ok().json(report))
}
