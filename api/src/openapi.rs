//! The OpenAPI 3 document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorType;
use crate::routes::{accounts, health, merchants, payments, refunds};

/// Every non-2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// Stable machine-readable code, e.g. `invalid_amount`.
    pub code: String,
    pub message: String,
    /// The one field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// On `409 duplicate_out_trade_no`: the first payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the operator's admin token, or a merchant's secret key (sk_…)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "rongpay", description = "Payment transaction engine: the public v1 contract. Amounts are decimal strings in major units at the currency's ISO 4217 scale."),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        health::openapi,
        accounts::create,
        accounts::get,
        accounts::deposit,
        merchants::create,
        payments::create,
        payments::list,
        payments::get,
        refunds::create,
    ),
    components(schemas(ErrorResponse, ErrorDetail, ErrorType, Status)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}
