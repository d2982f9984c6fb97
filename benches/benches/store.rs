//! Durable commit through the group-commit writer: one synced `WriteBatch` per group, for
//! groups of 1, 64 and 1,024 transfer units, next to raw RocksDB synced batches of the same
//! size. Real disk, real fsync: expect noise on a shared machine. Also the WAL record codec
//! alone (framing, CRC-32, bincode) for one payment's journal entry.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::{
    Account, AccountId, Currency, Effect, PaymentParties, Timestamp, Transfer, TransferId,
    TransferKind,
};
use std::hint::black_box;
use storage::codec::{self, Kind};
use storage::{CommitUnit, JournalEntry, Store, StoreOptions};

fn wal_record(c: &mut Criterion) {
    let entry = JournalEntry {
        seq: 123_456_789,
        effects: vec![Effect::Posted(Transfer::payment(
            TransferId(u128::MAX / 3),
            PaymentParties {
                payer: AccountId(u128::MAX / 5),
                merchant: AccountId(u128::MAX / 7),
                fee_account: AccountId::platform(engine::PlatformRole::FeeIncome, 156),
            },
            Currency::CNY,
            12_34,
            7,
            Timestamp(1_764_000_000_000_000_000),
        ))],
    };
    let bytes = codec::encode(Kind::Journal, &entry);
    let mut g = c.benchmark_group("wal_record");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode_payment_entry", |b| {
        b.iter(|| codec::encode(Kind::Journal, black_box(&entry)))
    });
    g.bench_function("decode_payment_entry", |b| {
        b.iter(|| codec::decode::<JournalEntry>(Kind::Journal, black_box(&bytes)).unwrap())
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path().join("store"), StoreOptions::default()).unwrap();
    let accounts = (0..1_024u128)
        .map(|i| {
            Effect::AccountCreated(Account::new(
                AccountId(i),
                Currency::CNY,
                i64::MAX / 4,
                Timestamp(0),
            ))
        })
        .collect();
    store
        .commit_blocking(CommitUnit {
            effects: accounts,
            ..CommitUnit::default()
        })
        .unwrap();
    let mut next_id = 1u128;

    let mut g = c.benchmark_group("durable_commit");
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    for group in [1usize, 64, 1_024] {
        g.throughput(Throughput::Elements(group as u64));
        g.bench_with_input(
            BenchmarkId::new("group_commit", group),
            &group,
            |b, &group| {
                b.iter(|| {
                    // Submit a whole group before waiting, so the writer takes it as one batch.
                    let acks: Vec<_> = (0..group)
                        .map(|k| {
                            next_id += 1;
                            let mut t = Transfer::between(
                                TransferId(next_id),
                                TransferKind::Transfer,
                                AccountId(k as u128),
                                AccountId((k as u128 + 1) % 1_024),
                                Currency::CNY,
                                1,
                                Timestamp(0),
                            );
                            // As the ledger writes them: each leg names its GL account.
                            for p in &mut t.postings {
                                p.gl = Some(engine::gl::GlAccount::CustomerBalances);
                            }
                            store.submit(CommitUnit::effect(Effect::Posted(t))).unwrap()
                        })
                        .collect();
                    for ack in acks {
                        ack.blocking_recv().unwrap().unwrap();
                    }
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("raw_rocksdb_synced_batch", group),
            &group,
            |b, &group| {
                let raw = dir.path().join(format!("raw-{group}"));
                let mut o = rocksdb::Options::default();
                o.create_if_missing(true);
                let db = rocksdb::DB::open(&o, &raw).unwrap();
                let mut w = rocksdb::WriteOptions::default();
                w.set_sync(true);
                let value = vec![7u8; 200];
                let mut key = 0u64;
                b.iter(|| {
                    let mut batch = rocksdb::WriteBatch::default();
                    for _ in 0..group {
                        key += 1;
                        batch.put(key.to_be_bytes(), &value);
                    }
                    db.write_opt(batch, &w).unwrap();
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, wal_record, bench);
criterion_main!(benches);
