//! The merchant console (issue #19) in a real browser: Debian's headless Chromium driven by
//! Playwright's core from npm (`browser/console.mjs`), against the real payd and sms-sim. A
//! refunder signs in with the code sms-sim delivered, finds a payment by `out_trade_no`,
//! refunds part of it and downloads the day's CSV, whose bytes equal the API's; another
//! merchant's payment is not found; a viewer sees no refund button and a refund posted
//! anyway is refused; axe-core finds no serious accessibility violation. Then the refund,
//! the balances and the audit log are checked through the API. Screenshots of each step are
//! kept in `target/tmp/console-shots/`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use serde_json::{json, Value};

const REFUNDER: &str = "+8613900000001";
const VIEWER: &str = "+8613900000002";
const ADMIN_STAFF: &str = "+8613900000003";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../browser")
}

fn staff(p: &Payd, token: &str, merchant: &str, name: &str, phone: &str, role: &str) -> Value {
    let r = p.post(
        token,
        &format!("/v1/merchants/{merchant}/staff"),
        None,
        &json!({"name": name, "phone": phone, "role": role}).to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn merchant_staff_find_refund_and_download_in_chromium_and_roles_hold() {
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "browser/node_modules is missing: scripts/setup.sh test runs `npm ci --prefix browser`"
    );
    let sms = SmsSim::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = sms.env();
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = Payd::start_in(&tmp.path().join("data"), &env);
    let shop = merchant(&p, r#"{"name":"Tea House","fee_rate":"0.01"}"#);
    let other = merchant(&p, r#"{"name":"Other"}"#);

    // Staff: the merchant adds its refunder, the operator its viewer; phones are unique per
    // merchant, roles checked, other merchants' staff lists not found.
    let refunder = staff(&p, &shop.key, &shop.id, "王芳", REFUNDER, "refunder");
    assert_eq!(
        (&refunder["role"], &refunder["active"]),
        (&json!("refunder"), &json!(true))
    );
    assert_eq!(refunder["phone"], "+86139****0001");
    staff(&p, ADMIN, &shop.id, "李雷", VIEWER, "viewer");
    staff(&p, &shop.key, &shop.id, "张伟", ADMIN_STAFF, "admin");
    let r = p.post(
        &shop.key,
        &format!("/v1/merchants/{}/staff", shop.id),
        None,
        &json!({"name": "dup", "phone": REFUNDER, "role": "admin"}).to_string(),
    );
    assert_eq!(r.error_code(), "duplicate_staff_phone");
    let r = p.post(
        &shop.key,
        &format!("/v1/merchants/{}/staff", shop.id),
        None,
        &json!({"name": "x", "phone": "+8613900000009", "role": "owner"}).to_string(),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_parameter")
    );
    let auth = format!("Bearer {}", other.key);
    let r = p.req(
        "GET",
        &format!("/v1/merchants/{}/staff", shop.id),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);

    let payer = funded_account(&p, "500.00");
    let paid = pay(&p, &shop.key, "tea-100", "100.00", &payer).json();
    assert_eq!(paid["status"], "succeeded");
    pay(&p, &shop.key, "tea-20", "20.00", &payer);
    let foreign = funded_account(&p, "10.00");
    let theirs = pay(&p, &other.key, "other-1", "10.00", &foreign).json();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-shots");
    let _ = std::fs::remove_dir_all(&shots);
    let walk = json!({
        "base": format!("http://{}", p.addr), "merchant_id": shop.id,
        "refunder_phone": REFUNDER, "viewer_phone": VIEWER, "admin_phone": ADMIN_STAFF,
        "sms_sim": format!("http://{}", sms.addr), "out_trade_no": "tea-100",
        "foreign_payment": theirs["id"], "shots": shots,
    });
    let out = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .env("WALK", walk.to_string())
        .current_dir(browser_dir())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the walk failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    for want in [
        "sign-in",
        "refunder-code-sent",
        "found-by-out-trade-no",
        "refunded",
        "foreign-payment-not-found",
        "daily-csv",
        "webhooks-not-admin",
        "axe",
        "viewer-payment-without-refund",
        "viewer-refund-refused",
        "admin-new-secret-key",
    ] {
        assert!(names.contains(&want), "step {want} missing from {names:?}");
    }

    // The refund, through the API: 30.00 back to the payer, once.
    let id = paid["id"].as_str().unwrap();
    let auth = format!("Bearer {}", shop.key);
    let refunds = p
        .req(
            "GET",
            &format!("/v1/payments/{id}/refunds"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    let data = refunds["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{refunds}");
    assert_eq!(
        (&data[0]["amount"], &data[0]["status"]),
        (&json!("30.00"), &json!("succeeded"))
    );
    assert_eq!(data[0]["reason"], "one cup returned");
    assert_eq!(p.balance(&payer), "410.00");

    // The CSV the console downloaded is the API's, byte for byte.
    let daily = steps.iter().find(|s| s["step"] == "daily-csv").unwrap();
    let downloaded = std::fs::read(daily["file"].as_str().unwrap()).unwrap();
    let date = daily["date"].as_str().unwrap();
    let api = p.req(
        "GET",
        &format!("/v1/reports/daily?date={date}"),
        &[("Authorization", &auth), ("Accept", "text/csv")],
        b"",
    );
    assert_eq!(api.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&downloaded),
        String::from_utf8_lossy(&api.body)
    );
    assert!(String::from_utf8_lossy(&downloaded).contains("refunds,succeeded,1,30.00"));

    // Audited as the staff member: the sign-ins and the refund.
    let by = |action: &str| {
        let page = p
            .admin("GET", &format!("/v1/audit?action={action}"), "")
            .json();
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["actor"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let refunds_by = by("console.refund");
    assert_eq!(refunds_by.len(), 1, "{refunds_by:?}");
    assert!(refunds_by[0].starts_with("staff:stf_") && refunds_by[0].ends_with(&shop.id));
    assert!(by("console.sign_in").len() >= 3);
    assert_eq!(by("staff.create").len(), 3);

    // The key the admin made in the console works.
    let made = steps
        .iter()
        .find(|s| s["step"] == "admin-new-secret-key")
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Bearer {made}");
    let r = p.req(
        "GET",
        &format!("/v1/payments/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "the console's new key authenticates");
}
