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

criterion_group!(benches, bench);
criterion_main!(benches);
