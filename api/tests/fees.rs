//! Merchant fees over HTTP (issue #16; `../shared/FUNDS.md`, "Merchant settlement"): a rate,
//! a fixed part, a minimum and a maximum, rounded half up, clamped, never above the payment;
//! stored with the payment; changed by `PATCH`; partial refunds return it pro rata and the
//! completing refund exactly the rest.

use crate::common::*;

fn fee_of(p: &Payd, shop: &Shop, otn: &str, amount: &str, payer: &str) -> (String, String) {
    let r = pay(p, &shop.key, otn, amount, payer);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    (
        v["fee"].as_str().unwrap().to_string(),
        v["net_amount"].as_str().unwrap().to_string(),
    )
}

#[test]
fn fees_follow_the_merchants_terms_at_the_rounding_edges() {
    let p = Payd::start();
    let payer = funded_account(&p, "100000.00");
    // Rate alone: 32.50 at 0.60% = 0.195 → 0.20; 0.01 at 1% → 0.00; 1.00 at 0.5% → 0.01.
    let plain = merchant(&p, r#"{"name":"plain","fee_rate":"0.006"}"#);
    assert_eq!(
        fee_of(&p, &plain, "a1", "32.50", &payer),
        ("0.20".into(), "32.30".into())
    );
    let one_pct = merchant(&p, r#"{"name":"one","fee_rate":"0.01"}"#);
    assert_eq!(fee_of(&p, &one_pct, "b1", "0.01", &payer).0, "0.00");
    let half = merchant(&p, r#"{"name":"half","fee_rate":"0.005"}"#);
    assert_eq!(fee_of(&p, &half, "c1", "1.00", &payer).0, "0.01");
    // Fixed part, minimum and maximum.
    let terms = merchant(
        &p,
        r#"{"name":"terms","fee_rate":"0.006","fee_fixed":"0.30","fee_min":"0.50","fee_max":"5.00"}"#,
    );
    let shown = p
        .admin("GET", &format!("/v1/merchants/{}", terms.id), "")
        .json();
    assert_eq!(
        (&shown["fee_fixed"], &shown["fee_min"], &shown["fee_max"]),
        (
            &serde_json::json!("0.30"),
            &serde_json::json!("0.50"),
            &serde_json::json!("5.00")
        )
    );
    assert_eq!(fee_of(&p, &terms, "d1", "1.00", &payer).0, "0.50"); // 0.31 → the minimum
    assert_eq!(fee_of(&p, &terms, "d2", "100.00", &payer).0, "0.90"); // 0.60 + 0.30
    assert_eq!(fee_of(&p, &terms, "d3", "10000.00", &payer).0, "5.00"); // 60.30 → the maximum
    assert_eq!(
        fee_of(&p, &terms, "d4", "0.20", &payer),
        ("0.20".into(), "0.00".into())
    );
    // Bad terms change nothing.
    for (body, param) in [
        (r#"{"name":"x","fee_fixed":"-0.01"}"#, "fee_fixed"),
        (r#"{"name":"x","fee_min":"0.001"}"#, "fee_min"),
        (
            r#"{"name":"x","fee_min":"2.00","fee_max":"1.00"}"#,
            "fee_min",
        ),
        (r#"{"name":"x","fee_max":"abc"}"#, "fee_max"),
    ] {
        let r = p.admin("POST", "/v1/merchants", body);
        assert_eq!(
            r.status,
            400,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["param"], param, "{body}");
    }
    // PATCH changes the terms for payments from now on; earlier payments keep their fee.
    let r = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", plain.id),
        r#"{"fee_rate":"0.01","fee_fixed":"0.10"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(fee_of(&p, &plain, "a2", "32.50", &payer).0, "0.43"); // 0.325 → 0.33 + 0.10
    let bad = p.admin(
        "PATCH",
        &format!("/v1/merchants/{}", plain.id),
        r#"{"fee_min":"9.00","fee_max":"1.00"}"#,
    );
    assert_eq!(bad.status, 400);
    let first = get(&p, &plain.key, "/v1/payments?out_trade_no=a1").json();
    assert_eq!(first["data"][0]["fee"], "0.20");
}

#[test]
fn partial_refunds_return_the_fee_pro_rata_and_the_last_one_the_rest() {
    let p = Payd::start();
    let payer = funded_account(&p, "1000.00");
    let shop = merchant(
        &p,
        r#"{"name":"refunds","fee_rate":"0.006","fee_fixed":"0.07"}"#,
    );
    let r = pay(&p, &shop.key, "r1", "33.33", &payer);
    assert_eq!(r.status, 201);
    let payment = r.json();
    // 33.33 × 0.6% = 0.19998 → 0.20, + 0.07.
    assert_eq!(payment["fee"], "0.27");
    let id = payment["id"].as_str().unwrap();
    let mut back = 0i64;
    for (n, amount) in ["10.00", "10.00", "13.33"].iter().enumerate() {
        let before = p.balance(&shop.account);
        let r = p.post(
            &shop.key,
            &format!("/v1/payments/{id}/refunds"),
            None,
            &format!(r#"{{"amount":"{amount}","out_refund_no":"rf-{n}"}}"#),
        );
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        let taken = cents(&before) - cents(&p.balance(&shop.account));
        // The merchant gives back the refund less the fee returned with it.
        back += cents(amount) - taken;
    }
    assert_eq!(back, 27, "the refunds returned exactly the fee");
}

fn cents(text: &str) -> i64 {
    let (units, frac) = text.split_once('.').unwrap_or((text, "0"));
    units.parse::<i64>().unwrap() * 100 + format!("{frac:0<2}")[..2].parse::<i64>().unwrap()
}

fn get(p: &Payd, key: &str, path: &str) -> Response {
    let auth = format!("Bearer {key}");
    p.req("GET", path, &[("Authorization", &auth)], b"")
}

/// A channel whose answer states its fee (channel-sim's `fee_rate_ppm`) is booked at that
/// fee, as the channel's expense, not at the rate payd was configured with for it.
#[test]
fn a_channel_that_reports_its_fee_is_booked_at_that_fee() {
    let sim = Sim::start(&[r#"acq={"fee_rate_ppm":3000}"#]);
    let p = Payd::start();
    channel(&p, "acq", &format!("http://{}", sim.addr("acq")), "0.002");
    let shop = merchant(&p, r#"{"name":"cards","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");
    let paid = card_pay(&p, &shop.key, "c1", "100.00", &token);
    let done = settled(&p, &shop.key, paid["id"].as_str().unwrap());
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["fee"], "0.60");
    // 100.00 at 0.3% = 0.30 by the channel's word (its configured 0.2% would be 0.20).
    let records = sim.records("acq");
    assert_eq!(records[0]["fee_minor"], 30, "{records:?}");
    let report = p.admin("GET", "/v1/reports/daily", "").json();
    assert_eq!(report["channel_fees"], "0.30", "{report}");
}
