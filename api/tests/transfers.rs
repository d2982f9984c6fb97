//! `POST /v1/transfers/batch` against the real payd: one result per transfer, each applied on
//! its own, idempotent per id across a kill -9, merchants limited to their own balance.

use crate::common::*;
use serde_json::{json, Value};

fn batch(p: &Payd, token: &str, transfers: Value) -> Response {
    p.post(
        token,
        "/v1/transfers/batch",
        None,
        &json!({ "transfers": transfers }).to_string(),
    )
}

fn statuses(r: &Response) -> Vec<(String, String, String)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
                x["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn t(id: &str, from: &str, to: &str, amount: &str) -> Value {
    json!({"id": id, "debit_account_id": from, "credit_account_id": to, "amount": amount, "currency": "CNY"})
}

#[test]
fn each_transfer_gets_its_own_result_and_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = Payd::start_in(dir.path(), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    let a = funded_account(&p, "10.00");
    let b = funded_account(&p, "0.01");
    let frozen = funded_account(&p, "1.00");
    assert_eq!(
        p.admin(
            "PATCH",
            &format!("/v1/accounts/{frozen}"),
            r#"{"status":"frozen"}"#
        )
        .status,
        200
    );
    let r = batch(
        &p,
        ADMIN,
        json!([
            t("t1", &a, &b, "3.00"),
            t("t2", &a, &b, "8.00"), // only 7.00 left: refused, nothing else is
            t("t3", &b, &a, "0.01"),
            t("t4", &a, &frozen, "1.00"),
            t("t1", &a, &b, "3.00"), // the same id twice in one batch
            t("t5", &a, "acct_00000000000000000000000000000001", "1.00"),
            t("t6", &a, &b, "1.001"),
            t("t7", &a, &a, "1.00"),
            {"id": "t8", "debit_account_id": a, "credit_account_id": b, "amount": "1.00", "currency": "XXX"},
            t("", &a, &b, "1.00"),
            t("t9", &a, &b, "2.00"),
        ]),
    );
    let expected = [
        ("t1", "created", ""),
        ("t2", "failed", "insufficient_funds"),
        ("t3", "created", ""),
        ("t4", "failed", "account_frozen"),
        ("t1", "failed", "duplicate_id_in_batch"),
        ("t5", "failed", "unknown_account"),
        ("t6", "failed", "invalid_amount"),
        ("t7", "failed", "same_account"),
        ("t8", "failed", "invalid_currency"),
        ("", "failed", "invalid_parameter"),
        ("t9", "created", ""),
    ];
    let got = statuses(&r);
    assert_eq!(
        got,
        expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(p.balance(&a), "5.01");
    assert_eq!(p.balance(&b), "5.00");
    // The same ids again: `exists`, nothing moves; a new one in the same batch applies.
    let again = batch(
        &p,
        ADMIN,
        json!([
            t("t1", &a, &b, "3.00"),
            t("t2", &a, &b, "1.00"),
            t("t9", &a, &b, "2.00")
        ]),
    );
    assert_eq!(
        statuses(&again),
        vec![
            ("t1".into(), "exists".into(), "".into()),
            ("t2".into(), "created".into(), "".into()),
            ("t9".into(), "exists".into(), "".into()),
        ]
    );
    assert_eq!(p.balance(&a), "4.01");
    // Acknowledged means durable: kill -9, restart, retry the whole batch.
    p.kill9();
    let p = Payd::start_in(dir.path(), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    assert_eq!(p.balance(&a), "4.01");
    assert_eq!(p.balance(&b), "6.00");
    let retried = batch(
        &p,
        ADMIN,
        json!([t("t1", &a, &b, "3.00"), t("t9", &a, &b, "2.00")]),
    );
    assert_eq!(
        statuses(&retried)
            .into_iter()
            .map(|(_, s, _)| s)
            .collect::<Vec<_>>(),
        ["exists", "exists"]
    );
    assert_eq!(p.balance(&a), "4.01");
}

#[test]
fn a_merchant_pays_out_of_its_own_balance_only_and_bad_batches_are_refused_whole() {
    let p = Payd::start();
    // T+0 and no payout account: the payment is available after the day-end, and stays.
    let shop = merchant(
        &p,
        r#"{"name":"payouts","fee_rate":"0","settlement_cycle_days":0}"#,
    );
    let customer = funded_account(&p, "20.00");
    let payee = funded_account(&p, "0.01");
    assert_eq!(pay(&p, &shop.key, "o1", "10.00", &customer).status, 201);
    let available = p
        .admin("GET", &format!("/v1/merchants/{}", shop.id), "")
        .json()["available_account_id"]
        .as_str()
        .unwrap()
        .to_string();
    close_day(&p);
    assert_eq!(p.balance(&available), "10.00");
    // Not out of pending (its v1 account_id): only available is paid out.
    let r = batch(
        &p,
        &shop.key,
        json!([t("p0", &shop.account, &payee, "1.00")]),
    );
    assert_eq!(statuses(&r)[0].2, "unknown_account");
    let r = batch(
        &p,
        &shop.key,
        json!([
            t("p1", &available, &payee, "4.00"),
            t("p2", &customer, &payee, "1.00"),
        ]),
    );
    assert_eq!(
        statuses(&r),
        vec![
            ("p1".into(), "created".into(), "".into()),
            ("p2".into(), "failed".into(), "unknown_account".into()),
        ]
    );
    assert_eq!(p.balance(&available), "6.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    assert_eq!(p.balance(&customer), "10.00");
    // A merchant's ids are its own: the operator's "p1" is another transfer.
    let admin = batch(&p, ADMIN, json!([t("p1", &customer, &payee, "1.00")]));
    assert_eq!(statuses(&admin)[0].1, "created");

    // Refused whole, with the usual error shape.
    let empty = batch(&p, ADMIN, json!([]));
    assert_eq!(
        (empty.status, empty.error_code()),
        (400, "invalid_parameter".into())
    );
    let too_many: Vec<Value> = (0..8_191)
        .map(|i| t(&format!("x{i}"), &customer, &payee, "0.01"))
        .collect();
    let r = batch(&p, ADMIN, Value::Array(too_many));
    assert_eq!(
        (r.status, r.error_code()),
        (400, "invalid_parameter".into())
    );
    let r = p.post(
        ADMIN,
        "/v1/transfers/batch",
        None,
        r#"{"transfers": [{"id": 5}]}"#,
    );
    assert_eq!(r.status, 400);
    let r = p.post(ADMIN, "/v1/transfers/batch", None, "{not json");
    assert_eq!((r.status, r.error_code()), (400, "invalid_json".into()));
    let r = p.post(
        "sk_wrong",
        "/v1/transfers/batch",
        None,
        r#"{"transfers": []}"#,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        p.balance(&customer),
        "9.00",
        "nothing moved for the refused batches"
    );

    // A full batch of 8,190 is taken (the body is ~1.3 MB, above the 64 KiB default limit
    // of other routes) and each transfer applies.
    let full: Vec<Value> = (0..8_190)
        .map(|i| t(&format!("full-{i}"), &customer, &payee, "0.001"))
        .collect();
    let r = batch(&p, ADMIN, Value::Array(full));
    let results = statuses(&r);
    assert_eq!(results.len(), 8_190);
    assert!(results.iter().all(|(_, _, c)| c == "invalid_amount"));
    let rich = funded_account(&p, "100.00");
    let full: Vec<Value> = (0..8_190)
        .map(|i| t(&format!("ok-{i}"), &rich, &payee, "0.01"))
        .collect();
    let r = batch(&p, ADMIN, Value::Array(full));
    let results = statuses(&r);
    assert_eq!(results.len(), 8_190);
    let created = results.iter().filter(|(_, s, _)| s == "created").count();
    assert_eq!(created, 8_190, "{:?}", &results[..4]);
    assert_eq!(p.balance(&rich), "18.10");
    assert_eq!(p.balance(&customer), "9.00");
}
