//! Positions and reserve (issue #16) against the real payd and channel-sim: reserve accounts
//! per clearing bank, channel receivables settling to the reserve after their lag (a
//! day-end step), two-phase reserve transfers, what is owed, and the coverage check — live,
//! frozen by each day-end, and failing (with its alert in the real Prometheus) when money
//! leaves the reserve without a booking, while payments are still served.

use crate::common::*;
use serde_json::Value;

fn positions(p: &Payd, date: Option<&str>) -> Value {
    let path = match date {
        Some(d) => format!("/v1/positions?date={d}"),
        None => "/v1/positions".to_string(),
    };
    let r = p.admin("GET", &path, "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn reserve<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["reserves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no reserve {name} in {v}"))
}

fn transfer(p: &Payd, body: &str) -> Response {
    p.admin("POST", "/v1/positions/transfers", body)
}

#[test]
fn reserves_receivables_transfers_and_coverage() {
    let sim = Sim::start(&[r#"bank={"fee_rate_ppm":2000}"#]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let ch = channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    assert_eq!(ch["settlement_lag_days"], 1, "{ch}");
    assert_eq!(ch["settlement_reserve_account_id"], RESERVE);

    // A second reserve account at another clearing bank, with a low-water mark.
    let r = p.admin(
        "POST",
        "/v1/positions/reserves",
        r#"{"name":"cmb","bank":"招商银行","low_water":"100.00"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let cmb = r.json();
    assert_eq!(cmb["balance"], "0.00");
    assert_eq!(cmb["below_low_water"], true);
    for (body, status, code) in [
        (r#"{"name":"cmb","bank":"again"}"#, 409, "reserve_exists"),
        (
            r#"{"name":"Bad Name","bank":"x"}"#,
            400,
            "invalid_parameter",
        ),
        (r#"{"name":"x","bank":""}"#, 400, "invalid_parameter"),
        (
            r#"{"name":"x","bank":"b","low_water":"-1"}"#,
            400,
            "invalid_amount",
        ),
        (r#"{"name":"x"}"#, 400, "parameter_missing"),
    ] {
        let r = p.admin("POST", "/v1/positions/reserves", body);
        assert_eq!(
            r.status,
            status,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), code, "{body}");
    }

    // Money in: a customer's deposit lands in the default reserve; a card payment leaves
    // the channel owing us 199.60 (200.00 less its 0.2 %), the merchant 198.80.
    let customer = funded_account(&p, "1000.00");
    let shop = merchant(&p, r#"{"name":"cards","fee_rate":"0.006"}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");
    assert_eq!(
        card_pay(&p, &shop.key, "c-1", "200.00", &token)["status"],
        "succeeded"
    );
    let day1 = open_date(&p);
    let v = positions(&p, None);
    assert_eq!(v["date"], day1.as_str());
    assert_eq!(v["closed"], false);
    assert_eq!(reserve(&v, "default")["balance"], "1000.00");
    assert_eq!(reserve(&v, "cmb")["balance"], "0.00");
    let bank = &v["channels"][0];
    assert_eq!(bank["channel"], "bank");
    assert_eq!(bank["receivable"], "199.60");
    assert_eq!(bank["settles_to"], "default");
    assert_eq!(bank["expected"].as_array().unwrap().len(), 1, "{bank}");
    assert_eq!(bank["expected"][0]["amount"], "199.60");
    assert_eq!(v["owed"]["customers"], "1000.00");
    assert_eq!(v["owed"]["merchants_pending"], "198.80");
    assert_eq!(v["owed"]["total"], "1198.80");
    assert_eq!(v["coverage"]["funds"], "1199.60");
    assert_eq!(v["coverage"]["surplus"], "0.80", "{v}");
    assert_eq!(v["coverage"]["covered"], true);
    // The one monitor firing: cmb is below its mark.
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{v}");
    assert_eq!(alerts[0]["monitor"], "reserve_low_water");
    assert_eq!(alerts[0]["subject"], "cmb");

    // A reserve transfer, two-phase: out of default now (in transit), into cmb when
    // confirmed. Bad ones change nothing.
    for (body, status, code) in [
        (
            r#"{"from":"default","to":"cmb","amount":"5000.00"}"#,
            409,
            "insufficient_reserve",
        ),
        (
            r#"{"from":"default","to":"nowhere","amount":"1.00"}"#,
            404,
            "resource_not_found",
        ),
        (
            r#"{"from":"cmb","to":"cmb","amount":"1.00"}"#,
            400,
            "invalid_parameter",
        ),
        (
            r#"{"from":"default","to":"cmb","amount":"1.001"}"#,
            400,
            "invalid_amount",
        ),
        (
            r#"{"from":"default","to":"cmb","amount":"0"}"#,
            400,
            "invalid_amount",
        ),
        (
            r#"{"from":"default","to":"cmb","amount":1}"#,
            400,
            "invalid_amount",
        ),
    ] {
        let r = transfer(&p, body);
        assert_eq!(
            r.status,
            status,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), code, "{body}");
    }
    let r = transfer(
        &p,
        r#"{"from":"default","to":"cmb","amount":"300.00","reference":"CMB-20261201-1"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let t = r.json();
    assert_eq!(t["status"], "pending");
    let id = t["id"].as_str().unwrap().to_string();
    let v = positions(&p, None);
    assert_eq!(reserve(&v, "default")["balance"], "700.00");
    assert_eq!(reserve(&v, "cmb")["balance"], "0.00");
    assert_eq!(v["in_transit"]["reserve_transfers"], "300.00");
    assert_eq!(v["coverage"]["funds"], "1199.60", "in transit still counts");
    assert_eq!(gl_balance(&p, "1002"), "300.00");
    let r = p.admin("POST", &format!("/v1/positions/transfers/{id}/confirm"), "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "confirmed");
    // Confirming again answers the same; voiding it now is refused.
    let again = p.admin("POST", &format!("/v1/positions/transfers/{id}/confirm"), "");
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (200, "confirmed".into())
    );
    let r = p.admin("POST", &format!("/v1/positions/transfers/{id}/void"), "");
    assert_eq!(r.status, 409, "{:?}", String::from_utf8_lossy(&r.body));
    // One voided: the money is back where it was.
    let voided = transfer(&p, r#"{"from":"default","to":"cmb","amount":"50.00"}"#).json();
    let vid = voided["id"].as_str().unwrap();
    let r = p.admin("POST", &format!("/v1/positions/transfers/{vid}/void"), "");
    assert_eq!(r.json()["status"], "voided");
    let v = positions(&p, None);
    assert_eq!(reserve(&v, "default")["balance"], "700.00");
    assert_eq!(reserve(&v, "cmb")["balance"], "300.00");
    assert_eq!(reserve(&v, "cmb")["below_low_water"], false);
    assert_eq!(v["in_transit"]["reserve_transfers"], "0.00");
    assert!(v["alerts"].as_array().unwrap().is_empty(), "{v}");
    let list = p.admin("GET", "/v1/positions/transfers", "").json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let audit = p.admin("GET", "/v1/audit?action=reserve_transfer.confirm", "");
    assert!(
        String::from_utf8_lossy(&audit.body).contains(&id),
        "{:?}",
        String::from_utf8_lossy(&audit.body)
    );
    assert_eq!(
        p.admin("GET", "/v1/positions/transfers/rtr_x", "").status,
        404
    );
    assert_eq!(p.req("GET", "/v1/positions", &[], b"").status, 401);
    assert_eq!(
        p.post(&shop.key, "/v1/positions/transfers", None, "{}")
            .status,
        401,
        "merchants do not move the reserve"
    );

    // Day 1 closes: covered, frozen. The channel settles T+1: nothing yet.
    assert_eq!(close_day(&p), day1);
    let frozen = positions(&p, Some(&day1));
    assert_eq!(frozen["closed"], true);
    assert_eq!(frozen["coverage"]["covered"], true);
    assert_eq!(frozen["channels"][0]["receivable"], "199.60");
    assert_eq!(frozen["channels"][0]["expected"][0]["amount"], "199.60");
    // Day 2's day-end settles day 1's takings to the default reserve.
    let day2 = close_day(&p);
    let v = positions(&p, None);
    assert_eq!(reserve(&v, "default")["balance"], "899.60");
    assert_eq!(v["channels"][0]["receivable"], "0.00");
    assert!(v["channels"][0]["expected"].as_array().unwrap().is_empty());
    assert_eq!(v["coverage"]["surplus"], "0.80");
    let entries = p.admin("GET", "/v1/gl/entries?gl_code=1101", "").json();
    assert!(
        entries["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "treasury"),
        "{entries}"
    );
    let d2 = p.admin("GET", &format!("/v1/gl/day_end/{day2}"), "").json();
    let step = d2["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "channel_settlement")
        .unwrap()
        .clone();
    assert!(
        step["detail"].as_str().unwrap().contains("199.60"),
        "{step}"
    );

    // A shortfall: 500.00 leaves the reserve with nothing owed less (a capital withdrawal
    // the platform did not have). Live: not covered. Payments are still served.
    let r = p.admin(
        "POST",
        "/v1/gl/entries",
        &format!(
            r#"{{"currency":"CNY","memo":"wrongly withdrawn","legs":[{{"account_id":"{EQUITY}","debit":"500.00"}},{{"account_id":"{RESERVE}","credit":"500.00"}}]}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let ops = Ops::start(&p, &tmp.path().join("ops"));
    let v = positions(&p, None);
    assert_eq!(v["coverage"]["covered"], false);
    assert_eq!(v["coverage"]["shortfall"], "499.20");
    assert_eq!(v["alerts"][0]["monitor"], "coverage");
    let payer = funded_account(&p, "10.00");
    assert_eq!(positions(&p, None)["coverage"]["shortfall"], "499.20");
    // 5.00 paid; its fee (0.03) is the platform's own money: 0.03 less short.
    let paid = pay(&p, &shop.key, "after-shortfall", "5.00", &payer);
    assert_eq!(paid.status, 201);
    assert_eq!(paid.json()["status"], "succeeded");
    assert_eq!(positions(&p, None)["coverage"]["shortfall"], "499.17");
    let _ = customer;
    // The day-end's coverage check fails (the rest of the day-end runs), and the alert
    // fires in Prometheus.
    let day3 = open_date(&p);
    assert_eq!(p.admin("POST", "/v1/gl/day_end", "{}").status, 202);
    let mut d = Value::Null;
    eventually(60, "the day-end finishes", || {
        d = p.admin("GET", &format!("/v1/gl/day_end/{day3}"), "").json();
        d["status"] != "running"
    });
    assert_eq!(d["status"], "failed", "{d:#}");
    for s in d["steps"].as_array().unwrap() {
        let expect = if s["name"] == "positions" {
            "failed"
        } else {
            "done"
        };
        assert_eq!(s["status"], expect, "{s}");
    }
    let failed = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "positions")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(failed.contains("SHORTFALL 499.17"), "{failed}");
    assert_eq!(positions(&p, Some(&day3))["coverage"]["covered"], false);
    eventually(60, "DayEndCoverageShortfall fires in Prometheus", || {
        ops.query(r#"ALERTS{alertname="DayEndCoverageShortfall",alertstate="firing"}"#)
            .len()
            == 1
    });
    eventually(
        30,
        "ReserveCoverageShortfall is pending (it fires after 2m)",
        || {
            !ops.query(r#"ALERTS{alertname="ReserveCoverageShortfall"}"#)
                .is_empty()
        },
    );
    let after = pay(&p, &shop.key, "during-alert", "1.00", &payer);
    assert_eq!(after.json()["status"], "succeeded", "payments still served");
    // Treasury tops the reserve up; the rerun day-end's check holds.
    seed_equity(&p, "600.00");
    let first_finish = d["finished_at"].clone();
    assert_eq!(
        p.admin("POST", "/v1/gl/day_end", &format!(r#"{{"date":"{day3}"}}"#))
            .status,
        202
    );
    eventually(60, "the rerun finishes", || {
        d = p.admin("GET", &format!("/v1/gl/day_end/{day3}"), "").json();
        d["status"] != "running" && d["finished_at"] != first_finish
    });
    // The check runs on the closed date's figures: the top-up is booked on the open date,
    // so the closed date stays short; the live figures are covered again.
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(positions(&p, None)["coverage"]["covered"], true);
    let next = close_day(&p);
    assert_eq!(positions(&p, Some(&next))["coverage"]["covered"], true);
    eventually(60, "DayEndCoverageShortfall resolves", || {
        ops.query(r#"ALERTS{alertname="DayEndCoverageShortfall",alertstate="firing"}"#)
            .is_empty()
    });
    println!(
        "positions: day 1 covered (surplus 0.80), day 2 settled 199.60 from the channel, day 3 short 499.17 (day-end failed at positions, DayEndCoverageShortfall fired, payments served), day 4 covered after a 600.00 top-up"
    );
}
