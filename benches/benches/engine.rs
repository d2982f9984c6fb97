//! Pure engine costs: parsing money, validating and applying transfers in the batch state
//! machine. No I/O: these bound what the actors and the store add on top.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::money::parse_amount;
use engine::{
    AccountId, Command, Currency, Ledger, PaymentParties, Timestamp, Transfer, TransferId,
};
use std::hint::black_box;

const ACCOUNTS: u128 = 100_000;

fn ledger() -> Ledger {
    let mut l = Ledger::new();
    let creates: Vec<Command> = (0..ACCOUNTS)
        .map(|i| Command::CreateAccount {
            id: AccountId(i),
            currency: Currency::CNY,
            credit_limit: 1_000_000_000_000,
        })
        .collect();
    for chunk in creates.chunks(engine::state_machine::BATCH_COMMANDS_MAX) {
        l.apply_batch(chunk, Timestamp(0));
    }
    l
}

fn payments(n: usize, first_id: u128) -> Vec<Command> {
    (0..n)
        .map(|i| {
            let i = i as u128;
            let parties = PaymentParties {
                payer: AccountId((i * 7_919) % ACCOUNTS),
                merchant: AccountId((i * 104_729 + 1) % ACCOUNTS),
                fee_account: AccountId(ACCOUNTS - 1),
            };
            Command::Transfer(Transfer::payment(
                TransferId(first_id + i),
                parties,
                Currency::CNY,
                10_000,
                60,
                Timestamp(0),
            ))
        })
        .filter(|c| match c {
            Command::Transfer(t) => t.validate().is_ok(),
            _ => true,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("money");
    g.bench_function("parse_amount", |b| {
        b.iter(|| parse_amount(black_box("12345.67"), Currency::CNY))
    });
    g.bench_function("format_minor", |b| {
        b.iter(|| engine::money::format_minor(black_box(1_234_567), Currency::CNY))
    });
    g.finish();

    // An id's text form both ways (a batch request parses two a transfer and renders one),
    // beside what the standard library's integer parsing and formatting cost for the same.
    let mut g = c.benchmark_group("ids");
    let text = "acct_0190f3a2b4c5d6e7f8091a2b3c4d5e6f";
    g.bench_function("account_id_parse", |b| {
        b.iter(|| engine::AccountId::parse(black_box(text)))
    });
    g.bench_function("std_from_str_radix_reference", |b| {
        b.iter(|| {
            let hex = black_box(text).strip_prefix("acct_")?;
            (hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| u128::from_str_radix(hex, 16).ok())
                .flatten()
        })
    });
    // Ids as a batch request brings them: each one different, so whether a digit is a
    // letter cannot be predicted from the last id (one fixed text, above, lets the branch
    // predictor learn it).
    let varied: Vec<String> = (0..4_096u128)
        .map(|i| {
            let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            engine::AccountId(mixed).to_string()
        })
        .collect();
    g.throughput(Throughput::Elements(varied.len() as u64));
    g.bench_function("account_id_parse_4096_different", |b| {
        b.iter(|| {
            varied
                .iter()
                .filter(|t| engine::AccountId::parse(black_box(t)).is_some())
                .count()
        })
    });
    g.throughput(Throughput::Elements(1));
    let id = engine::AccountId::parse(text).expect("a valid id");
    g.bench_function("account_id_to_string", |b| {
        b.iter(|| black_box(id).to_string())
    });
    g.bench_function("std_format_reference", |b| {
        b.iter(|| format!("acct_{:032x}", black_box(id).0))
    });
    g.finish();

    let mut g = c.benchmark_group("state_machine");
    let batch = payments(8_000, 1 << 64);
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("apply_batch_payments", |b| {
        b.iter_batched(
            ledger,
            |mut l| l.apply_batch(black_box(&batch), Timestamp(1)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Risk scoring of one payment with every kind of rule on, 100k payers and 10k IPs in the
/// velocity memory (issue #5: risk plus routing ≤ 20 µs of CPU per payment).
fn risk(c: &mut Criterion) {
    use engine::risk::*;
    const SEC: u64 = 1_000_000_000;
    let rules = RiskRules {
        review_at: 50,
        reject_at: 80,
        amounts: vec![AmountRule {
            category: Some("gaming".into()),
            currency: Currency::CNY,
            above_minor: 100_000,
            points: 40,
        }],
        velocity: vec![
            VelocityRule {
                subject: Subject::Payer,
                window_secs: 600,
                max_count: 10,
                max_amount_minor: Some(1_000_000),
                points: 50,
            },
            VelocityRule {
                subject: Subject::Ip,
                window_secs: 3_600,
                max_count: 100,
                max_amount_minor: None,
                points: 30,
            },
            VelocityRule {
                subject: Subject::Device,
                window_secs: 3_600,
                max_count: 50,
                max_amount_minor: None,
                points: 30,
            },
        ],
        new_account: Some(AgeRule {
            younger_than_secs: 86_400,
            points: 20,
        }),
        new_card: None,
        unusual_hours: Some(HourRule {
            from_hour: 1,
            to_hour: 5,
            points: 10,
        }),
        unusual_currency: vec![CurrencyRule {
            category: None,
            usual: vec![Currency::CNY],
            points: 20,
        }],
        blocked_accounts: (0..1_000u128).map(|i| AccountId(1 << 100 | i)).collect(),
        blocked_bins: [411_111u32].into_iter().collect(),
        blocked_ips: ["10.6.6.6".parse().unwrap()].into_iter().collect(),
        subjects_max: 1_000_000,
    };
    let mut risk = RiskEngine::new(rules);
    let devices: Vec<String> = (0..10_000).map(|d| format!("device-{d}")).collect();
    let mut n = 0u64;
    let mut next = move || {
        n += 1;
        let k = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (n, k)
    };
    let mut g = c.benchmark_group("risk");
    g.throughput(Throughput::Elements(1));
    g.bench_function("assess_payment", |b| {
        b.iter(|| {
            let (n, k) = next();
            let input = RiskInput {
                at: Timestamp(1_764_000_000 * SEC + n * 10_000_000),
                merchant_category: "gaming",
                amount_minor: (k % 200_000) as i64 + 1,
                currency: Currency::CNY,
                payer: Some(AccountId(u128::from(k % 100_000))),
                payer_created_at: Some(Timestamp(1_700_000_000 * SEC)),
                card: None,
                ip: Some(std::net::IpAddr::from([
                    10,
                    1,
                    (k >> 8) as u8 % 40,
                    k as u8,
                ])),
                device: Some(&devices[(k % 10_000) as usize]),
            };
            black_box(risk.assess(black_box(&input)))
        })
    });
    g.finish();
}

/// Routing one card payment among 10 channels with live health (issue #5's budget for risk
/// plus routing is 20 µs of CPU per payment).
fn routing(c: &mut Criterion) {
    use engine::routing::*;
    const SEC: u64 = 1_000_000_000;
    let specs: Vec<ChannelSpec> = (0..10u32)
        .map(|i| ChannelSpec {
            name: format!("bank_{i}"),
            methods: vec![Method::BankCard],
            currencies: vec![Currency::CNY, Currency::USD],
            fee_rate_ppm: 3_000 + i * 500,
            fee_fixed_minor: i64::from(i),
            min_minor: 100,
            max_minor: 10_000_000,
            daily_limit_minor: i64::MAX,
            priority: 10 - i,
            weight: i + 1,
            enabled: true,
            inflight_max: 1_000,
        })
        .collect();
    let mut health: Vec<ChannelHealth> = (0..10)
        .map(|_| ChannelHealth::new(BreakerConfig::default()))
        .collect();
    let at = 1_764_000_000 * SEC;
    for (i, h) in health.iter_mut().enumerate() {
        for k in 0..200u64 {
            let result = if k % (i as u64 + 2) == 0 {
                CallResult::Failed
            } else {
                CallResult::Answered
            };
            h.finish(
                Timestamp(at - 20 * SEC + k * 100_000_000),
                result,
                1_000 + k,
                0,
                0,
            );
        }
    }
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(1));
    for (name, policy) in [
        ("cost", Policy::Cost),
        ("success_rate", Policy::SuccessRate),
        ("weighted_split", Policy::WeightedSplit),
    ] {
        g.bench_function(name, |b| {
            let mut draw = 0u64;
            b.iter(|| {
                draw = draw.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut candidates: Vec<Candidate> = specs
                    .iter()
                    .zip(health.iter_mut())
                    .map(|(spec, health)| Candidate { spec, health })
                    .collect();
                let req = RouteRequest {
                    method: Method::BankCard,
                    currency: Currency::CNY,
                    amount_minor: 12_345,
                    at: Timestamp(at),
                    draw,
                };
                black_box(route(&mut candidates, black_box(&req), policy))
            })
        });
    }
    g.finish();
}

/// The GL's cost per payment (issue #15: at most 1 µs): booking a three-leg payment's
/// effect in the GL book, as the store's writer does for every journal entry (each leg's
/// balance and its date's turnover).
fn gl_turnover(c: &mut Criterion) {
    use engine::gl::{BusinessDate, GlAccount, GlBook};
    let parties = PaymentParties {
        payer: AccountId(1),
        merchant: AccountId(2),
        fee_account: AccountId(3),
    };
    let mut t = Transfer::payment(
        TransferId(1),
        parties,
        Currency::CNY,
        10_000,
        60,
        Timestamp(0),
    );
    for (p, gl) in t.postings.iter_mut().zip([
        GlAccount::CustomerBalances,
        GlAccount::MerchantAvailable,
        GlAccount::FeeIncome,
    ]) {
        p.gl = Some(gl);
    }
    t.accounting_date = Some(BusinessDate(20_788));
    let effect = engine::Effect::Posted(t);
    let mut book = GlBook::default();
    let mut g = c.benchmark_group("gl");
    g.throughput(Throughput::Elements(1));
    g.bench_function("book_payment_3_legs", |b| {
        b.iter(|| {
            book.apply(black_box(&effect), &mut |_| None)
                .expect("a payment books")
        })
    });
    g.finish();
}

criterion_group!(benches, bench, risk, routing, gl_turnover);
criterion_main!(benches);
