//! `payd serve`: bind, recover the store in the background (readiness 503 until done), serve,
//! and on SIGTERM or SIGINT stop accepting, finish in-flight requests, flush, exit 0.

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::{web, App, HttpRequest, HttpServer};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::body::BodyLimits;
use crate::config::Config;
use crate::error::ApiError;
use crate::routes::{self, accounts, health, merchants, payments, refunds};
use crate::state::AppState;

/// Registers every route on an app (shared by the server and in-process tests).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Each path answers its other methods 405 with the Allow header listing these.
    let resource = |path: &str, allow: &'static str| {
        web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
            routes::method_not_allowed(&req, allow)
        }))
    };
    // The router tries resources in this order, and a path with `{id}` is matched by a
    // regex (also for the access log's route pattern): the hot routes come first, so a
    // payment does not pay for the dynamic routes registered before it (regex and router
    // were 2.4% of payd's CPU samples under balance payments, 0.16% after; BENCHMARKS.md).
    cfg.service(
        resource("/v1/payments", "GET, POST")
            .route(web::post().to(payments::create))
            .route(web::get().to(payments::list)),
    )
    .service(
        resource("/v1/transfers/batch", "POST")
            .route(web::post().to(crate::routes::transfers::batch)),
    )
    .service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
    .service(resource("/bench/floor", "POST").route(web::post().to(routes::floor::write)))
    .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
    .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
    .service(resource("/openapi.json", "GET").route(web::get().to(health::openapi)))
    .service(resource("/ops", "GET").route(web::get().to(crate::ops::page)))
    .service(resource("/ops/data.json", "GET").route(web::get().to(crate::ops::data_json)))
    .service(resource("/ops/ops.js", "GET").route(web::get().to(crate::ops::script)))
    .service(
        resource("/checkout/static/checkout.css", "GET")
            .route(web::get().to(crate::pages::checkout::stylesheet)),
    )
    .service(resource("/checkout/{id}", "GET").route(web::get().to(crate::pages::checkout::page)))
    .service(
        resource("/checkout/{id}/code", "POST")
            .route(web::post().to(crate::pages::checkout::send_code)),
    )
    .service(
        resource("/checkout/{id}/signin", "POST")
            .route(web::post().to(crate::pages::checkout::sign_in)),
    )
    .service(
        resource("/checkout/{id}/signout", "POST")
            .route(web::post().to(crate::pages::checkout::sign_out)),
    )
    .service(
        resource("/checkout/{id}/pay", "POST").route(web::post().to(crate::pages::checkout::pay)),
    )
    .service(
        resource("/console/static/console.css", "GET")
            .route(web::get().to(crate::pages::console::stylesheet)),
    )
    .service(resource("/console", "GET").route(web::get().to(crate::pages::console::home)))
    .service(
        resource("/console/code", "POST").route(web::post().to(crate::pages::console::send_code)),
    )
    .service(
        resource("/console/signin", "POST").route(web::post().to(crate::pages::console::sign_in)),
    )
    .service(
        resource("/console/signout", "POST").route(web::post().to(crate::pages::console::sign_out)),
    )
    .service(
        resource("/console/payments", "GET").route(web::get().to(crate::pages::console::payments)),
    )
    .service(
        resource("/console/payments/{id}", "GET")
            .route(web::get().to(crate::pages::console::payment)),
    )
    .service(
        resource("/console/payments/{id}/refund", "POST")
            .route(web::post().to(crate::pages::console::refund)),
    )
    .service(
        resource("/console/settlements", "GET")
            .route(web::get().to(crate::pages::console::settlements)),
    )
    .service(
        resource("/console/settlements/{id}/statement.csv", "GET")
            .route(web::get().to(crate::pages::console::statement)),
    )
    .service(
        resource("/console/reports", "GET").route(web::get().to(crate::pages::console::reports)),
    )
    .service(
        resource("/console/reports/daily.csv", "GET")
            .route(web::get().to(crate::pages::console::daily_csv)),
    )
    .service(
        resource("/console/webhooks", "GET, POST")
            .route(web::get().to(crate::pages::console::webhooks))
            .route(web::post().to(crate::pages::console::set_webhook)),
    )
    .service(
        resource("/console/keys", "POST").route(web::post().to(crate::pages::console::rotate_key)),
    )
    .service(
        resource("/v1/merchants/{id}/staff", "GET, POST")
            .route(web::get().to(merchants::list_staff))
            .route(web::post().to(merchants::add_staff)),
    )
    .service(
        resource("/v1/merchants/{id}/staff/{staff_id}", "PATCH")
            .route(web::patch().to(merchants::update_staff)),
    )
    .service(resource("/v1/accounts", "POST").route(web::post().to(accounts::create)))
    .service(
        resource("/v1/accounts/{id}", "GET, PATCH")
            .route(web::get().to(accounts::get))
            .route(web::patch().to(accounts::update)),
    )
    .service(
        resource("/v1/accounts/{id}/deposits", "POST").route(web::post().to(accounts::deposit)),
    )
    .service(resource("/v1/merchants", "POST").route(web::post().to(merchants::create)))
    .service(
        resource("/v1/merchants/{id}", "GET, PATCH")
            .route(web::get().to(merchants::get))
            .route(web::patch().to(merchants::update)),
    )
    .service(
        resource("/v1/merchants/{id}/activate", "POST").route(web::post().to(merchants::activate)),
    )
    .service(resource("/v1/merchants/{id}/reject", "POST").route(web::post().to(merchants::reject)))
    .service(
        resource("/v1/merchants/{id}/agreements", "GET")
            .route(web::get().to(merchants::agreements)),
    )
    .service(
        resource("/v1/merchants/{id}/secret_keys", "POST")
            .route(web::post().to(merchants::rotate_secret_key)),
    )
    .service(
        resource("/v1/merchants/{id}/signing_secrets", "POST")
            .route(web::post().to(merchants::rotate_signing_secret)),
    )
    .service(
        resource("/v1/customers", "GET, POST")
            .route(web::get().to(routes::customers::list))
            .route(web::post().to(routes::customers::create)),
    )
    .service(resource("/v1/customers/{id}", "GET").route(web::get().to(routes::customers::get)))
    .service(
        resource("/v1/customers/{id}/phone_verification", "POST")
            .route(web::post().to(routes::customers::start_phone)),
    )
    .service(
        resource("/v1/customers/{id}/phone_verification/check", "POST")
            .route(web::post().to(routes::customers::check_phone)),
    )
    .service(
        resource("/v1/customers/{id}/identity_verification", "POST")
            .route(web::post().to(routes::customers::verify_identity)),
    )
    .service(
        resource("/v1/customers/{id}/coupons", "GET")
            .route(web::get().to(routes::coupons::of_customer)),
    )
    .service(
        resource("/v1/coupon_stocks", "GET, POST")
            .route(web::get().to(routes::coupons::list_stocks))
            .route(web::post().to(routes::coupons::create_stock)),
    )
    .service(
        resource("/v1/coupon_stocks/{id}", "GET, PATCH")
            .route(web::get().to(routes::coupons::get_stock))
            .route(web::patch().to(routes::coupons::update_stock)),
    )
    .service(
        resource("/v1/coupon_stocks/{id}/coupons", "POST")
            .route(web::post().to(routes::coupons::issue)),
    )
    .service(resource("/v1/coupons/{id}", "GET").route(web::get().to(routes::coupons::get_coupon)))
    .service(resource("/v1/credit_lines", "POST").route(web::post().to(routes::credit::create)))
    .service(resource("/v1/credit_lines/{id}", "GET").route(web::get().to(routes::credit::get)))
    .service(
        resource("/v1/credit_lines/{id}/bills", "GET").route(web::get().to(routes::credit::bills)),
    )
    .service(
        resource("/v1/credit_lines/{id}/repayments", "POST")
            .route(web::post().to(routes::credit::repay)),
    )
    .service(resource("/v1/orders", "POST").route(web::post().to(routes::orders::create)))
    .service(resource("/v1/orders/{id}", "GET").route(web::get().to(routes::orders::get)))
    .service(resource("/v1/orders/{id}/qr", "GET").route(web::get().to(routes::orders::qr)))
    .service(resource("/v1/orders/{id}/close", "POST").route(web::post().to(routes::orders::close)))
    .service(
        resource("/v1/orders/{id}/payments", "POST").route(web::post().to(routes::orders::pay)),
    )
    .service(resource("/v1/payments/{id}", "GET").route(web::get().to(payments::get)))
    .service(
        resource("/v1/payments/{id}/refunds", "GET, POST")
            .route(web::post().to(refunds::create))
            .route(web::get().to(refunds::list)),
    )
    .service(resource("/v1/refunds/{id}", "GET").route(web::get().to(refunds::get)))
    .service(resource("/v1/payments/{id}/review", "POST").route(web::post().to(payments::review)))
    .service(resource("/v1/payments/{id}/capture", "POST").route(web::post().to(payments::capture)))
    .service(resource("/v1/payments/{id}/void", "POST").route(web::post().to(payments::void)))
    .service(
        resource("/v1/webhook_endpoint", "GET, PUT")
            .route(web::put().to(crate::webhooks::put))
            .route(web::get().to(crate::webhooks::get)),
    )
    .service(resource("/v1/audit", "GET").route(web::get().to(crate::audit::list)))
    .service(resource("/v1/events", "GET").route(web::get().to(crate::webhooks::list)))
    .service(
        resource("/v1/events/{id}/resend", "POST").route(web::post().to(crate::webhooks::resend)),
    )
    .service(resource("/v1/cards", "POST").route(web::post().to(routes::cards::create)))
    .service(
        resource("/v1/channels", "GET, POST")
            .route(web::post().to(routes::channels::create))
            .route(web::get().to(routes::channels::list)),
    )
    .service(
        resource("/v1/channels/{id}", "PATCH").route(web::patch().to(routes::channels::update)),
    )
    .service(
        resource("/v1/channels/{id}/notifications", "POST")
            .route(web::post().to(routes::channels::notification)),
    )
    .service(
        resource("/v1/channels/{id}/payout_notifications", "POST")
            .route(web::post().to(routes::channels::payout_notification)),
    )
    .service(
        resource("/v1/gl/business_date", "GET").route(web::get().to(routes::gl::business_date)),
    )
    .service(resource("/v1/gl/accounts", "GET").route(web::get().to(routes::gl::accounts)))
    .service(
        resource("/v1/gl/trial_balance", "GET").route(web::get().to(routes::gl::trial_balance)),
    )
    .service(
        resource("/v1/gl/entries", "GET, POST")
            .route(web::get().to(routes::gl::entries))
            .route(web::post().to(routes::gl::create_entry)),
    )
    .service(resource("/v1/gl/day_end", "POST").route(web::post().to(routes::gl::day_end)))
    .service(resource("/v1/reports/daily", "GET").route(web::get().to(routes::reports::daily)))
    .service(resource("/v1/settlements", "GET").route(web::get().to(routes::settlements::list)))
    .service(resource("/v1/settlements/{id}", "GET").route(web::get().to(routes::settlements::get)))
    .service(resource("/v1/gl/day_end/{date}", "GET").route(web::get().to(routes::gl::day_end_get)))
    .service(resource("/v1/positions", "GET").route(web::get().to(routes::positions::get)))
    .service(
        resource("/v1/positions/reserves", "GET, POST")
            .route(web::get().to(routes::positions::reserves))
            .route(web::post().to(routes::positions::create_reserve)),
    )
    .service(
        resource("/v1/positions/reserves/{name}", "PATCH")
            .route(web::patch().to(routes::positions::update_reserve)),
    )
    .service(
        resource("/v1/positions/transfers", "GET, POST")
            .route(web::get().to(routes::positions::list_transfers))
            .route(web::post().to(routes::positions::create_transfer)),
    )
    .service(
        resource("/v1/positions/transfers/{id}", "GET")
            .route(web::get().to(routes::positions::get_transfer)),
    )
    .service(
        resource("/v1/positions/transfers/{id}/confirm", "POST")
            .route(web::post().to(routes::positions::confirm)),
    )
    .service(
        resource("/v1/positions/transfers/{id}/void", "POST")
            .route(web::post().to(routes::positions::void)),
    )
    .service(
        resource("/v1/reconciliation/statements", "POST")
            .route(web::post().to(routes::reconciliation::upload)),
    )
    .service(
        resource("/v1/reconciliation/runs", "GET")
            .route(web::get().to(routes::reconciliation::runs)),
    )
    .service(
        resource("/v1/reconciliation/runs/{id}", "GET")
            .route(web::get().to(routes::reconciliation::run)),
    )
    .service(
        resource("/v1/reconciliation/mismatches", "GET")
            .route(web::get().to(routes::reconciliation::mismatches)),
    )
    .service(
        resource("/v1/reconciliation/mismatches/{id}/resolve", "POST")
            .route(web::post().to(routes::reconciliation::resolve)),
    )
    .service(
        resource("/v1/reconciliation/mismatches/{id}/approve", "POST")
            .route(web::post().to(routes::reconciliation::approve)),
    )
    .service(
        resource("/v1/reconciliation/mismatches/{id}/reject", "POST")
            .route(web::post().to(routes::reconciliation::reject)),
    )
    .service(resource("/v1/risk/rules/reload", "POST").route(web::post().to(crate::risk::reload)))
    .service(resource("/v1/otp", "POST").route(web::post().to(crate::otp::create)))
    .service(resource("/v1/otp/verify", "POST").route(web::post().to(crate::otp::verify)))
    .service(resource("/v1/sms/receipts", "POST").route(web::post().to(crate::notify::receipt)))
    .service(resource("/v1/sms/{id}", "GET").route(web::get().to(crate::notify::get)))
    .service(
        resource("/v1/ops/alerts", "GET, POST")
            .route(web::post().to(crate::alerts::intake))
            .route(web::get().to(crate::alerts::list)),
    );
}

