//! What parsing a channel statement costs (issue #17): a 100,000-row Alipay trade bill and
//! a 100,000-row WeChat Pay bill, in GBK as the channels send them, decoded and parsed
//! strictly (every row checked, the totals checked against the rows), and 100,000 rows
//! matched against the platform's items (`engine::recon`); and a 1,000,000-row Alipay bill
//! parsed. Target: 1M rows parsed and matched in under a minute (the whole run, through
//! payd's services: `payd bench recon`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::gl::BusinessDate;
use engine::recon::{reconcile, Item, ItemStatus};
use engine::statement::{parse, write, Charset, Format, Row, RowKind, Statement};

const ROWS: usize = 100_000;

fn statement(format: Format, rows: usize) -> Statement {
    Statement {
        format,
        account: "2088102170000156".into(),
        date: "2026-12-01".into(),
        rows: (0..rows)
            .map(|i| Row {
                kind: if i % 10 == 9 {
                    RowKind::Refund
                } else {
                    RowKind::Charge
                },
                channel_reference: format!("20261201220014{i:014}"),
                out_trade_no: format!("pay_0190{i:028x}"),
                out_refund_no: (i % 10 == 9).then(|| format!("re_0190{i:028x}")),
                amount: 100 + (i as i64 * 7919) % 100_000,
                fee: 1 + (i as i64 % 60),
                time: "2026-12-01 10:00:01".into(),
                subject: "龙井茶（特级）".into(),
            })
            .collect(),
    }
}

fn statements(c: &mut Criterion) {
    let mut g = c.benchmark_group("statement");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, format) in [("alipay", Format::Alipay), ("wechat", Format::Wechat)] {
        let bytes = write(
            &statement(format, ROWS),
            "2026-12-02",
            "2026年12月02日 09:12:34",
            Charset::Gbk,
        );
        g.bench_function(format!("parse_{name}_gbk_100k_rows"), |b| {
            b.iter(|| parse(black_box(&bytes), format).unwrap().rows.len())
        });
    }
    // Matching: the statement's rows against the platform's items for them (every one
    // matches: the join's full work, no mismatch shortcut).
    let rows = statement(Format::Alipay, ROWS).rows;
    let items: Vec<Item> = rows
        .iter()
        .map(|r| Item {
            kind: r.kind,
            request_id: match r.kind {
                RowKind::Refund => r.out_refund_no.clone().unwrap_or_default(),
                RowKind::Charge => r.out_trade_no.clone(),
            },
            channel_reference: Some(r.channel_reference.clone()),
            amount: r.amount,
            fee: r.fee,
            status: ItemStatus::Succeeded,
            date: BusinessDate(20_788),
        })
        .collect();
    g.bench_function("reconcile_100k_rows", |b| {
        b.iter(|| {
            let out = reconcile(black_box(&rows), items.clone(), BusinessDate(20_788), 3);
            assert_eq!(out.matched.len(), ROWS);
        })
    });
    // A million rows (178 MiB in GBK): the parse is linear in the rows.
    const MILLION: usize = 1_000_000;
    g.throughput(Throughput::Elements(MILLION as u64));
    let bytes = write(
        &statement(Format::Alipay, MILLION),
        "2026-12-02",
        "2026年12月02日 09:12:34",
        Charset::Gbk,
    );
    g.bench_function("parse_alipay_gbk_1m_rows", |b| {
        b.iter(|| parse(black_box(&bytes), Format::Alipay).unwrap().rows.len())
    });
    g.finish();
}

criterion_group!(benches, statements);
criterion_main!(benches);
