//! Credit lines (issue #18, `../shared/FUNDS.md` "Credit lines") against the real payd: a
//! line lent to an identity-verified customer, drawn by payments, billed at the day-end of
//! its billing day, partly repaid, overdue for 10 business days (a late fee, interest half
//! up each day), then repaid in full — every figure equal to the table below, worked out by
//! hand — with the trial balance holding at every day-end.

use crate::common::*;
use serde_json::{json, Value};

/// A customer verified to KYC level 2 (phone by code, identity at identity-sim), with
/// `deposit` in its balance account: (customer id, account id).
fn verified_customer(p: &Payd, sms: &SmsSim, phone: &str, deposit: &str) -> (String, String) {
    let r = p.admin(
        "POST",
        "/v1/customers",
        &json!({"name": "李雷", "phone": phone, "id_number": "11010519491231002X"}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let account = r.json()["account_id"].as_str().unwrap().to_string();
    let r = p.admin(
        "POST",
        &format!("/v1/customers/{id}/phone_verification"),
        "",
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let otp = r.json()["id"].as_str().unwrap().to_string();
    let code = sms.last_code(phone);
    let r = p.admin(
        "POST",
        &format!("/v1/customers/{id}/phone_verification/check"),
        &json!({"otp_id": otp, "code": code}).to_string(),
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    let r = p.admin(
        "POST",
        &format!("/v1/customers/{id}/identity_verification"),
        "{}",
    );
    assert_eq!(r.json()["kyc_level"], 2, "{:?}", r.json());
    let r = p.admin(
        "POST",
        &format!("/v1/accounts/{account}/deposits"),
        &json!({ "amount": deposit }).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    (id, account)
}

fn draw(p: &Payd, key: &str, otn: &str, amount: &str, line: &str) -> Value {
    let body = json!({
        "out_trade_no": otn, "amount": amount, "currency": "CNY",
        "payment_method": {"type": "credit", "credit_line_id": line},
    });
    let r = p.post(key, "/v1/payments", None, &body.to_string());
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn line(p: &Payd, id: &str) -> Value {
    let r = p.admin("GET", &format!("/v1/credit_lines/{id}"), "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn bill(p: &Payd, id: &str) -> Value {
    let r = p.admin("GET", &format!("/v1/credit_lines/{id}/bills"), "");
    assert_eq!(r.status, 200);
    r.json()["data"][0].clone()
}

fn repay(p: &Payd, id: &str, amount: &str) -> Response {
    p.admin(
        "POST",
        &format!("/v1/credit_lines/{id}/repayments"),
        &json!({ "amount": amount }).to_string(),
    )
}

#[test]
fn a_line_drawn_billed_partly_repaid_overdue_ten_days_and_repaid_matches_the_hand_table() {
    let sms = SmsSim::start();
    let idv = IdentitySim::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = sms.env();
    env.extend(idv.env());
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Payd::start_in(&tmp.path().join("data"), &env);
    // The lender's money behind the line (coverage: merchants are owed what credit paid).
    seed_equity(&p, "1000.00");
    // Credit is a payment method the merchant's agreement enables.
    let shop = merchant(
        &p,
        r#"{"name":"shop","fee_rate":"0.006","payment_methods":["balance","credit"]}"#,
    );
    let plain = merchant(&p, r#"{"name":"plain"}"#);

    // Only an identity-verified customer gets a line.
    let r = p.admin(
        "POST",
        "/v1/customers",
        r#"{"name":"王五","phone":"+8613500000009"}"#,
    );
    let unverified = r.json()["account_id"].as_str().unwrap().to_string();
    let open = open_date(&p);
    let day: u8 = open[8..10].parse().unwrap();
    let terms = |account: &str| {
        json!({"account_id": account, "limit": "1000.00", "billing_day": day, "grace_days": 3,
               "daily_interest_rate": "0.0005", "late_fee": "25.00", "min_due_rate": "0.1"})
        .to_string()
    };
    let r = p.admin("POST", "/v1/credit_lines", &terms(&unverified));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "kyc_level_insufficient")
    );
    let (_, account) = verified_customer(&p, &sms, "+8613500000001", "1000.00");
    let r = p.admin("POST", "/v1/credit_lines", &terms(&account));
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        (&r.json()["available"], &r.json()["status"]),
        (&json!("1000.00"), &json!("current"))
    );
    let r = p.admin("POST", "/v1/credit_lines", &terms(&account));
    assert_eq!(r.error_code(), "credit_line_exists");

    // Day 0 (the billing day): 500.00 and 200.00 drawn; 400.00 more is over the limit; a
    // merchant whose agreement does not enable credit refuses it.
    assert_eq!(
        draw(&p, &shop.key, "d-1", "500.00", &id)["status"],
        "succeeded"
    );
    let v = draw(&p, &shop.key, "d-2", "200.00", &id);
    assert_eq!(
        (
            &v["status"],
            &v["payment_method"]["type"],
            &v["payment_method"]["credit_line_id"]
        ),
        (&json!("succeeded"), &json!("credit"), &json!(id))
    );
    let v = draw(&p, &shop.key, "d-3", "400.00", &id);
    assert_eq!(
        (&v["status"], &v["failure_code"]),
        (&json!("failed"), &json!("credit_limit_exceeded"))
    );
    let body = json!({"out_trade_no": "p-1", "amount": "1.00", "currency": "CNY",
        "payment_method": {"type": "credit", "credit_line_id": id}});
    let r = p.post(&plain.key, "/v1/payments", None, &body.to_string());
    assert_eq!(r.error_code(), "payment_method_not_enabled");
    let l = line(&p, &id);
    assert_eq!(
        (&l["drawn"], &l["available"], &l["unbilled"]),
        (&json!("700.00"), &json!("300.00"), &json!("700.00"))
    );
    assert_eq!(p.balance(&shop.account), "695.80", "700.00 less 0.6 % fees");
    let d0 = close_day(&p);
    assert_eq!(d0, open);

    // The bill: 700.00, minimum 70.00 (10 %), due three business days on.
    let b = bill(&p, &id);
    assert_eq!(
        (&b["number"], &b["principal"], &b["min_due"], &b["status"]),
        (&json!(1), &json!("700.00"), &json!("70.00"), &json!("open"))
    );
    // Day 1: 50.00 repaid (less than the minimum).
    let r = repay(&p, &id, "50.00");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["applied"],
        json!({"fees": "0.00", "interest": "0.00", "principal": "50.00", "unbilled": "0.00"})
    );
    assert_eq!(p.balance(&account), "950.00");
    // Days 1 to 3: not past due (the due date's own day-end charges nothing).
    for _ in 1..=3 {
        close_day(&p);
        assert_eq!(line(&p, &id)["status"], "current");
    }
    // Days 4 to 13: overdue. By hand: on day 4 the late fee (the 70.00 minimum was not
    // paid) and each day 650.00 × 0.05 % = 0.325, half up 0.33.
    //  day | days past due | bucket | interest that day | interest so far | fees | balance
    let table: [(i32, &str, &str, &str, &str, &str); 10] = [
        (1, "1-30", "0.33", "0.33", "25.00", "675.33"),
        (2, "1-30", "0.33", "0.66", "25.00", "675.66"),
        (3, "1-30", "0.33", "0.99", "25.00", "675.99"),
        (4, "1-30", "0.33", "1.32", "25.00", "676.32"),
        (5, "1-30", "0.33", "1.65", "25.00", "676.65"),
        (6, "1-30", "0.33", "1.98", "25.00", "676.98"),
        (7, "1-30", "0.33", "2.31", "25.00", "677.31"),
        (8, "1-30", "0.33", "2.64", "25.00", "677.64"),
        (9, "1-30", "0.33", "2.97", "25.00", "677.97"),
        (10, "1-30", "0.33", "3.30", "25.00", "678.30"),
    ];
    for (days, bucket, _today, so_far, fees, balance) in table {
        close_day(&p);
        let l = line(&p, &id);
        let b = bill(&p, &id);
        assert_eq!(
            (
                l["days_past_due"].as_i64().unwrap() as i32,
                l["bucket"].as_str().unwrap(),
                b["interest"].as_str().unwrap(),
                b["fees"].as_str().unwrap(),
                l["balance"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            ),
            (days, bucket, so_far, fees, balance, "overdue"),
            "day {days} past due"
        );
        assert_eq!(gl_balance(&p, "4002"), so_far, "interest income");
        if days == 2 {
            // Draws are refused while overdue; nothing moves.
            let v = draw(&p, &shop.key, "d-4", "10.00", &id);
            assert_eq!(
                (&v["status"], &v["failure_code"]),
                (&json!("failed"), &json!("credit_line_overdue"))
            );
            assert_eq!(line(&p, &id)["available"], "0.00");
        }
    }
    // Repaid in full: fees, then interest, then principal. One cent more is refused.
    let r = repay(&p, &id, "678.31");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "repayment_exceeds_balance")
    );
    let r = repay(&p, &id, "678.30");
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["applied"],
        json!({"fees": "25.00", "interest": "3.30", "principal": "650.00", "unbilled": "0.00"})
    );
    let l = line(&p, &id);
    assert_eq!(
        (&l["balance"], &l["status"], &l["available"], &l["bucket"]),
        (
            &json!("0.00"),
            &json!("current"),
            &json!("1000.00"),
            &json!("current")
        )
    );
    let b = bill(&p, &id);
    assert_eq!(
        (&b["status"], &b["outstanding"], &b["paid"]),
        (
            &json!("paid"),
            &json!("0.00"),
            &json!({"principal": "700.00", "interest": "3.30", "fees": "25.00"})
        )
    );
    assert_eq!(p.balance(&account), "271.70", "1000 − 50 − 678.30");
    assert_eq!(gl_balance(&p, "1301"), "0.00", "nothing owed on credit");
    assert_eq!(gl_balance(&p, "4002"), "3.30");
    // Current again: it draws; a refund of the draw goes back to the line.
    let v = draw(&p, &shop.key, "d-5", "10.00", &id);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(line(&p, &id)["drawn"], "10.00");
    let r = p.post(
        &shop.key,
        &format!("/v1/payments/{}/refunds", v["id"].as_str().unwrap()),
        None,
        r#"{"amount":"10.00","out_refund_no":"back"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let l = line(&p, &id);
    assert_eq!(
        (&l["drawn"], &l["available"]),
        (&json!("0.00"), &json!("1000.00"))
    );
    close_day(&p);
}
