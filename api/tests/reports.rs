//! Daily reports over HTTP (issue #15; `../shared/FUNDS.md`, "Reports"): every payment and
//! refund of the business date counted by status, method and channel, with fees, net and
//! success rate, for the platform and per merchant, as JSON and CSV; frozen by the day-end.

use crate::common::*;
use serde_json::Value;

fn report(p: &Payd, token: &str, query: &str) -> Response {
    let auth = format!("Bearer {token}");
    p.req(
        "GET",
        &format!("/v1/reports/daily{query}"),
        &[("Authorization", &auth)],
        b"",
    )
}

fn line(r: &Value, section: &str, key: &str) -> (u64, String) {
    let l = r[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == key)
        .unwrap_or_else(|| panic!("no {section}/{key} in {r}"));
    (
        l["count"].as_u64().unwrap(),
        l["amount"].as_str().unwrap().to_string(),
    )
}

/// Minor units of a decimal string with two decimals.
fn cents(text: &str) -> i64 {
    let negative = text.starts_with('-');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let v: i64 = digits.parse().unwrap();
    if negative {
        -v
    } else {
        v
    }
}

#[test]
fn daily_reports_count_every_payment_per_merchant_and_freeze_at_the_day_end() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.004");
    let a = merchant(&p, r#"{"name":"A","fee_rate":"0.01"}"#);
    let b = merchant(&p, r#"{"name":"B","fee_rate":"0.006"}"#);
    let payer = funded_account(&p, "200.00");
    let mut first = String::new();
    for (shop, otn, amount) in [
        (&a, "a1", "10.00"),
        (&a, "a2", "10.00"),
        (&b, "b1", "20.00"),
    ] {
        let r = pay(&p, &shop.key, otn, amount, &payer);
        assert_eq!(r.json()["status"], "succeeded", "{:?}", r.json());
        if otn == "a1" {
            first = r.json()["id"].as_str().unwrap().to_string();
        }
    }
    assert_eq!(
        pay(&p, &a.key, "a-big", "500.00", &payer).json()["status"],
        "failed"
    );
    let token = tokenize(&p, &a.key, "4111111111111111");
    assert_eq!(
        card_pay(&p, &a.key, "a-card", "30.00", &token)["status"],
        "succeeded"
    );
    let r = p.post(
        &a.key,
        &format!("/v1/payments/{first}/refunds"),
        None,
        r#"{"out_refund_no":"a1-r","amount":"4.00"}"#,
    );
    assert_eq!(r.json()["status"], "succeeded", "{:?}", r.json());
    let date = p.admin("GET", "/v1/gl/business_date", "").json()["business_date"]
        .as_str()
        .unwrap()
        .to_string();

    let all = report(&p, ADMIN, "").json();
    assert_eq!(all["date"], date.as_str());
    assert_eq!(all["merchant_id"], Value::Null);
    assert_eq!(all["frozen"], false);
    assert_eq!(line(&all, "payments", "succeeded"), (4, "70.00".into()));
    assert_eq!(line(&all, "payments", "failed"), (1, "500.00".into()));
    assert_eq!(line(&all, "by_method", "balance"), (3, "40.00".into()));
    assert_eq!(line(&all, "by_method", "card"), (1, "30.00".into()));
    assert_eq!(line(&all, "by_channel", "bank"), (1, "30.00".into()));
    assert_eq!(line(&all, "refunds", "succeeded"), (1, "4.00".into()));
    assert_eq!(all["success_rate"], "0.8000");
    assert_eq!(all["channel_fees"], "0.12", "0.4% of 30.00");
    // Per merchant: B had no refund, so its numbers are exact; A's and B's make the whole.
    let rb = report(&p, &b.key, "").json();
    assert_eq!(rb["merchant_id"], b.id.as_str());
    assert_eq!(line(&rb, "payments", "succeeded"), (1, "20.00".into()));
    assert_eq!(rb["fees"], "0.12");
    assert_eq!(rb["net"], "19.88");
    assert_eq!(rb["success_rate"], "1.0000");
    let ra = report(&p, ADMIN, &format!("?merchant_id={}", a.id)).json();
    assert_eq!(line(&ra, "payments", "succeeded"), (3, "50.00".into()));
    assert_eq!(ra["success_rate"], "0.7500");
    for field in ["fees", "net"] {
        assert_eq!(
            cents(all[field].as_str().unwrap()),
            cents(ra[field].as_str().unwrap()) + cents(rb[field].as_str().unwrap()),
            "{field}"
        );
    }
    // Net: succeeded − fees − refunds (the refund's fee part back).
    assert_eq!(
        cents(ra["net"].as_str().unwrap()),
        5_000 - cents(ra["fees"].as_str().unwrap()) - 400
    );
    // A merchant sees only its own; bad queries say why.
    assert_eq!(
        report(&p, &b.key, &format!("?merchant_id={}", a.id)).status,
        403
    );
    assert_eq!(report(&p, ADMIN, "?date=2026-02-30").status, 400);
    assert_eq!(report(&p, ADMIN, "?merchant_id=mch_x").status, 400);
    assert_eq!(report(&p, ADMIN, "?color=red").status, 400);
    assert_eq!(p.req("GET", "/v1/reports/daily", &[], b"").status, 401);
    // CSV.
    let auth = format!("Bearer {ADMIN}");
    let r = p.req(
        "GET",
        "/v1/reports/daily",
        &[("Authorization", &auth), ("Accept", "text/csv")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let csv = String::from_utf8(r.body.clone()).unwrap();
    assert!(csv.starts_with("section,key,count,amount\n"), "{csv}");
    assert!(csv.contains("payments,succeeded,4,70.00\n"), "{csv}");
    assert!(csv.contains("by_channel,bank,1,30.00\n"), "{csv}");
    assert!(csv.contains("success_rate,,,0.8000\n"), "{csv}");

    // The day-end freezes the reports: the same numbers, final, whatever happens after.
    assert_eq!(p.admin("POST", "/v1/gl/day_end", "{}").status, 202);
    eventually(60, "the day-end finishes", || {
        p.admin("GET", &format!("/v1/gl/day_end/{date}"), "").json()["status"] == "done"
    });
    let frozen = report(&p, ADMIN, &format!("?date={date}")).json();
    assert_eq!(frozen["frozen"], true);
    let strip = |mut v: Value| {
        v["frozen"] = Value::Null;
        v
    };
    assert_eq!(strip(frozen.clone()), strip(all.clone()));
    assert_eq!(
        pay(&p, &b.key, "b2", "5.00", &payer).json()["status"],
        "succeeded"
    );
    assert_eq!(report(&p, ADMIN, &format!("?date={date}")).json(), frozen);
    let next = report(&p, ADMIN, "").json();
    assert_ne!(next["date"], date.as_str());
    assert_eq!(line(&next, "payments", "succeeded"), (1, "5.00".into()));
    let rb_frozen = report(&p, &b.key, &format!("?date={date}")).json();
    assert_eq!(rb_frozen["frozen"], true);
    assert_eq!(rb_frozen["net"], "19.88");
}
