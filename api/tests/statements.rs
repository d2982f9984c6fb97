//! Channel statements (issue #17) from the real channel-sim: after card payments and refunds
//! through payd, the channel serves its record of each of its dates as an Alipay trade bill
//! and as a WeChat Pay bill — GBK by default, CRLF, the rows under the channel's own date —
//! and payd's parser (`engine::statement`) reads them back to exactly what the channel did.

use crate::common::*;
use engine::statement::{parse, Format, RowKind};
use serde_json::json;

fn fetch(sim: &Sim, date: &str, format: &str, charset: Option<&str>) -> Response {
    let q = match charset {
        Some(c) => format!("/statements?date={date}&format={format}&charset={c}"),
        None => format!("/statements?date={date}&format={format}"),
    };
    try_request(&sim.addr("bank"), "GET", &q, &[], b"").unwrap()
}

#[test]
fn the_channel_serves_its_dates_in_both_layouts_and_they_parse_back() {
    let sim = Sim::start(&[r#"bank={"fee_rate_ppm":2000,"business_date":"2026-12-01"}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(&p, r#"{"name":"茶馆","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");

    // The channel's 2026-12-01: three charges and a refund of 10.00 of the first.
    let paid: Vec<String> = ["100.00", "32.50", "0.01"]
        .iter()
        .enumerate()
        .map(|(i, amount)| {
            let v = card_pay(&p, &shop.key, &format!("s-{i}"), amount, &token);
            assert_eq!(v["status"], "succeeded", "{v}");
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    let refund = |payment: &str, body: &str| {
        let r = p.post(
            &shop.key,
            &format!("/v1/payments/{payment}/refunds"),
            None,
            body,
        );
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        let id = r.json()["id"].as_str().unwrap().to_string();
        assert_eq!(
            settled_at(&p, &shop.key, &format!("/v1/refunds/{id}"))["status"],
            "succeeded"
        );
    };
    refund(&paid[0], r#"{"amount":"10.00","out_refund_no":"r-0"}"#);
    // The channel's next day: a charge, and the rest of the second payment refunded.
    sim.put("bank", json!({"business_date": "2026-12-02"}));
    assert_eq!(
        card_pay(&p, &shop.key, "s-3", "50.00", &token)["status"],
        "succeeded"
    );
    refund(&paid[1], r#"{"out_refund_no":"r-1"}"#);

    // The channel's own record: request ids and references to check the rows against.
    let records = sim.records("bank");
    let charge = |n: usize| {
        records
            .iter()
            .filter(|r| r["kind"] == "charge")
            .nth(n)
            .unwrap()
    };

    let day1 = fetch(&sim, "2026-12-01", "alipay", None);
    assert_eq!(day1.status, 200);
    assert_eq!(day1.header("content-type"), Some("text/csv; charset=GBK"));
    assert!(std::str::from_utf8(&day1.body).is_err(), "GBK, not UTF-8");
    assert!(day1.body.windows(2).any(|w| w == b"\r\n"), "CRLF");
    let s = parse(&day1.body, Format::Alipay).unwrap();
    assert_eq!(s.date, "2026-12-01");
    assert_eq!(s.account, "2088102170000156");
    let got: Vec<(RowKind, i64, i64)> = s.rows.iter().map(|r| (r.kind, r.amount, r.fee)).collect();
    // Fees at 0.2 % half up: 0.20, 0.065 → 0.07, 0.00002 → 0.00; the refund of a tenth
    // returns 0.02 of the first's fee.
    assert_eq!(
        got,
        [
            (RowKind::Charge, 10_000, 20),
            (RowKind::Charge, 3_250, 7),
            (RowKind::Charge, 1, 0),
            (RowKind::Refund, 1_000, 2),
        ]
    );
    for (i, row) in s.rows.iter().take(3).enumerate() {
        assert_eq!(row.out_trade_no, charge(i)["request_id"].as_str().unwrap());
        assert_eq!(
            row.channel_reference,
            charge(i)["channel_ref"].as_str().unwrap()
        );
    }
    let back = &s.rows[3];
    assert_eq!(back.out_trade_no, s.rows[0].out_trade_no);
    assert_eq!(back.channel_reference, s.rows[0].channel_reference);
    assert!(back.out_refund_no.as_deref().unwrap().starts_with("re_"));

    // The next day in WeChat Pay's layout, UTF-8 on request: the whole 32.50 refunded
    // returns the whole of its fee.
    let day2 = fetch(&sim, "2026-12-02", "wechat", Some("utf-8"));
    assert_eq!(day2.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = String::from_utf8(day2.body.clone()).unwrap();
    assert!(text.starts_with("交易时间,公众账号ID,商户号"), "{text}");
    let s = parse(&day2.body, Format::Wechat).unwrap();
    let got: Vec<(RowKind, i64, i64)> = s.rows.iter().map(|r| (r.kind, r.amount, r.fee)).collect();
    assert_eq!(
        got,
        [(RowKind::Charge, 5_000, 10), (RowKind::Refund, 3_250, 7)]
    );
    assert_eq!(
        s.rows[1].out_trade_no,
        charge(1)["request_id"].as_str().unwrap()
    );
    // The same dates in the other layouts and charsets read the same rows.
    let alipay2 = parse(
        &fetch(&sim, "2026-12-02", "alipay", Some("utf-8")).body,
        Format::Alipay,
    )
    .unwrap();
    assert_eq!(alipay2.rows, s.rows);
    let wechat1 = parse(
        &fetch(&sim, "2026-12-01", "wechat", None).body,
        Format::Wechat,
    )
    .unwrap();
    assert_eq!(wechat1.rows.len(), 4);

    // A date with nothing is an empty statement, still well formed; bad queries are refused.
    let empty = parse(
        &fetch(&sim, "2026-11-30", "alipay", None).body,
        Format::Alipay,
    )
    .unwrap();
    assert!(empty.rows.is_empty());
    for q in [
        "/statements?date=2026-13-01&format=alipay",
        "/statements?date=2026-12-01&format=unionpay",
        "/statements?date=2026-12-01&format=alipay&charset=latin1",
        "/statements?format=alipay",
    ] {
        let r = try_request(&sim.addr("bank"), "GET", q, &[], b"").unwrap();
        assert_eq!(r.status, 400, "{q}");
    }
    println!(
        "statements: 2026-12-01 {} bytes GBK (3 charges, 1 refund), 2026-12-02 {} bytes UTF-8 (1 charge, 1 refund), parsed back to the channel's own record",
        day1.body.len(),
        day2.body.len()
    );
}
