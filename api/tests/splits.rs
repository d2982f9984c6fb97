//! Profit sharing (分账, issue #16) against the real payd (and channel-sim for a card
//! payment): shares by amount and by ratio after the fee, the merchant keeping the rest;
//! refunds taking back from each share pro rata and the completing refund exactly what is
//! left; bad splits refused with nothing changed; receivers settling like merchants.

use crate::common::*;
use serde_json::Value;

fn pay_split(p: &Payd, key: &str, otn: &str, amount: &str, payer: &str, splits: &str) -> Response {
    p.post(
        key,
        "/v1/payments",
        None,
        &format!(
            r#"{{"out_trade_no":"{otn}","amount":"{amount}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}},"splits":{splits}}}"#
        ),
    )
}

fn refund(p: &Payd, key: &str, payment: &str, amount: Option<&str>, no: &str) -> Value {
    let body = match amount {
        Some(a) => format!(r#"{{"amount":"{a}","out_refund_no":"{no}"}}"#),
        None => format!(r#"{{"out_refund_no":"{no}"}}"#),
    };
    let r = p.post(key, &format!("/v1/payments/{payment}/refunds"), None, &body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    v
}

fn money(c: i64) -> String {
    format!(
        "{}{}.{:02}",
        if c < 0 { "-" } else { "" },
        c.abs() / 100,
        c.abs() % 100
    )
}

/// FUNDS.md's case over HTTP: 2.50 split 50% / 45% gives 1.25 and 1.12, the merchant 0.13;
/// with a fee the shares come from what is left after it; the receivers' pending accounts
/// hold their shares, and the trial balance holds.
#[test]
fn shares_by_ratio_and_amount_after_the_fee_and_the_merchant_keeps_the_rest() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"market","fee_rate":"0"}"#);
    let a = merchant(&p, r#"{"name":"partner a"}"#);
    let b = merchant(&p, r#"{"name":"partner b"}"#);
    let payer = funded_account(&p, "1000.00");

    let r = pay_split(
        &p,
        &shop.key,
        "s-1",
        "2.50",
        &payer,
        &format!(
            r#"[{{"account_id":"{}","ratio":"0.50"}},{{"account_id":"{}","ratio":"0.45"}}]"#,
            a.account, b.account
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["fee"], "0.00");
    assert_eq!(v["net_amount"], "0.13");
    assert_eq!(v["splits"][0]["account_id"], a.account.as_str());
    assert_eq!(v["splits"][0]["amount"], "1.25");
    assert_eq!(v["splits"][1]["amount"], "1.12");
    assert_eq!(p.balance(&shop.account), "0.13");
    assert_eq!(p.balance(&a.account), "1.25");
    assert_eq!(p.balance(&b.account), "1.12");

    // 0.6 % of 100.00 is 0.60; 30 % of the 99.40 left is 29.82, and a fixed 10.00.
    let fee_shop = merchant(&p, r#"{"name":"fee shop","fee_rate":"0.006"}"#);
    let v = pay_split(
        &p,
        &fee_shop.key,
        "s-2",
        "100.00",
        &payer,
        &format!(
            r#"[{{"account_id":"{}","ratio":"0.3"}},{{"account_id":"{}","amount":"10.00"}}]"#,
            a.account, b.account
        ),
    )
    .json();
    assert_eq!(v["fee"], "0.60");
    assert_eq!(v["splits"][0]["amount"], "29.82");
    assert_eq!(v["splits"][1]["amount"], "10.00");
    assert_eq!(v["net_amount"], "59.58");
    assert_eq!(p.balance(&fee_shop.account), "59.58");
    assert_eq!(p.balance(&a.account), "31.07");
    assert_eq!(p.balance(&b.account), "11.12");
    // Read back, the payment says the same.
    let again = p
        .req(
            "GET",
            &format!("/v1/payments/{}", v["id"].as_str().unwrap()),
            &[("Authorization", &format!("Bearer {}", fee_shop.key))],
            b"",
        )
        .json();
    assert_eq!(again["splits"], v["splits"]);
    assert_eq!(again["net_amount"], "59.58");
    // The journal: one entry with the payer, the merchant, fee income and both receivers.
    let tb = p
        .admin("GET", "/v1/gl/trial_balance?currency=CNY", "")
        .json();
    assert_eq!(tb["balanced"], true, "{tb}");
    assert_eq!(gl_balance(&p, "2101"), "101.90");
    assert_eq!(gl_balance(&p, "4001"), "0.60");
}

/// Bad splits are refused with a clear error and change nothing: the payer's balance stays,
/// no payment is made, and the same out_trade_no then works with good splits.
#[test]
fn bad_splits_are_refused_and_change_nothing() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"market","fee_rate":"0.01"}"#);
    let a = merchant(&p, r#"{"name":"partner a"}"#);
    let customer = funded_account(&p, "5.00");
    let payer = funded_account(&p, "1000.00");
    let unknown = format!("acct_{:032x}", 0xdead_beefu128);
    let many: Vec<String> = (0..51)
        .map(|_| format!(r#"{{"account_id":"{}","amount":"0.01"}}"#, a.account))
        .collect();
    let cases = [
        // Σ ratios above 1.
        (
            format!(
                r#"[{{"account_id":"{}","ratio":"0.6"}},{{"account_id":"{}","ratio":"0.5"}}]"#,
                a.account, customer
            ),
            400,
            "invalid_splits",
        ),
        // Σ shares above the amount after the fee (100.00 − 1.00).
        (
            format!(r#"[{{"account_id":"{}","amount":"99.01"}}]"#, a.account),
            400,
            "invalid_splits",
        ),
        (
            format!(r#"[{{"account_id":"{}","ratio":"1.5"}}]"#, a.account),
            400,
            "invalid_splits",
        ),
        (
            format!(r#"[{{"account_id":"{}","ratio":"0"}}]"#, a.account),
            400,
            "invalid_splits",
        ),
        (
            format!(
                r#"[{{"account_id":"{}","amount":"1.00","ratio":"0.1"}}]"#,
                a.account
            ),
            400,
            "invalid_splits",
        ),
        (
            format!(r#"[{{"account_id":"{}"}}]"#, a.account),
            400,
            "invalid_splits",
        ),
        (
            format!(r#"[{{"account_id":"{}","amount":"1.001"}}]"#, a.account),
            400,
            "invalid_amount",
        ),
        (
            format!(r#"[{{"account_id":"{}","amount":"-1.00"}}]"#, a.account),
            400,
            "invalid_amount",
        ),
        // Not a merchant: split receivers are merchants.
        (
            format!(r#"[{{"account_id":"{customer}","amount":"1.00"}}]"#),
            400,
            "invalid_splits",
        ),
        // The paying merchant itself, and one receiver twice.
        (
            format!(r#"[{{"account_id":"{}","amount":"1.00"}}]"#, shop.account),
            400,
            "invalid_splits",
        ),
        (
            format!(
                r#"[{{"account_id":"{}","amount":"1.00"}},{{"account_id":"{}","amount":"2.00"}}]"#,
                a.account, a.account
            ),
            400,
            "invalid_splits",
        ),
        (format!("[{}]", many.join(",")), 400, "invalid_splits"),
        (
            format!(r#"[{{"account_id":"{unknown}","amount":"1.00"}}]"#),
            404,
            "resource_not_found",
        ),
        // Not an id but a card number: refused as one, and never echoed.
        (
            r#"[{"account_id":"4111111111111111","amount":"1.00"}]"#.to_string(),
            400,
            "card_number_not_allowed",
        ),
        (
            format!(r#"[{{"account_id":"{}","amount":1}}]"#, a.account),
            400,
            "invalid_parameter",
        ),
        (
            format!(
                r#"[{{"account_id":"{}","amount":"1.00","extra":true}}]"#,
                a.account
            ),
            400,
            "invalid_parameter",
        ),
    ];
    for (splits, status, code) in &cases {
        let r = pay_split(&p, &shop.key, "o-1", "100.00", &payer, splits);
        assert_eq!(
            r.status,
            *status,
            "{splits}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), *code, "{splits}");
        assert!(!String::from_utf8_lossy(&r.body).contains("4111111111111111"));
        let e = r.json();
        assert!(
            !e["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{e}"
        );
    }
    assert_eq!(p.balance(&payer), "1000.00");
    assert_eq!(p.balance(&a.account), "0.00");
    // Exactly the whole amount after the fee may be shared: the merchant keeps 0.00.
    let r = pay_split(
        &p,
        &shop.key,
        "o-1",
        "100.00",
        &payer,
        &format!(r#"[{{"account_id":"{}","amount":"99.00"}}]"#, a.account),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["net_amount"], "0.00");
    assert_eq!(p.balance(&payer), "900.00");
    assert_eq!(p.balance(&a.account), "99.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    // No splits is the same as none.
    let r = pay_split(&p, &shop.key, "o-2", "10.00", &payer, "[]");
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["splits"], serde_json::json!([]));
    assert_eq!(r.json()["net_amount"], "9.90");
}

/// Refunds after a split: each refund takes back from every share pro rata (floors on
/// cumulative amounts) and the fee half up; the refund that completes the payment takes
/// back exactly what is left. Over many payments with random amounts, ratios and refund
/// sequences, every account ends exactly where it started.
#[test]
fn refunds_take_back_each_share_pro_rata_and_the_last_exactly_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_RATE_PAYER_PER_S", "0"),
            ("RONGPAY_RATE_MERCHANT_PER_S", "0"),
        ],
    );
    let shop = merchant(&p, r#"{"name":"market","fee_rate":"0.006"}"#);
    let receivers: Vec<Shop> = (0..3)
        .map(|i| merchant(&p, &format!(r#"{{"name":"partner {i}"}}"#)))
        .collect();
    let payer = funded_account(&p, "100000.00");

    // The case by hand: 2.50, fee 0.02 (0.6 % half up), 50 % and 45 % of 2.48: 1.24, 1.11.
    let v = pay_split(
        &p,
        &shop.key,
        "hand",
        "2.50",
        &payer,
        &format!(
            r#"[{{"account_id":"{}","ratio":"0.5"}},{{"account_id":"{}","ratio":"0.45"}}]"#,
            receivers[0].account, receivers[1].account
        ),
    )
    .json();
    assert_eq!(v["fee"], "0.02");
    assert_eq!(v["splits"][0]["amount"], "1.24");
    assert_eq!(v["splits"][1]["amount"], "1.11");
    assert_eq!(v["net_amount"], "0.13");
    let id = v["id"].as_str().unwrap().to_string();
    // Half back: floor(1.24 × 1.25 / 2.50) = 0.62, floor(1.11 / 2) = 0.55, the fee 0.01.
    refund(&p, &shop.key, &id, Some("1.25"), "half");
    assert_eq!(p.balance(&receivers[0].account), "0.62");
    assert_eq!(p.balance(&receivers[1].account), "0.56");
    assert_eq!(p.balance(&shop.account), "0.06");
    // The rest: exactly what is left of each.
    refund(&p, &shop.key, &id, None, "rest");
    assert_eq!(p.balance(&receivers[0].account), "0.00");
    assert_eq!(p.balance(&receivers[1].account), "0.00");
    assert_eq!(p.balance(&shop.account), "0.00");
    assert_eq!(gl_balance(&p, "4001"), "0.00");

    // Random payments, splits and refund sequences; the test computes the expected parts
    // by FUNDS.md's rule and checks every balance after every refund.
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let fee_of = |amount: i64| (amount * 6_000 + 500_000) / 1_000_000;
    let mut expected = [0i64; 3];
    let mut shop_expected = 0i64;
    for n in 0..40 {
        let amount = 1 + (next() % 50_000) as i64;
        let fee = fee_of(amount);
        let k = 1 + (next() % 3) as usize;
        let mut parts = Vec::new();
        let mut ratio_left = 1_000_000u64;
        let mut shares = Vec::new();
        for r in receivers.iter().take(k) {
            let ppm = 1 + next() % (ratio_left / 2).max(1);
            ratio_left -= ppm;
            parts.push(format!(
                r#"{{"account_id":"{}","ratio":"0.{ppm:06}"}}"#,
                r.account
            ));
            shares.push((amount - fee) * ppm as i64 / 1_000_000);
        }
        let v = pay_split(
            &p,
            &shop.key,
            &format!("p-{n}"),
            &money(amount),
            &payer,
            &format!("[{}]", parts.join(",")),
        )
        .json();
        assert_eq!(v["status"], "succeeded", "{v}");
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(v["splits"][i]["amount"], money(*s), "payment {n}: {v}");
            expected[i] += s;
        }
        shop_expected += amount - fee - shares.iter().sum::<i64>();
        assert_eq!(
            cents(v["net_amount"].as_str().unwrap()),
            amount - fee - shares.iter().sum::<i64>()
        );
        // Refunds: a few partial ones, then (for most) the rest.
        let id = v["id"].as_str().unwrap().to_string();
        let mut refunded = 0i64;
        for j in 0..(next() % 4) {
            if refunded == amount {
                break;
            }
            let r = 1 + (next() as i64) % (amount - refunded);
            refund(&p, &shop.key, &id, Some(&money(r)), &format!("r-{j}"));
            for (i, s) in shares.iter().enumerate() {
                let back = s * (refunded + r) / amount - s * refunded / amount;
                expected[i] -= back;
            }
            let fee_back =
                fee_of_pro_rata(fee, refunded + r, amount) - fee_of_pro_rata(fee, refunded, amount);
            let shares_back: i64 = shares
                .iter()
                .map(|s| s * (refunded + r) / amount - s * refunded / amount)
                .sum();
            shop_expected -= r - fee_back - shares_back;
            refunded += r;
            for (i, rc) in receivers.iter().enumerate() {
                assert_eq!(
                    p.balance(&rc.account),
                    money(expected[i]),
                    "payment {n}, refund {j}, receiver {i}"
                );
            }
            assert_eq!(
                p.balance(&shop.account),
                money(shop_expected),
                "payment {n}, refund {j}"
            );
        }
        if n % 4 != 3 && refunded < amount {
            refund(&p, &shop.key, &id, None, "rest");
            for (i, s) in shares.iter().enumerate() {
                expected[i] -= s - s * refunded / amount;
            }
            let fee_back = fee - fee_of_pro_rata(fee, refunded, amount);
            let shares_back: i64 = shares.iter().map(|s| s - s * refunded / amount).sum();
            shop_expected -= (amount - refunded) - fee_back - shares_back;
            for (i, rc) in receivers.iter().enumerate() {
                assert_eq!(
                    p.balance(&rc.account),
                    money(expected[i]),
                    "payment {n} refunded whole, receiver {i}"
                );
            }
        }
    }
    assert_eq!(p.balance(&shop.account), money(shop_expected));
    let tb = p
        .admin("GET", "/v1/gl/trial_balance?currency=CNY", "")
        .json();
    assert_eq!(tb["balanced"], true, "{tb}");
    println!(
        "40 payments with splits: receivers hold {}, {}, {}; the merchant {}",
        money(expected[0]),
        money(expected[1]),
        money(expected[2]),
        money(shop_expected)
    );
}

/// round_half_up(fee × part / amount): the fee a refund returns, cumulatively.
fn fee_of_pro_rata(fee: i64, part: i64, amount: i64) -> i64 {
    (2 * fee * part + amount) / (2 * amount)
}

/// A card payment's splits through channel-sim, its refund back through the channel; then
/// the receivers settle like merchants: a T+0 receiver's share matures at the day-end and
/// its batch shows the share as negative splits (received), the payer's merchant's batch
/// as positive splits (given).
#[test]
fn card_payment_splits_and_receivers_settle_like_merchants() {
    let sim = Sim::start(&["bank"]);
    let tmp = tempfile::tempdir().unwrap();
    let p = Payd::start_in(&tmp.path().join("data"), &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
    channel(&p, "bank", &format!("http://{}", sim.addr("bank")), "0.002");
    let shop = merchant(
        &p,
        r#"{"name":"cards","fee_rate":"0.006","settlement_cycle_days":0}"#,
    );
    let partner = merchant(&p, r#"{"name":"partner","settlement_cycle_days":0}"#);
    let token = tokenize(&p, &shop.key, "4111111111111111");
    let r = p.post(
        &shop.key,
        "/v1/payments",
        None,
        &format!(
            r#"{{"out_trade_no":"c-1","amount":"200.00","currency":"CNY","payment_method":{{"type":"bank_card","card_token":"{token}"}},"splits":[{{"account_id":"{}","ratio":"0.25"}}]}}"#,
            partner.account
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let v = settled(&p, &shop.key, r.json()["id"].as_str().unwrap());
    assert_eq!(v["status"], "succeeded", "{v}");
    // Fee 1.20; 25 % of 198.80 = 49.70; the merchant keeps 149.10.
    assert_eq!(v["splits"][0]["amount"], "49.70");
    assert_eq!(v["net_amount"], "149.10");
    assert_eq!(p.balance(&shop.account), "149.10");
    assert_eq!(p.balance(&partner.account), "49.70");
    // A fifth back through the channel: 9.94 from the share, 0.24 of the fee.
    let id = v["id"].as_str().unwrap();
    let back = p.post(
        &shop.key,
        &format!("/v1/payments/{id}/refunds"),
        None,
        r#"{"amount":"40.00","out_refund_no":"c-1-r"}"#,
    );
    assert_eq!(
        back.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&back.body)
    );
    let back = settled_at(
        &p,
        &shop.key,
        &format!("/v1/refunds/{}", back.json()["id"].as_str().unwrap()),
    );
    assert_eq!(back["status"], "succeeded", "{back}");
    assert_eq!(p.balance(&partner.account), "39.76");
    assert_eq!(p.balance(&shop.account), "119.28");

    let date = close_day(&p);
    let report = |s: &Shop| {
        p.admin(
            "GET",
            &format!("/v1/reports/daily?date={date}&merchant_id={}", s.id),
            "",
        )
        .json()
    };
    let r = report(&shop);
    assert_eq!(r["splits"], "39.76", "{r}");
    assert_eq!(r["net"], "119.28", "{r}");
    let r = report(&partner);
    assert_eq!(r["splits_received"], "39.76", "{r}");
    assert_eq!(r["net"], "39.76", "{r}");
    // T+0: both matured at this day-end, pending to available.
    for (s, available, splits) in [(&shop, "119.28", "39.76"), (&partner, "39.76", "-39.76")] {
        let m = p
            .admin("GET", &format!("/v1/merchants/{}", s.id), "")
            .json();
        assert_eq!(m["balances"]["pending"], "0.00", "{m}");
        assert_eq!(m["balances"]["available"], available, "{m}");
        let list = p
            .admin("GET", &format!("/v1/settlements?merchant_id={}", s.id), "")
            .json();
        let batch = &list["data"][0];
        assert_eq!(batch["splits"], splits, "{batch}");
        assert_eq!(batch["net"], available, "{batch}");
        assert_eq!(batch["adjustments"], "0.00", "{batch}");
    }
    let tb = p
        .admin(
            "GET",
            &format!("/v1/gl/trial_balance?date={date}&currency=CNY"),
            "",
        )
        .json();
    assert_eq!(tb["balanced"], true, "{tb}");
}
