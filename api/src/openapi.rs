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

/// The errors every creating POST may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description of responses, never built
pub enum CreateErrors {
    /// invalid request (malformed JSON, missing or invalid field, bad amount or currency)
    #[response(status = 400)]
    BadRequest(ErrorResponse),
    /// missing or wrong credentials
    #[response(status = 401)]
    Unauthorized(ErrorResponse),
    /// the body did not arrive in time
    #[response(status = 408)]
    BodyTimeout(ErrorResponse),
    /// conflict: idempotency key in use, duplicate out_trade_no, or the resource's state
    #[response(status = 409)]
    Conflict(ErrorResponse),
    /// the body is larger than the limit
    #[response(status = 413)]
    TooLarge(ErrorResponse),
    /// the body is not JSON
    #[response(status = 415)]
    NotJson(ErrorResponse),
    /// the idempotency key was used with another request
    #[response(status = 422)]
    KeyReused(ErrorResponse),
    /// not ready, overloaded, or the store is unavailable
    #[response(status = 503)]
    Unavailable(ErrorResponse),
}

/// What a checkout page's route answers: HTML pages for people (the refusals are shown on
/// the page, with the refusal's status).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description of responses, never built
pub enum PageAnswers {
    /// the page
    #[response(status = 200, content_type = "text/html")]
    Page(String),
    /// done: back to the page (`Location: /checkout/{id}`), with the session's cookie
    #[response(status = 303)]
    SeeOther,
    /// the form is not right (a phone number, a card, a missing field): the page says which
    #[response(status = 400, content_type = "text/html")]
    BadRequest(String),
    /// the payment was made and failed (declined, not enough money): the page says why
    #[response(status = 402, content_type = "text/html")]
    PaymentFailed(String),
    /// the form's token is not this page's, or the post came from another site, or the
    /// sign-in ended
    #[response(status = 403, content_type = "text/html")]
    Forbidden(String),
    /// no such order
    #[response(status = 404, content_type = "text/html")]
    NotFound(String),
    /// the form did not arrive in time
    #[response(status = 408, content_type = "text/html")]
    Timeout(String),
    /// the order is paid, closed or expired, or a code was used or locked
    #[response(status = 409, content_type = "text/html")]
    Conflict(String),
    /// the form is larger than 8 KiB
    #[response(status = 413, content_type = "text/html")]
    TooLarge(String),
    /// not a form (application/x-www-form-urlencoded)
    #[response(status = 415, content_type = "text/html")]
    NotAForm(String),
    /// too many codes for this phone
    #[response(status = 429, content_type = "text/html")]
    TooMany(String),
    /// not ready, or a service the step needs (SMS) is unavailable
    #[response(status = 503, content_type = "text/html")]
    Unavailable(String),
}

