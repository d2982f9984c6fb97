//! The identity service simulator (`identity-sim`, test and development tooling): plays the
//! name/number match service payd's identity verification asks
//! (`services::customers::identity`).
//!
//! Service plane:
//! - `POST /v1/identity/verify` with `Authorization: Bearer <key>` and
//!   `Check` → `200 {"result": "match"|"mismatch"|"no_record", "reference"}` after
//!   `latency_ms`; `401` for a wrong key, `400` for a bad body, `503` while `down` or for
//!   `fail_rate` of the checks (an outage).
//! - The register: people added through the control plane are matched by name (another name
//!   for their number: `mismatch`); a number nobody added is `no_record` when `strict`, else
//!   a `match` (the default, so that any valid number verifies in development).
//!
//! Control plane (same address): `POST /_sim/people {"id_number", "name"}` adds a person,
//! `PUT /_sim/settings` with any of `{"down", "latency_ms", "fail_rate", "strict"}` changes
//! the behaviour live, `GET /_sim/checks` lists the checks answered (reference, result; never
//! the number) and counts those refused while down.
//!
//! Numbers live in memory only and are never printed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};

use services::customers::identity::{Answer, Check};

/// People the register holds, and checks remembered; beyond them new ones are refused.
pub const PEOPLE_MAX: usize = 100_000;
pub const CHECKS_MAX: usize = 100_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub down: bool,
    pub latency_ms: u64,
    pub fail_rate: f64,
    pub strict: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub down: Option<bool>,
    pub latency_ms: Option<u64>,
    pub fail_rate: Option<f64>,
    pub strict: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    pub reference: String,
    pub result: String,
}

#[derive(Default)]
struct Book {
    people: HashMap<String, String>,
    checks: Vec<Checked>,
    refused: u64,
}

pub struct Service {
    key: String,
    settings: Mutex<Settings>,
    book: Mutex<Book>,
}

async fn verify(req: HttpRequest, body: web::Bytes, s: web::Data<Arc<Service>>) -> HttpResponse {
    if !crate::bearer_ok(&req, &s.key) {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": "bad key"}));
    }
    let settings = s.settings.lock().expect("sim settings").clone();
    if settings.latency_ms > 0 {
        loadtest::delay::sleep(Duration::from_millis(settings.latency_ms)).await;
    }
    if settings.down || rand::random::<f64>() < settings.fail_rate {
        s.book.lock().expect("sim book").refused += 1;
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "down"}));
    }
    let Ok(check) = serde_json::from_slice::<Check>(&body) else {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "bad body"}));
    };
    let mut book = s.book.lock().expect("sim book");
    let result = match book.people.get(&check.id_number.to_ascii_uppercase()) {
        Some(name) if *name == check.name => "match",
        Some(_) => "mismatch",
        None if settings.strict => "no_record",
        None => "match",
    };
    if book.checks.len() < CHECKS_MAX {
        book.checks.push(Checked {
            reference: check.reference.clone(),
            result: result.into(),
        });
    }
    HttpResponse::Ok().json(Answer {
        result: result.into(),
        reference: check.reference,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    id_number: String,
    name: String,
}

async fn add_person(s: web::Data<Arc<Service>>, p: web::Json<Person>) -> HttpResponse {
    let mut book = s.book.lock().expect("sim book");
    if book.people.len() >= PEOPLE_MAX {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "full"}));
    }
    let p = p.into_inner();
    book.people.insert(p.id_number.to_ascii_uppercase(), p.name);
    HttpResponse::Created().json(serde_json::json!({"people": book.people.len()}))
}

async fn checks(s: web::Data<Arc<Service>>) -> HttpResponse {
    let book = s.book.lock().expect("sim book");
    HttpResponse::Ok().json(serde_json::json!({"data": book.checks, "refused": book.refused}))
}

async fn put_settings(
    s: web::Data<Arc<Service>>,
    change: web::Json<SettingsChange>,
) -> HttpResponse {
    let mut st = s.settings.lock().expect("sim settings");
    if let Some(d) = change.down {
        st.down = d;
    }
    if let Some(f) = change.fail_rate {
        if !(0.0..=1.0).contains(&f) {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({"error": "fail_rate is 0 to 1"}));
        }
        st.fail_rate = f;
    }
    if let Some(ms) = change.latency_ms {
        st.latency_ms = ms.min(600_000);
    }
    if let Some(strict) = change.strict {
        st.strict = strict;
    }
    HttpResponse::Ok().json(&*st)
}

/// Runs the service on `listen` with API key `key` until SIGINT/SIGTERM.
pub fn run(listen: &str, key: String, settings: Settings) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(async move {
        let service = Arc::new(Service {
            key,
            settings: Mutex::new(settings),
            book: Mutex::new(Book::default()),
        });
        let data = web::Data::new(service);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::default().limit(16 << 10))
                .app_data(web::JsonConfig::default().limit(16 << 10))
                .route("/v1/identity/verify", web::post().to(verify))
                .route("/_sim/people", web::post().to(add_person))
                .route("/_sim/checks", web::get().to(checks))
                .route("/_sim/settings", web::put().to(put_settings))
        })
        .workers(2)
        .bind(listen)?
        .run();
        println!("identity-sim: identity service on http://{listen}");
        server.await?;
        anyhow::Ok(())
    })
}
