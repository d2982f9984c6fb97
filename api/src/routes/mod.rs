//! The HTTP routes, one module per resource.

pub mod accounts;
pub mod cards;
pub mod channels;
pub mod coupons;
pub mod credit;
pub mod customers;
pub mod floor;
pub mod gl;
pub mod health;
pub mod merchants;
pub mod orders;
pub mod payments;
pub mod positions;
pub mod reconciliation;
pub mod refunds;
pub mod reports;
pub mod settlements;
pub mod transfers;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::{ApiError, ErrorType};

/// The query string as a map, refusing parameters other than `allowed`.
pub fn query_params(
    req: &HttpRequest,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| {
            ApiError::invalid(
                "invalid_parameter",
                format!("the query string does not parse: {e}"),
            )
        })?
        .into_inner();
    if let Some(unknown) = query.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("unknown query parameter {unknown:?}"),
        )
        .with_param(unknown.clone()));
    }
    Ok(query)
}

/// Whether the client asked for CSV (`Accept: text/csv`).
pub fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// A CSV answer, offered for download as `file`.
pub fn csv_response(file: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .body(body)
}

/// 404 for a path no route serves.
pub async fn unknown_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorType::InvalidRequestError,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// 405 for a known path with a method it does not serve, with the `Allow` header RFC 9110
/// requires.
pub fn method_not_allowed(req: &HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorType::InvalidRequestError,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; allowed: {allow}",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}
