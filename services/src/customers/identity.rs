//! The identity service (公安身份核验 through an aggregator): matches a person's name with a
//! resident id number. `identity-sim` (the sims crate) plays it.
//!
//! - `POST {identity_url}/v1/identity/verify` with `Authorization: Bearer <identity_key>` and
//!   [`Check`] → `200` [`Answer`]; `401` a wrong key; `5xx` or no answer within
//!   `identity_timeout_ms`: unavailable (nothing is concluded, the customer is unchanged).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::{Error, Result};

/// One check as the service receives it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub id_number: String,
    /// Our reference (the customer's id): the service's logs name it, never the number.
    pub reference: String,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// The service's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    /// `match`, `mismatch` (the number exists under another name) or `no_record`.
    pub result: String,
    pub reference: String,
}

/// What a check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Match,
    Mismatch,
    NoRecord,
}

fn unavailable(why: impl std::fmt::Display) -> Error {
    metrics::counter!(crate::metrics::IDENTITY_CHECKS, "outcome" => "unavailable").increment(1);
    Error::Unavailable {
        code: "identity_service_unavailable",
        message: format!(
            "the identity service could not be asked ({why}); nothing changed, retry later"
        ),
    }
}

/// Asks the configured identity service whether `check.name` holds `check.id_number`.
pub async fn ask(state: &Platform, check: &Check) -> Result<Outcome> {
    let Some(url) = &state.settings.identity_url else {
        return Err(unavailable("none is configured"));
    };
    let started = Instant::now();
    let mut request = state
        .http
        .post(format!("{}/v1/identity/verify", url.trim_end_matches('/')))
        .json(check)
        .timeout(state.settings.identity_timeout);
    if let Some(key) = &state.settings.identity_key {
        request = request.bearer_auth(key.expose());
    }
    let sent = request.send().await;
    metrics::histogram!(crate::metrics::IDENTITY_SECONDS).record(started.elapsed());
    // reqwest's errors name the URL, never the body: no number in them.
    let response = sent.map_err(|e| {
        if e.is_timeout() {
            unavailable(format!(
                "no answer within {} ms",
                state.settings.identity_timeout.as_millis()
            ))
        } else {
            unavailable(crate::tls::describe(e))
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(unavailable(format!("HTTP {}", status.as_u16())));
    }
    let answer: Answer = tokio::time::timeout(Duration::from_secs(5), response.json())
        .await
        .map_err(|_| unavailable("the answer did not arrive"))?
        .map_err(|e| unavailable(format!("unreadable answer: {}", e.without_url())))?;
    let outcome = match answer.result.as_str() {
        "match" => Outcome::Match,
        "mismatch" => Outcome::Mismatch,
        "no_record" => Outcome::NoRecord,
        other => return Err(unavailable(format!("unknown result {other:?}"))),
    };
    let label = match outcome {
        Outcome::Match => "match",
        Outcome::Mismatch => "mismatch",
        Outcome::NoRecord => "no_record",
    };
    metrics::counter!(crate::metrics::IDENTITY_CHECKS, "outcome" => label).increment(1);
    Ok(outcome)
}
