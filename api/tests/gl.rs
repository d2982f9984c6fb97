//! The general ledger over HTTP (issue #15): the business date, set from the wall clock in
//! the configured time zone on the first start and kept across restarts.

mod common;

use common::*;

/// Today in `zone`, as `YYYY-MM-DD`.
fn today_in(zone: &str) -> String {
    jiff::Timestamp::now()
        .in_tz(zone)
        .unwrap()
        .date()
        .to_string()
}

/// The business date payd answers, checked against the wall clock in `zone` read just before
/// and just after (a test running across midnight there sees either day).
fn business_date(p: &Payd, zone: &str) -> String {
    let before = today_in(zone);
    let r = p.admin("GET", "/v1/gl/business_date", "");
    let after = today_in(zone);
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert!(v["closed_through"].is_null(), "no day-end yet: {v}");
    let date = v["business_date"].as_str().unwrap().to_string();
    assert!(
        date == before || date == after,
        "{date} is not today in {zone}"
    );
    date
}

#[test]
fn the_first_start_sets_the_business_date_from_the_clock_in_the_configured_zone() {
    let p = Payd::start();
    business_date(&p, "Asia/Shanghai");
    // The operator's route: no token, or a merchant's key, is refused.
    assert_eq!(p.req("GET", "/v1/gl/business_date", &[], b"").status, 401);
    let shop = merchant(&p, r#"{"name":"gl shop"}"#);
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "GET",
        "/v1/gl/business_date",
        &[("Authorization", &auth)],
        b"",
    );
    assert!(r.status == 401 || r.status == 403, "{}", r.status);
}

#[test]
fn the_zone_decides_the_first_date_and_a_restart_keeps_it() {
    // Kiritimati is UTC+14 and Pago Pago UTC-11: 25 hours apart, never the same date.
    let tmp = tempfile::tempdir().unwrap();
    let east = tmp.path().join("east");
    let env = |zone| [("RONGPAY_ADMIN_TOKEN", ADMIN), ("RONGPAY_TIMEZONE", zone)];
    let p = Payd::start_in(&east, &env("Pacific/Kiritimati"));
    let first = business_date(&p, "Pacific/Kiritimati");
    let west = Payd::start_in(&tmp.path().join("west"), &env("Pacific/Pago_Pago"));
    let other = business_date(&west, "Pacific/Pago_Pago");
    assert_ne!(first, other);
    // Only a day-end moves the business date: a restart with another zone keeps it.
    assert!(p.terminate().success());
    let again = Payd::start_in(&east, &env("Pacific/Pago_Pago"));
    let r = again.admin("GET", "/v1/gl/business_date", "");
    assert_eq!(r.json()["business_date"].as_str().unwrap(), first);
}

#[test]
fn an_unknown_zone_is_refused_before_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(tmp.path())
        .env("RONGPAY_TIMEZONE", "Mars/Olympus_Mons")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("timezone: unknown time zone \"Mars/Olympus_Mons\""),
        "{err}"
    );
}