/// The errors a read may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description of responses, never built
pub enum ReadErrors {
    /// missing or wrong credentials
    #[response(status = 401)]
    Unauthorized(ErrorResponse),
    /// unknown, or not yours
    #[response(status = 404)]
    NotFound(ErrorResponse),
    /// not ready, or the store is unavailable
    #[response(status = 503)]
    Unavailable(ErrorResponse),
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

/// Every `currency` field of the document lists the currencies payd takes (the active ISO
/// 4217 codes with minor units, as `engine::Currency::from_code` accepts them): a pattern
/// alone also allows codes that do not exist.
struct Currencies;

impl Modify for Currencies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let mut codes = Vec::new();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![a, b, c]).expect("ASCII");
                    if engine::Currency::from_code(&code).is_ok() {
                        codes.push(serde_json::Value::String(code));
                    }
                }
            }
        }
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(currency))) = object.properties.get_mut("currency")
            {
                if currency.pattern.as_deref() == Some("^[A-Z]{3}$") {
                    currency.enum_values = Some(codes.clone());
                }
            }
        }
        // And every `currency` query parameter.
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
            ] {
                let Some(params) = op.as_mut().and_then(|o| o.parameters.as_mut()) else {
                    continue;
                };
                for p in params.iter_mut() {
                    let RefOr::T(p) = p else { continue };
                    if p.name != "currency" {
                        continue;
                    }
                    if let Some(RefOr::T(Schema::Object(currency))) = p.schema.as_mut() {
                        if currency.pattern.as_deref() == Some("^[A-Z]{3}$") {
                            currency.enum_values = Some(codes.clone());
                        }
                    }
                }
            }
        }
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
        accounts::update,
        accounts::deposit,
        crate::routes::transfers::batch,
        merchants::create,
        merchants::get,
        merchants::update,
        merchants::activate,
        merchants::reject,
        merchants::agreements,
        merchants::rotate_secret_key,
        merchants::rotate_signing_secret,
        crate::routes::customers::create,
        crate::routes::customers::list,
        crate::routes::customers::get,
        crate::routes::customers::start_phone,
        crate::routes::customers::check_phone,
        crate::routes::customers::verify_identity,
        crate::routes::coupons::create_stock,
        crate::routes::coupons::list_stocks,
        crate::routes::coupons::get_stock,
        crate::routes::coupons::update_stock,
        crate::routes::coupons::issue,
        crate::routes::coupons::get_coupon,
        crate::routes::coupons::of_customer,
        crate::routes::credit::create,
        crate::routes::credit::get,
        crate::routes::credit::bills,
        crate::routes::credit::repay,
        crate::routes::cards::create,
        crate::routes::channels::create,
        crate::routes::channels::list,
        crate::routes::channels::update,
        crate::routes::channels::notification,
        crate::routes::channels::payout_notification,
        crate::routes::gl::business_date,
        crate::routes::gl::accounts,
        crate::routes::gl::trial_balance,
        crate::routes::gl::entries,
        crate::routes::gl::create_entry,
        crate::routes::gl::day_end,
        crate::routes::gl::day_end_get,
        crate::routes::reports::daily,
        crate::routes::settlements::list,
        crate::routes::settlements::get,
        crate::routes::positions::get,
        crate::routes::positions::reserves,
        crate::routes::positions::create_reserve,
        crate::routes::positions::update_reserve,
        crate::routes::positions::create_transfer,
        crate::routes::positions::list_transfers,
        crate::routes::positions::get_transfer,
        crate::routes::positions::confirm,
        crate::routes::positions::void,
        crate::routes::reconciliation::upload,
        crate::routes::reconciliation::runs,
        crate::routes::reconciliation::run,
        crate::routes::reconciliation::mismatches,
        crate::routes::reconciliation::resolve,
        crate::routes::reconciliation::approve,
        crate::routes::reconciliation::reject,
        crate::routes::orders::create,
        crate::routes::orders::get,
        crate::routes::orders::close,
        crate::routes::orders::qr,
        crate::routes::orders::pay,
        crate::pages::checkout::page,
        crate::pages::checkout::send_code,
        crate::pages::checkout::sign_in,
        crate::pages::checkout::sign_out,
        crate::pages::checkout::pay,
        crate::pages::console::home,
        crate::pages::console::payments,
        crate::pages::console::payment,
        crate::pages::console::settlements,
        crate::pages::console::statement,
        crate::pages::console::reports,
        crate::pages::console::daily_csv,
        crate::pages::console::webhooks,
        crate::pages::console::send_code,
        crate::pages::console::sign_in,
        crate::pages::console::sign_out,
        crate::pages::console::refund,
        crate::pages::console::set_webhook,
        crate::pages::console::rotate_key,
        crate::routes::merchants::add_staff,
        crate::routes::merchants::list_staff,
        crate::routes::merchants::update_staff,
        payments::create,
        payments::list,
        payments::get,
        payments::review,
        payments::capture,
        payments::void,
        refunds::create,
        refunds::list,
        refunds::get,
        crate::risk::reload,
        crate::audit::list,
        crate::webhooks::put,
        crate::webhooks::get,
        crate::webhooks::list,
        crate::webhooks::resend,
        crate::otp::create,
        crate::otp::verify,
        crate::notify::get,
        crate::notify::receipt,
        crate::alerts::intake,
        crate::alerts::list,
    ),
    components(schemas(ErrorResponse, ErrorDetail, ErrorType, Status)),
    modifiers(&BearerAuth, &Currencies),
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
