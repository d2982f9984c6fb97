//! The public error shape: every non-2xx answer is
//! `{"error": {"type", "code", "message", "param"?}}` with the contract's status codes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The contract's error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    IdempotencyError,
    RateLimitError,
    ApiError,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Body<'a> {
    error: &'a ApiError,
}

/// An error answer. Build one with the constructors; `message` is lowercase and quotes the
/// bad input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The first payment, on `409 duplicate_out_trade_no`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// `Retry-After` in seconds, on `429 rate_limited`.
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: ErrorType,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        let message: String = message.into();
        ApiError {
            status,
            kind,
            code,
            // Messages quote inputs; a card number in one never leaves.
            message: match crate::pan::redact(&message) {
                std::borrow::Cow::Borrowed(_) => message,
                std::borrow::Cow::Owned(clean) => clean,
            },
            param: None,
            payment_id: None,
            retry_after_s: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        // A field's name comes from the request too (an unknown field is named back).
        self.param = Some(crate::pan::redact(&param.into()).into_owned());
        self
    }

    /// Replaces the message (scrubbed of card numbers, like every message).
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = code;
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> ApiError {
        self.message = crate::pan::redact(&message.into()).into_owned();
        self
    }

    /// 400 for a request that is understood but invalid.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorType::InvalidRequestError,
            code,
            message,
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            "resource_not_found",
            message,
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "invalid_credentials",
            message,
        )
    }

    /// 403: a merchant asking for another merchant's resource by its id.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorType::AuthenticationError,
            "forbidden",
            message,
        )
    }

    pub fn not_ready() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "not_ready",
            "the server is recovering its store; retry shortly",
        )
    }

    pub fn overloaded(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "overloaded",
            format!("the server is overloaded ({what}); retry later"),
        )
    }

    /// 503 for a store failure: the request was not acknowledged. Never a 500: nothing here
    /// is the client's fault, and retrying with the same idempotency key is safe.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "storage_unavailable",
            message,
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after_s {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        let mut response = response.json(Body { error: self });
        response
            .extensions_mut()
            .insert(crate::access::ErrorCode(self.code));
        response
    }
}

/// The one translation of a service's error into an answer: every variant named, so a new
/// one cannot reach a client unmapped.
impl From<services::Error> for ApiError {
    fn from(e: services::Error) -> Self {
        use services::Error as E;
        match e {
            E::Invalid {
                code,
                message,
                param,
            } => {
                let e = ApiError::invalid(code, message);
                match param {
                    Some(p) => e.with_param(p),
                    None => e,
                }
            }
            E::NotFound { message, param } => {
                let e = ApiError::not_found(message);
                match param {
                    Some(p) => e.with_param(p),
                    None => e,
                }
            }
            E::Conflict {
                code,
                message,
                param,
                payment_id,
            } => {
                let mut e = ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorType::InvalidRequestError,
                    code,
                    message,
                );
                if let Some(p) = param {
                    e = e.with_param(p);
                }
                e.payment_id = payment_id;
                e
            }
            E::Unauthenticated { code, message } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorType::AuthenticationError,
                code,
                message,
            ),
            E::RateLimited {
                message,
                retry_after_s,
            } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorType::RateLimitError,
                    "rate_limited",
                    message,
                );
                e.retry_after_s = Some(retry_after_s);
                e
            }
            E::IdempotencyKeyInUse => ApiError::new(
                StatusCode::CONFLICT,
                ErrorType::IdempotencyError,
                "idempotency_key_in_use",
                e.to_string(),
            ),
            E::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorType::IdempotencyError,
                "idempotency_key_reused",
                e.to_string(),
            ),
            E::NotReady => ApiError::not_ready(),
            E::Overloaded(what) => ApiError::overloaded(&what),
            E::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorType::ApiError,
                "shutting_down",
                "the server is shutting down",
            ),
            E::Storage(message) => ApiError::unavailable(message),
            E::Unavailable { code, message } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorType::ApiError,
                code,
                message,
            ),
            E::Unprocessable { code, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorType::InvalidRequestError,
                code,
                message,
            ),
        }
    }
}
