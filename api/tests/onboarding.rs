//! Merchant onboarding through review (issue #18, `../shared/FUNDS.md` "Customers and KYC"):
//! a merchant created with `"review": true` is `pending_review` and takes no payment until an
//! operator activates it; a rejected one never does; every decision is audited. Without
//! review a merchant is active at once, as v1 says.

mod common;

use common::*;
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
