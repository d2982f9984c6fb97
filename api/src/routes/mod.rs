//! The HTTP routes, one module per resource.

pub mod accounts;
pub mod health;
pub mod merchants;
pub mod payments;
pub mod refunds;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ApiError, ErrorType};

/// 404 for a path no route serves.
pub async fn unknown_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorType::InvalidRequestError,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// 405 for a known path with a method it does not serve.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorType::InvalidRequestError,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}
