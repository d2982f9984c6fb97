//! Reading a JSON request body: content type, size limit, deadline, then strict parsing.
//!
//! Done by hand instead of with `web::Json` because actix's `client_request_timeout` covers
//! only the request head: a client trickling its body would hold a connection forever. Here
//! the whole body must arrive within `body_timeout`, and an oversized body is drained (up
//! to a bound) before the 413 is sent, so the client reads the answer instead of a reset.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ApiError, ErrorType};

/// Bytes of an oversized body read and thrown away before answering 413.
const DRAIN_BYTES_MAX: usize = 8 << 20;

#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub limit_bytes: usize,
    pub timeout: Duration,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorType::InvalidRequestError,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

fn timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        ErrorType::InvalidRequestError,
        "body_timeout",
        format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ),
    )
}

/// The media type the request says it carries, lower-cased, without its parameters.
pub fn content_type_essence(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Checks that the request says it carries JSON (`application/json`, any parameters).
pub fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let value = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type_essence(req).as_deref() == Some("application/json") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorType::InvalidRequestError,
        "unsupported_media_type",
        format!(
            "content-type must be application/json, not {:?}",
            value.unwrap_or("")
        ),
    ))
}

/// Reads the whole body within the limits.
pub async fn read_body(
    mut payload: impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
    limits: BodyLimits,
    declared: Option<usize>,
) -> Result<web::Bytes, ApiError> {
    let read = async {
        // Room for the declared length at once (within the limit): a batch's megabytes grew
        // from nothing by doubling, each step a copy of what was read so far.
        let mut body = web::BytesMut::with_capacity(
            declared.filter(|&n| n <= limits.limit_bytes).unwrap_or(0),
        );
        let mut overflow = declared.is_some_and(|n| n > limits.limit_bytes);
        let mut drained = 0usize;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::invalid(
                    "invalid_body",
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if overflow {
                drained += chunk.len();
                if drained > DRAIN_BYTES_MAX {
                    break;
                }
                continue;
            }
            if body.len() + chunk.len() > limits.limit_bytes {
                overflow = true;
                drained = body.len() + chunk.len();
                body.clear();
                continue;
            }
            body.extend_from_slice(&chunk);
        }
        if overflow {
            return Err(too_large(limits.limit_bytes));
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(limits.timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(limits.timeout)),
    }
}

/// Content type, body, then JSON into `T`, with the raw bytes (the idempotency fingerprint
/// covers them). A field of the wrong type or a missing one names the field in `param`;
/// fields listed in `amount_fields` fail as `invalid_amount`.
pub async fn json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
    amount_fields: &[&str],
) -> Result<(T, web::Bytes), ApiError> {
    let bytes = bytes(req, payload, limits).await?;
    Ok((parse(&bytes, amount_fields)?, bytes))
}

/// Content type and body, unparsed (for bodies whose signature is checked first).
pub async fn bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::Bytes, ApiError> {
    check_json_content_type(req)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    read_body(payload, limits, declared).await
}

/// [`json`] for bodies holding secrets (card numbers): an error keeps its code and field but
/// never quotes the input (serde's messages do: "invalid type: integer `4111…`").
pub async fn json_sensitive<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<(T, web::Bytes), ApiError> {
    json(req, payload, limits, &[]).await.map_err(unquoted)
}

/// [`parse`] for bodies holding secrets, with [`json_sensitive`]'s errors.
pub fn parse_sensitive<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse(bytes, &[]).map_err(unquoted)
}

/// An error about a sensitive body, with the input no longer quoted.
fn unquoted(e: ApiError) -> ApiError {
    if !matches!(
        e.code,
        "invalid_json" | "invalid_parameter" | "parameter_missing"
    ) {
        return e;
    }
    let message = match &e.param {
        Some(p) => format!("{}: the field {p} is missing or not valid", e.code),
        None => format!(
            "{}: the body is not a valid JSON object for this request",
            e.code
        ),
    };
    e.with_message(message)
}

