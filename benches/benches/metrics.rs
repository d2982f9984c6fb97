//! What issue #7's metrics cost per payment: every recording payd makes for one balance
//! payment, against the real Prometheus recorder (`api::metrics::install`): the request
//! counter and latency histogram (labels: route pattern, method, status), the idempotency
//! counter, the risk decision and score, the payment counter and amount, the three group-write
//! histograms (counted once per payment, as if every payment had its own sync: an upper
//! bound), and the mailbox tokens of the six account messages. Also one scrape's render with
//! 100 channels. The load-test comparison (metrics on vs off) is `loadtest/metrics-cost.sh`.
//! And what the structured log costs a request: its span and its JSON access line.

use std::hint::black_box;
use std::time::Duration;

use actix_web::http::Method;
use api::records::{Payment, PaymentStatus, Tail};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn payment() -> Payment {
    Payment {
        id: 1,
        merchant: 2,
        out_trade_no: "order-1".into(),
        amount: 1234,
        currency: 156,
        fee: 7,
        payer: engine::AccountId(3),
        status: PaymentStatus::Succeeded,
        failure_code: None,
        description: None,
        metadata: Vec::new(),
        refunded: 0,
        created_at_ns: 0,
        risk: Tail(None),
        card: Tail(None),
        business_date: Tail(None),
        splits: Tail(Vec::new()),
        agreement_version: Tail(1),
        coupon: Tail(None),
        credit_line: Tail(None),
        authorization: Tail(None),
    }
}

fn metrics(c: &mut Criterion) {
    let handle = api::metrics::install().unwrap();
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(1));
    let p = payment();
    // The journal writer looks its histograms up once, when it starts.
    let sync = metrics::histogram!(storage::writer::WAL_SYNC_SECONDS);
    let units = metrics::histogram!(storage::writer::WAL_BATCH_UNITS);
    let bytes = metrics::histogram!(storage::writer::WAL_BATCH_BYTES);
    // payd folds the histograms' samples into buckets every 5 s (~85k payments at full
    // speed); here every 65,536 payments, its cost included.
    let mut n = 0u32;
    g.bench_function("one_balance_payment_recorded", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            if n.is_multiple_of(65_536) {
                handle.run_upkeep();
            }
            let tokens: Vec<actors::shard::Queued> = (0..6).map(|_| Default::default()).collect();
            api::metrics::idempotency("new");
            api::metrics::risk(engine::risk::Decision::Approve, black_box(0));
            api::metrics::payment(black_box(&p));
            sync.record(0.0004);
            units.record(16.0);
            bytes.record(4096.0);
            api::metrics::http_request(
                Some(black_box("/v1/payments")),
                &Method::POST,
                201,
                Duration::from_micros(800),
            );
            drop(tokens);
        })
    });
    // Its parts, and (for comparison) one counter looked up in the registry each time, as
    // the `counter!` macro does.
    g.bench_function("part_mailbox_tokens", |b| {
        b.iter(|| {
            let t: Vec<actors::shard::Queued> = (0..6).map(|_| Default::default()).collect();
            drop(t);
        })
    });
    g.bench_function("part_http_request", |b| {
        b.iter(|| {
            api::metrics::http_request(
                Some(black_box("/v1/payments")),
                &Method::POST,
                201,
                Duration::from_micros(800),
            )
        })
    });
    g.bench_function("part_payment", |b| {
        b.iter(|| api::metrics::payment(black_box(&p)))
    });
    g.bench_function("part_risk", |b| {
        b.iter(|| api::metrics::risk(engine::risk::Decision::Approve, black_box(0)))
    });
    g.bench_function("part_wal_histograms", |b| {
        b.iter(|| {
            sync.record(0.0004);
            units.record(16.0);
            bytes.record(4096.0);
        })
    });
    g.bench_function("registry_lookup_per_call", |b| {
        b.iter(|| metrics::counter!(api::metrics::IDEMPOTENCY, "outcome" => "new").increment(1))
    });
    // Samples are folded into buckets by the upkeep (every 5 s in payd): part of the cost.
    handle.run_upkeep();
    for i in 0..100 {
        let name = format!("ch{i:03}");
        api::metrics::channel_call(&name, "charged", Duration::from_millis(2));
        api::metrics::router_choice(&name);
    }
    g.bench_function("render_100_channels", |b| {
        b.iter(|| black_box(handle.render().len()))
    });
    g.finish();
}

/// One request's logging as payd does it: its span (request id, then the payment id
/// recorded), and its access line, JSON, through payd's subscriber and its bounded log
/// writer, `api::logwriter` (here into a sink; in payd, stderr).
fn access_log(c: &mut Criterion) {
    let (writer, _guard) = api::logwriter::spawn(std::io::sink()).unwrap();
    api::access::write_json_to(writer.clone());
    let mut g = c.benchmark_group("logs");
    g.throughput(Throughput::Elements(1));
    let one_request = || {
        let span = api::access::span("req_0123abcd-1f");
        span.record("payment_id", "pay_01a2160a25c265e0af349818540146e0");
        drop(span);
        api::access::Line {
            request_id: "req_0123abcd-1f",
            client: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            method: "POST",
            route: "/v1/payments",
            status: 201,
            error_code: None,
            latency_us: black_box(812),
            merchant: Some("mch_01a2160a25a3665c31888accb6a62f8c"),
            payment_id: Some("pay_01a2160a25c265e0af349818540146e0"),
        }
        .write();
    };
    // payd's subscriber (api/src/main.rs).
    let payd = tracing_subscriber::fmt()
        .fmt_fields(api::logfmt::SpanFields)
        .event_format(api::logfmt::JsonLines::default())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(writer)
        .finish();
    tracing::subscriber::with_default(payd, || {
        g.bench_function("request_span_and_access_line", |b| b.iter(one_request));
    });
    g.finish();
}

criterion_group!(benches, metrics, access_log);
criterion_main!(benches);
