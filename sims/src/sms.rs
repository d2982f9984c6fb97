//! The SMS gateway simulator (`sms-sim`, test and development tooling): plays a carrier
//! aggregator's HTTP API on loopback, the provider payd's SMS gateway client
//! talks to (`services::notifications::wire`).
//!
//! Gateway plane:
//! - `POST /v1/messages` with `Authorization: Bearer <key>` and
//!   `Outgoing` → `202 {"id": "gw_…", "status": "accepted"}`; `401` for a
//!   wrong key, `400` for a number that is not E.164 or an empty text, `503` while `down` or
//!   when full. After `receipt_delay_ms` it posts a delivery receipt
//!   (`Receipt`) to the message's `callback_url`, signed
//!   `Sms-Signature: t=…,v1=<hex HMAC-SHA256 of "t.body" under the key>`, retried up to 5
//!   times; `fail_rate` of them say `failed`.
//!
//! Control plane (same address): `GET /_sim/messages[?to=…]` lists what arrived (texts
//! included: it is the handset), `PUT /_sim/settings` with any of `{"down", "fail_rate",
//! "receipt_delay_ms"}` changes the behaviour live.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};

use services::notifications::wire::{Outgoing, Receipt};

/// Messages kept; beyond it new ones are refused with 503 (a full gateway).
pub const MESSAGES_MAX: usize = 100_000;
const RECEIPT_ATTEMPTS: u32 = 5;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub down: bool,
    pub fail_rate: f64,
    pub receipt_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            down: false,
            fail_rate: 0.0,
            receipt_delay_ms: 50,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub down: Option<bool>,
    pub fail_rate: Option<f64>,
    pub receipt_delay_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub id: String,
    pub to: String,
    pub text: String,
    pub reference: String,
    pub received_at_ms: u64,
    /// pending until the receipt was taken by payd, then delivered or failed.
    pub receipt: String,
}

pub struct Gateway {
    key: String,
    settings: Mutex<Settings>,
    messages: Mutex<VecDeque<Message>>,
    http: reqwest::Client,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn accept(req: HttpRequest, body: web::Bytes, gw: web::Data<Arc<Gateway>>) -> HttpResponse {
    if !crate::bearer_ok(&req, &gw.key) {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": "bad key"}));
    }
    let settings = gw.settings.lock().expect("sim settings").clone();
    if settings.down {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "down"}));
    }
    let Ok(m) = serde_json::from_slice::<Outgoing>(&body) else {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "bad body"}));
    };
    if !services::notifications::is_e164(&m.to) || m.text.is_empty() {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "bad number or text"}));
    }
    let id = format!("gw_{:016x}", rand::random::<u64>());
    {
        let mut messages = gw.messages.lock().expect("sim messages");
        if messages.len() >= MESSAGES_MAX {
            return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "full"}));
        }
        messages.push_back(Message {
            id: id.clone(),
            to: m.to.clone(),
            text: m.text.clone(),
            reference: m.reference.clone(),
            received_at_ms: now_ms(),
            receipt: "pending".into(),
        });
    }
    let failed = rand::random::<f64>() < settings.fail_rate;
    let gateway = Arc::clone(&gw);
    let receipt = Receipt {
        id: id.clone(),
        reference: m.reference,
        status: if failed { "failed" } else { "delivered" }.into(),
        error: failed.then(|| "carrier rejected the message".to_string()),
    };
    actix_rt::spawn(async move {
        loadtest::delay::sleep(Duration::from_millis(settings.receipt_delay_ms)).await;
        gateway.deliver_receipt(&m.callback_url, receipt).await;
    });
    HttpResponse::Accepted().json(serde_json::json!({"id": id, "status": "accepted"}))
}

impl Gateway {
    async fn deliver_receipt(&self, url: &str, receipt: Receipt) {
        let body = serde_json::to_vec(&receipt).expect("a receipt serializes");
        for attempt in 0..RECEIPT_ATTEMPTS {
            if attempt > 0 {
                actix_rt::time::sleep(Duration::from_secs(1)).await;
            }
            let t = now_ms() / 1000;
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header(
                    "sms-signature",
                    services::signature::sign(self.key.as_bytes(), t, &body),
                )
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                let mut messages = self.messages.lock().expect("sim messages");
                if let Some(m) = messages.iter_mut().find(|m| m.id == receipt.id) {
                    m.receipt = receipt.status.clone();
                }
                return;
            }
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    to: Option<String>,
}

async fn list(gw: web::Data<Arc<Gateway>>, q: web::Query<ListQuery>) -> HttpResponse {
    let messages = gw.messages.lock().expect("sim messages");
    let data: Vec<&Message> = messages
        .iter()
        .filter(|m| q.to.as_ref().is_none_or(|to| &m.to == to))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "data": data }))
}

async fn put_settings(
    gw: web::Data<Arc<Gateway>>,
    change: web::Json<SettingsChange>,
) -> HttpResponse {
    let mut s = gw.settings.lock().expect("sim settings");
    if let Some(d) = change.down {
        s.down = d;
    }
    if let Some(f) = change.fail_rate {
        if !(0.0..=1.0).contains(&f) {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({"error": "fail_rate is 0 to 1"}));
        }
        s.fail_rate = f;
    }
    if let Some(ms) = change.receipt_delay_ms {
        s.receipt_delay_ms = ms.min(600_000);
    }
    HttpResponse::Ok().json(&*s)
}

/// Runs the gateway on `listen` with API key `key` until SIGINT/SIGTERM.
pub fn run(listen: &str, key: String, settings: Settings) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(async move {
        let gw = Arc::new(Gateway {
            key,
            settings: Mutex::new(settings),
            messages: Mutex::new(VecDeque::new()),
            http: crate::http_client(std::time::Duration::from_secs(30)),
        });
        let data = web::Data::new(gw);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::default().limit(16 << 10))
                .app_data(web::JsonConfig::default().limit(16 << 10))
                .route("/v1/messages", web::post().to(accept))
                .route("/_sim/messages", web::get().to(list))
                .route("/_sim/settings", web::put().to(put_settings))
        })
        .workers(1)
        .bind(listen)?
        .run();
        println!("sms-sim: gateway on http://{listen}");
        server.await?;
        anyhow::Ok(())
    })
}
