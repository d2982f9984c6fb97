//! `/v1/gl/…`: the general ledger (issue #15). The flows: `services::gl`.

use actix_web::{web, HttpRequest, HttpResponse};
pub use services::gl::DatesView;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

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