/// Strict JSON parsing with the failing field's path. `T` may borrow from `bytes` (the
/// batch endpoint's transfers do).
pub fn parse<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    amount_fields: &[&str],
) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    // Every request body is a JSON object: serde would take a struct from an array too
    // (`[null, null]` for a body of two optional fields).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::invalid(
            "invalid_parameter",
            "the request body must be a JSON object, not an array",
        ));
    }
    // A body that parses is parsed once, without tracking the path: the tracking wraps
    // every value's deserializer (without it the batch endpoint moved 8% more transfers,
    // docs/BENCHMARKS.md). A body that fails is parsed again with it, to name the field.
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    if let Ok(value) = T::deserialize(&mut *de) {
        return match de.end() {
            Ok(()) => Ok(value),
            Err(e) => Err(ApiError::invalid(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            )),
        };
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        // Not expected (the same input just failed), but then it is the value.
        Ok(value) => Ok(value),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::invalid(
                    "invalid_json",
                    format!("the request body is not valid JSON: {message}"),
                ));
            }
            // serde reports a missing field at its parent's path; its name is in the message.
            let field = match message.strip_prefix("missing field `") {
                Some(rest) => rest.split('`').next().unwrap_or("").to_string(),
                None if path == "." => String::new(),
                None => path,
            };
            let code = if message.starts_with("missing field") {
                "parameter_missing"
            } else if amount_fields.iter().any(|f| *f == field) {
                "invalid_amount"
            } else {
                "invalid_parameter"
            };
            let err = ApiError::invalid(code, message);
            Err(if field.is_empty() {
                err
            } else {
                err.with_param(field)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        amount: String,
        currency: String,
        owner: Option<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Req>(br#"{"amount": 5, "currency": "CNY"}"#, &["amount"]).unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("invalid_amount", Some("amount"))
        );
        let e = parse::<Req>(br#"{"amount": "5"}"#, &["amount"]).unwrap_err();
        assert_eq!(
            (e.code, e.param.as_deref()),
            ("parameter_missing", Some("currency"))
        );
        let e = parse::<Req>(br#"{"amount": "5", "currency": "CNY", "x": 1}"#, &[]).unwrap_err();
        assert_eq!(e.code, "invalid_parameter");
        let e = parse::<Req>(br#"{"amount": "5", "#, &[]).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let e = parse::<Req>(b"[1,2]", &[]).unwrap_err();
        assert_eq!(e.code, "invalid_parameter");
        // A struct of optional fields would take an array of nulls: refused as not an object.
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Optional {
            a: Option<String>,
            b: Option<String>,
        }
        let e = parse::<Optional>(b" [null, null]", &[]).unwrap_err();
        assert_eq!(e.code, "invalid_parameter");
        assert!(parse::<Optional>(b"{}", &[]).is_ok());
        let e = parse::<Req>(b"", &[]).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        // One object and nothing after it but whitespace.
        assert!(parse::<Optional>(b" {} \n", &[]).is_ok());
        for trailing in [&br#"{} {}"#[..], br#"{"a": "x"} garbage"#, b"{}]"] {
            let e = parse::<Optional>(trailing, &[]).unwrap_err();
            assert_eq!(e.code, "invalid_json", "{e}");
        }
    }

    /// Found by the `request_bodies` fuzz target: an unknown field whose name held a
    /// card-like number was named back in `param` and in the sensitive message.
    #[test]
    fn an_unknown_field_named_like_a_card_number_is_not_echoed() {
        let body = br#"{"decsipnde5555555527777":1}"#;
        for e in [
            parse::<Req>(body, &["amount"]).unwrap_err(),
            parse_sensitive::<Req>(body).unwrap_err(),
        ] {
            assert!(!crate::pan::contains(&e.message), "{e}");
            assert!(
                !e.param.as_deref().is_some_and(crate::pan::contains),
                "{e:?}"
            );
            assert!(e.param.is_some_and(|p| p.contains("[card number]")));
        }
    }
}
