//! Merchant onboarding through review (issue #18, `../shared/FUNDS.md` "Customers and KYC"):
//! a merchant created with `"review": true` is `pending_review` and takes no payment until an
//! operator activates it; a rejected one never does; every decision is audited. Without
//! review a merchant is active at once, as v1 says.

use crate::common::*;
use serde_json::{json, Value};

const REVIEWED: &str = r#"{"name":"茶馆","review":true,"business_name":"杭州西湖茶馆有限公司","licence_number":"91330106MA2B3C4D5E","legal_representative":"王五"}"#;

fn view(p: &Payd, shop: &Shop) -> Value {
    let r = p.admin("GET", &format!("/v1/merchants/{}", shop.id), "");
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn reviewed_merchants_take_payments_only_once_activated() {
    let p = Payd::start();
    // v1: without review, active at once.
    let plain = merchant(&p, r#"{"name":"plain"}"#);
    let v = view(&p, &plain);
    assert_eq!(
        (&v["status"], &v["onboarding"]),
        (&json!("active"), &Value::Null)
    );

    // Review needs the business's details; they go only with review.
    for (body, code, param) in [
        (
            r#"{"name":"x","review":true,"business_name":"X Ltd","legal_representative":"Li"}"#,
            "parameter_missing",
            "licence_number",
        ),
        (
            r#"{"name":"x","review":true,"business_name":"X Ltd","licence_number":"91330106MA2B3C4D5I","legal_representative":"Li"}"#,
            "invalid_parameter",
            "licence_number",
        ),
        (
            r#"{"name":"x","review":true,"business_name":" ","licence_number":"91330106MA2B3C4D5E","legal_representative":"Li"}"#,
            "invalid_parameter",
            "business_name",
        ),
        (
            r#"{"name":"x","business_name":"X Ltd"}"#,
            "invalid_parameter",
            "business_name",
        ),
    ] {
        let r = p.admin("POST", "/v1/merchants", body);
        assert_eq!(
            r.status,
            400,
            "{body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            (r.error_code().as_str(), &r.json()["error"]["param"]),
            (code, &json!(param)),
            "{body}"
        );
    }

    let shop = merchant(&p, REVIEWED);
    let v = view(&p, &shop);
    assert_eq!(v["status"], "pending_review");
    assert_eq!(v["onboarding"]["licence_number"], "91330106MA2B3C4D5E");
    assert_eq!(v["onboarding"]["decided_by"], Value::Null);
    let payer = funded_account(&p, "100.00");
    let r = pay(&p, &shop.key, "o-1", "10.00", &payer);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "merchant_inactive"),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(p.balance(&payer), "100.00", "nothing moved");
    // The merchant cannot activate itself.
    let r = p.post(
        &shop.key,
        &format!("/v1/merchants/{}/activate", shop.id),
        None,
        "",
    );
    assert_eq!(r.status, 401);

    let r = p.admin("POST", &format!("/v1/merchants/{}/activate", shop.id), "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "active");
    assert!(r.json()["onboarding"]["decided_by"]
        .as_str()
        .unwrap()
        .starts_with("admin:"));
    let r = pay(&p, &shop.key, "o-1", "10.00", &payer);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "succeeded");
    assert_eq!(p.balance(&payer), "90.00");
    // Decided once.
    for path in ["activate", "reject"] {
        let r = p.admin(
            "POST",
            &format!("/v1/merchants/{}/{path}", shop.id),
            r#"{"reason":"again"}"#,
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (409, "merchant_not_pending_review"),
            "{path}"
        );
    }
    let r = p.admin("POST", &format!("/v1/merchants/{}/activate", plain.id), "");
    assert_eq!(r.error_code(), "merchant_not_pending_review");

    // Another rejected: with a reason, and never takes a payment.
    let other = merchant(&p, REVIEWED);
    let r = p.admin(
        "POST",
        &format!("/v1/merchants/{}/reject", other.id),
        r#"{"reason":""}"#,
    );
    assert_eq!(
        (r.status, &r.json()["error"]["param"]),
        (400, &json!("reason"))
    );
    let r = p.admin(
        "POST",
        &format!("/v1/merchants/{}/reject", other.id),
        r#"{"reason":"the licence does not match the business name"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        (&r.json()["status"], &r.json()["onboarding"]["reason"]),
        (
            &json!("rejected"),
            &json!("the licence does not match the business name")
        )
    );
    let r = pay(&p, &other.key, "o-2", "1.00", &payer);
    assert_eq!(r.error_code(), "merchant_inactive");
    assert_eq!(p.balance(&payer), "90.00");

    // Both decisions in the audit log, with before and after.
    for action in ["merchant.activate", "merchant.reject"] {
        let r = p.admin("GET", &format!("/v1/audit?action={action}"), "");
        let entries = r.json()["data"].as_array().unwrap().clone();
        assert_eq!(entries.len(), 1, "{action}: {entries:?}");
        assert_eq!(entries[0]["before"]["status"], "pending_review");
    }
}

/// The merchant's agreement (issue #18): fees, settlement cycle and payment methods,
/// versioned; each payment records the version it was taken under, and a method the
/// agreement does not enable is refused before anything moves.
#[test]
fn each_payment_records_the_agreement_version_it_was_taken_under() {
    let p = Payd::start();
    let shop = merchant(&p, r#"{"name":"shop","fee_rate":"0.006"}"#);
    let v = view(&p, &shop);
    assert_eq!(
        v["agreement"],
        json!({"version": 1, "payment_methods": ["balance", "bank_card"]})
    );
    let payer = funded_account(&p, "1000.00");
    let first = pay(&p, &shop.key, "v1", "100.00", &payer).json();
    assert_eq!(
        (&first["agreement_version"], &first["fee"]),
        (&json!(1), &json!("0.60"))
    );

    // New fees: version 2, for payments from now on.
    let patch = |body: &str| p.admin("PATCH", &format!("/v1/merchants/{}", shop.id), body);
    let r = patch(r#"{"fee_rate":"0.01","settlement_cycle_days":2}"#);
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["agreement"]["version"], 2);
    let second = pay(&p, &shop.key, "v2", "100.00", &payer).json();
    assert_eq!(
        (&second["agreement_version"], &second["fee"]),
        (&json!(2), &json!("1.00"))
    );
    // A change outside the agreement (the category, the payout minimum) is no new version.
    let r = patch(r#"{"min_payout":"10.00"}"#);
    assert_eq!(r.json()["agreement"]["version"], 2);
    // The same terms again: no new version either.
    let r = patch(r#"{"fee_rate":"0.01"}"#);
    assert_eq!(r.json()["agreement"]["version"], 2);

    // Methods: card only (version 3); a balance payment is refused, nothing moves.
    for bad in [
        r#"{"payment_methods":[]}"#,
        r#"{"payment_methods":["cash"]}"#,
        r#"{"payment_methods":["balance","balance"]}"#,
    ] {
        let r = patch(bad);
        assert_eq!(
            (r.status, &r.json()["error"]["param"]),
            (400, &json!("payment_methods")),
            "{bad}"
        );
    }
    let r = patch(r#"{"payment_methods":["bank_card"]}"#);
    assert_eq!(
        r.json()["agreement"],
        json!({"version": 3, "payment_methods": ["bank_card"]})
    );
    let r = pay(&p, &shop.key, "v3", "100.00", &payer);
    assert_eq!(
        (
            r.status,
            r.error_code().as_str(),
            &r.json()["error"]["param"]
        ),
        (
            400,
            "payment_method_not_enabled",
            &json!("payment_method.type")
        )
    );
    assert_eq!(p.balance(&payer), "800.00");

    // The history: every version with its terms and who made it; payments keep theirs.
    let list = p
        .admin("GET", &format!("/v1/merchants/{}/agreements", shop.id), "")
        .json();
    let rows: Vec<(u64, String, u64, Vec<Value>, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(v["created_by"].as_str().unwrap().starts_with("admin:"));
            (
                v["version"].as_u64().unwrap(),
                v["fee_rate"].as_str().unwrap().to_string(),
                v["settlement_cycle_days"].as_u64().unwrap(),
                v["payment_methods"].as_array().unwrap().clone(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                1,
                "0.006".into(),
                1,
                vec![json!("balance"), json!("bank_card")],
                false
            ),
            (
                2,
                "0.01".into(),
                2,
                vec![json!("balance"), json!("bank_card")],
                false
            ),
            (3, "0.01".into(), 2, vec![json!("bank_card")], true),
        ]
    );
    let auth = format!("Bearer {}", shop.key);
    let again = p.req(
        "GET",
        &format!("/v1/payments/{}", first["id"].as_str().unwrap()),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(again.json()["agreement_version"], 1);
}
