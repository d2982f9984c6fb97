//! What issue #6's request checks cost per request: opening the merchant's sealed signing
//! secret, parsing and verifying a `Rongpay-Signature` (HMAC-SHA256 over a 200-byte payment
//! body, nonce remembered) and the
//! three GCRA rate limit checks (source IP, merchant key, payer account), against many keys.
//! Target: both together ≤ 5 µs per request.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use api::signing::{self, Nonces};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use services::ratelimit::{Limits, Rate};

const BODY: &[u8] = br#"{"out_trade_no":"order-000001","amount":"12.34","currency":"CNY","payment_method":{"type":"balance","account_id":"acct_0123456789abcdef0123456789abcdef"},"metadata":{"table":"7"}}"#;
const SECRET: &[u8] = b"ss_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("security");
    g.throughput(Throughput::Elements(1));
    let nonces = Nonces::default();
    // As payd holds it: sealed under the master key, opened per request.
    let master = services::vault::Vault::new(&services::vault::generate_key()).unwrap();
    let context = services::merchants::signing_context(7, 1);
    let sealed = master.seal(SECRET, &context);
    let now = 1_800_000_000;
    let mut n = 0u64;
    g.bench_function("signature_open_parse_verify_remember", |b| {
        b.iter(|| {
            n += 1;
            let nonce = format!("nonce-{n}");
            let header = signing::sign(SECRET, now, &nonce, "POST", "/v1/payments", BODY);
            let secrets = vec![services::secret::Secret::new(
                master.open(&sealed, &context).unwrap(),
            )];
            let sig = signing::parse(black_box(&header)).unwrap();
            signing::verify(&sig, now, &secrets, "POST", "/v1/payments", BODY).unwrap();
            nonces.remember(7, sig.nonce, now).unwrap();
            if nonces.len() > 500_000 {
                nonces.sweep(u64::MAX);
            }
        })
    });
    // The client's side of the above (signing), to subtract: what payd spends is the rest.
    g.bench_function("signature_sign_only", |b| {
        b.iter(|| {
            n += 1;
            black_box(signing::sign(
                SECRET,
                now,
                "nonce",
                "POST",
                "/v1/payments",
                BODY,
            ))
        })
    });
    let limits = Limits::new(
        Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
    );
    let mut k = 0u32;
    g.bench_function("rate_limits_ip_merchant_payer", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let ip = IpAddr::V4(Ipv4Addr::from(k % 10_000));
            limits.ip.check(black_box(&ip)).unwrap();
            limits.merchant.check(&u128::from(k % 16)).unwrap();
            limits.payer.check(&u128::from(k % 10_000)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