pub fn serve(config: Config) -> anyhow::Result<()> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    let (admin_token, generated) =
        crate::auth::resolve_admin_token(config.admin_token.as_ref(), &config.data_dir)
            .map_err(|e| anyhow::anyhow!("admin token: {e}"))?;
    match generated {
        Some(path) => println!(
            "payd: generated an admin token in {} (mode 0600)",
            path.display()
        ),
        None if config.admin_token.is_none() => {
            println!(
                "payd: admin token read from {}",
                config.data_dir.join("admin_token").display()
            )
        }
        None => println!("payd: admin token from RONGPAY_ADMIN_TOKEN"),
    }
    let (card_key, generated) = crate::auth::resolve_secret(
        config.card_key.as_ref(),
        &config.data_dir,
        "card_key",
        |k| crate::vault::check_key(k).map(|_| ()),
        crate::vault::generate_key,
    )
    .map_err(|e| anyhow::anyhow!("card_key: {e}"))?;
    if let Some(path) = generated {
        println!(
            "payd: generated a card encryption key in {} (mode 0600); set card_key in production",
            path.display()
        );
    }
    let vault = crate::vault::Vault::new(card_key.expose())
        .map_err(|e| anyhow::anyhow!("card_key: {e}"))?;
    let (master_key, generated) = crate::auth::resolve_secret(
        config.master_key.as_ref(),
        &config.data_dir,
        "master_key",
        |k| crate::vault::check_key(k).map(|_| ()),
        crate::vault::generate_key,
    )
    .map_err(|e| anyhow::anyhow!("master_key: {e}"))?;
    if let Some(path) = generated {
        println!(
            "payd: generated a master key in {} (mode 0600); set master_key in production",
            path.display()
        );
    }
    let master = crate::vault::Vault::new(master_key.expose())
        .map_err(|e| anyhow::anyhow!("master_key: {e}"))?;
    let metrics = if config.metrics_enabled {
        Some(services::metrics::install().map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    let (alerts_token, generated) = crate::auth::resolve_secret(
        config.alerts_token.as_ref(),
        &config.data_dir,
        "alerts_token",
        crate::config::check_token,
        || {
            format!(
                "alt_{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            )
        },
    )
    .map_err(|e| anyhow::anyhow!("alerts_token: {e}"))?;
    if let Some(path) = generated {
        println!(
            "payd: generated the alert intake token in {} (mode 0600)",
            path.display()
        );
    }
    let platform = services::Platform::new(config.settings(), vault, master, config.rate_limits())
        .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    let state = web::Data::new(AppState {
        platform: Arc::new(platform),
        alerts_token,
        recent_alerts: Default::default(),
        live: Default::default(),
        limits: BodyLimits {
            limit_bytes: config.body_limit_bytes,
            timeout: config.body_timeout(),
        },
        batch_limits: BodyLimits {
            limit_bytes: config.batch_body_limit_bytes,
            timeout: config.body_timeout(),
        },
        admin_token,
        operators: crate::config::parse_operators(&config.operators)
            .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?,
        metrics,
        nonces: Default::default(),
        config: config.clone(),
    });
    let listen = config.listen.clone();
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(
            services::tls::server_config(cert, key)
                .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?,
        ),
        _ => None,
    };
    let ledger_sched_batch = config.ledger_sched_batch;
    let ledger_on_worker = config.ledger_on_worker();
    actix_rt::System::new().block_on(async move {
        // This thread hosts the ledger (started by the recovery below) unless it runs on the
        // first HTTP worker (`ledger_home`). Threads spawned from here on inherit the policy:
        // the HTTP workers set theirs back (the app factory runs on each), as does the
        // group-commit writer.
        if ledger_sched_batch {
            if let Err(e) = services::sched::set_current_thread(services::sched::Policy::Batch) {
                eprintln!("payd: the ledger's thread stays at the normal policy: {e}");
            }
        }
        println!(
            "payd: the ledger runs on {} (ledger_home {})",
            if ledger_on_worker {
                "the first HTTP worker's thread"
            } else {
                "the main thread"
            },
            config.ledger_home
        );
        // On the worker: the first HTTP worker to start sends its arbiter (from the app
        // factory below), and recovery starts the ledger there.
        let (home, ledger_home) = ledger_on_worker.then(tokio::sync::oneshot::channel).unzip();
        let home = Arc::new(std::sync::Mutex::new(home));
        state.platform.start_with_ledger_on(fatal, ledger_home);
        if let Some(handle) = state.metrics.clone() {
            // Folds histogram samples into buckets when nobody scrapes: bounded memory.
            actix_rt::spawn(async move {
                let mut every = actix_rt::time::interval(crate::metrics::UPKEEP_EVERY);
                loop {
                    every.tick().await;
                    handle.run_upkeep();
                }
            });
        }
        let sweeping = state.clone();
        actix_rt::spawn(async move {
            let mut every = actix_rt::time::interval(crate::ratelimit::SWEEP_EVERY);
            loop {
                every.tick().await;
                sweeping.rate.sweep();
                sweeping.notifier.sweep();
                sweeping
                    .nonces
                    .sweep(crate::state::now_ns() / 1_000_000_000);
            }
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            // Called on each worker's thread as it starts: a worker answers clients, so its
            // wakeups preempt the ledger's batch rounds, not the reverse.
            if ledger_sched_batch {
                if let Err(e) = services::sched::set_current_thread(services::sched::Policy::Normal)
                {
                    eprintln!("payd: an HTTP worker keeps the ledger's policy: {e}");
                }
            }
            if let Some(home) = home.lock().ok().and_then(|mut h| h.take()) {
                let _ = home.send(actix_rt::Arbiter::current());
            }
            App::new()
                .app_data(app_state.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::auth::verify_signature,
                ))
                .wrap(actix_web::middleware::from_fn(guard_request))
                .wrap_fn(|req, srv| {
                    // Outermost: sees every answer, the guards' refusals included.
                    let started = std::time::Instant::now();
                    let request_id = crate::access::request_id(&req);
                    let span = crate::access::span(&request_id);
                    // In the span both while the service chain is called (middlewares do
                    // work there) and while its future runs.
                    let answer = span.in_scope(|| srv.call(req));
                    answer.instrument(span).map(move |mut res| {
                        if let Ok(res) = &mut res {
                            let elapsed = started.elapsed();
                            let route = res.request().match_pattern();
                            crate::metrics::http_request(
                                route.as_deref(),
                                res.request().method(),
                                res.status().as_u16(),
                                elapsed,
                            );
                            let latency_us = elapsed.as_micros() as u64;
                            crate::access::log(res, route.as_deref(), &request_id, latency_us);
                            if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
                                state.live.request(latency_us);
                            }
                            if let Ok(value) =
                                actix_web::http::header::HeaderValue::from_str(&request_id)
                            {
                                res.headers_mut().insert(
                                    actix_web::http::header::HeaderName::from_static("request-id"),
                                    value,
                                );
                            }
                        }
                        res
                    })
                })
                .configure(configure)
                .default_service(web::to(routes::unknown_route))
        })
        .workers(config.workers)
        .max_connections(config.connections_max)
        .client_request_timeout(config.head_timeout())
        .shutdown_timeout(30);
        let server = match &tls {
            Some(tls) => server.bind_rustls_0_23(&listen, tls.clone()),
            None => server.bind(&listen),
        }
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?
        .run();
        println!("payd: listening on {}://{listen}", config.scheme());
        server.await?;
        // The server stopped accepting and finished its requests; let the ledger commands
        // they started finish too before the writer stops.
        if let Some(seq) = state.platform.shutdown().await {
            println!("payd: stopped cleanly at seq {seq}");
        }
        anyhow::Ok(())
    })
}

