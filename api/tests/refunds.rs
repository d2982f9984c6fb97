//! Refunds over HTTP: partial and multiple, fee back pro rata to the cent, never above the
//! payment, once per out_refund_no, only of succeeded payments.

use crate::common::*;

fn post(p: &Payd, token: &str, path: &str, body: &str) -> Response {
    p.post(token, path, None, body)
}

fn balance(p: &Payd, account: &str) -> String {
    p.balance(account)
}

const FEES: &str = "acct_ffffffff00000000000000000002009c";

#[test]
fn partial_refunds_return_money_and_fee_exactly() {
    let p = Payd::start();
    let m = post(
        &p,
        ADMIN,
        "/v1/merchants",
        r#"{"name":"Refunds","fee_rate":"0.006"}"#,
    )
    .json();
    let (sk, shop) = (
        m["secret_key"].as_str().unwrap().to_string(),
        m["account_id"].as_str().unwrap().to_string(),
    );
    let payer = post(&p, ADMIN, "/v1/accounts", r#"{"currency":"CNY"}"#).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        &p,
        ADMIN,
        &format!("/v1/accounts/{payer}/deposits"),
        r#"{"amount":"100.00"}"#,
    );
    let body = format!(
        r#"{{"out_trade_no":"r-1","amount":"12.34","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#
    );
    let pay = post(&p, &sk, "/v1/payments", &body).json();
    let id = pay["id"].as_str().unwrap();
    let refunds = format!("/v1/payments/{id}/refunds");
    assert_eq!(
        (balance(&p, &payer), balance(&p, &shop), balance(&p, FEES)),
        ("87.66".into(), "12.27".into(), "0.07".into())
    );

    // 5.00 of 12.34: the fee share is 0.07 × 500/1234 = 0.028 → 0.03; the merchant gives 4.97.
    let r1 = post(
        &p,
        &sk,
        &refunds,
        r#"{"amount":"5.00","out_refund_no":"rf-1","reason":"broken cup"}"#,
    );
    assert_eq!(r1.status, 201, "{:?}", String::from_utf8_lossy(&r1.body));
    let r1 = r1.json();
    assert_eq!(
        (
            r1["status"].as_str(),
            r1["amount"].as_str(),
            r1["payment_id"].as_str()
        ),
        (Some("succeeded"), Some("5.00"), Some(id))
    );
    assert!(r1["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(
        (balance(&p, &payer), balance(&p, &shop), balance(&p, FEES)),
        ("92.66".into(), "7.30".into(), "0.04".into())
    );

    // The same out_refund_no again refunds nothing and answers the same refund.
    let again = post(
        &p,
        &sk,
        &refunds,
        r#"{"amount":"5.00","out_refund_no":"rf-1"}"#,
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], r1["id"]);
    assert_eq!(balance(&p, &payer), "92.66");

    let over = post(
        &p,
        &sk,
        &refunds,
        r#"{"amount":"7.35","out_refund_no":"rf-2"}"#,
    );
    assert_eq!(
        (over.status, over.error_code().as_str()),
        (400, "refund_exceeds_payment")
    );

    // No amount: the whole rest, 7.34; the fee comes back in full (0.03 + 0.04 = 0.07).
    let r2 = post(&p, &sk, &refunds, r#"{"out_refund_no":"rf-3"}"#).json();
    assert_eq!(r2["amount"], "7.34");
    assert_eq!(
        (balance(&p, &payer), balance(&p, &shop), balance(&p, FEES)),
        ("100.00".into(), "0.00".into(), "0.00".into())
    );
    let auth = format!("Bearer {sk}");
    let got = p
        .req(
            "GET",
            &format!("/v1/payments/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(got["refunded_amount"], "12.34");
    let none_left = post(
        &p,
        &sk,
        &refunds,
        r#"{"amount":"0.01","out_refund_no":"rf-4"}"#,
    );
    assert_eq!(
        (none_left.status, none_left.error_code().as_str()),
        (400, "refund_exceeds_payment")
    );

    // Only succeeded payments; only the owner (others get 404).
    let failed = post(
        &p,
        &sk,
        "/v1/payments",
        &body.replace("r-1", "r-2").replace("12.34", "1000.00"),
    )
    .json();
    assert_eq!(failed["status"], "failed");
    let r = post(
        &p,
        &sk,
        &format!("/v1/payments/{}/refunds", failed["id"].as_str().unwrap()),
        r#"{"out_refund_no":"x"}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "payment_not_refundable")
    );
    let other = post(&p, ADMIN, "/v1/merchants", r#"{"name":"Other"}"#).json();
    let r = post(
        &p,
        other["secret_key"].as_str().unwrap(),
        &refunds,
        r#"{"out_refund_no":"y"}"#,
    );
    assert_eq!(r.status, 404);
    for bad in [
        r#"{"out_refund_no":""}"#,
        r#"{"amount":"1.001","out_refund_no":"z"}"#,
        r#"{"amount":"-1","out_refund_no":"z"}"#,
        r#"{}"#,
    ] {
        assert_eq!(post(&p, &sk, &refunds, bad).status, 400, "{bad}");
    }
}