/// Before anything else is done for a request: the head size limit, then the
/// per-source-IP rate limit (health probes and the scrape are exempt from the rate: they
/// must answer while a client is being refused).
async fn guard_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let head_bytes = req.method().as_str().len()
            + req.uri().path_and_query().map_or(0, |pq| pq.as_str().len())
            + req
                .headers()
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum::<usize>();
        if head_bytes > state.config.head_limit_bytes {
            let e = ApiError::new(
                actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                crate::error::ErrorType::InvalidRequestError,
                "header_too_large",
                format!(
                    "the request head is {head_bytes} bytes, more than {}",
                    state.config.head_limit_bytes
                ),
            );
            let response = actix_web::ResponseError::error_response(&e);
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    let exempt = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    if !exempt {
        if let (Some(state), Some(peer)) = (req.app_data::<web::Data<AppState>>(), req.peer_addr())
        {
            if let Err(e) = state.rate.ip.check(&peer.ip()) {
                let response = actix_web::ResponseError::error_response(&ApiError::from(e));
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(actix_web::dev::ServiceResponse::map_into_left_body)
}

fn fatal(message: &str) -> ! {
    eprintln!("payd: {message}");
    tracing::error!("{message}");
    // `exit` skips the log writer's clean stop: write out what it holds first.
    crate::logwriter::flush_all();
    std::process::exit(2)
}
