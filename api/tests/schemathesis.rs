//! schemathesis (from PyPI, installed by scripts/setup.sh) fuzzes the live payd from its own
//! `/openapi.json`: as the operator and as a merchant, with every check on (schemathesis'
//! default):
//! no 5xx; every answer conforms to the document (status codes, content types, bodies,
//! headers), including 405s for undeclared methods; what the document calls invalid is
//! refused, and what it calls valid is accepted.
//!
//! Two settings (`CONFIG`) say what the document cannot: a valid request may meet state
//! that refuses it (a duplicate: 409; its idempotency key used with another request: 422,
//! documented), and on the operations whose amounts take the scale of a currency known only
//! at run time (an account's, a payment's), a schema-valid amount can be over-precise
//! ("12.345" is refused for CNY, fine for KWD; JSON Schema cannot tie a pattern to another
//! value), so acceptance of valid data is not asserted there; nor where a resident id number
//! is taken (its check character and birth date are beyond a pattern), nor for coupon stocks (a
//! valid_until in the future, after valid_from) and credit lines and orders (amounts at the
//! currency's scale), nor for staff (a name with a card-number-like run of digits is refused),
//! nor for the checkout's and the console's forms (a valid form needs the page's token, which
//! only a browser that loaded the page has); every other check is.
//! payd runs with an SMS gateway, an identity service and a risk rules file, so that no route
//! answers "not configured".

use std::process::Command;

use crate::common::*;

const CONFIG: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
include-path-regex = "^/v1/(accounts|accounts/\\{id\\}/deposits|payments|payments/\\{id\\}/refunds|channels|channels/\\{id\\})$"
include-method-regex = "^(POST|PATCH)$"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path-regex = "^/v1/(customers|customers/\\{id\\}/identity_verification|coupon_stocks|credit_lines|credit_lines/\\{id\\}/repayments|orders|merchants/\\{id\\}/staff)$"
include-method-regex = "^POST$"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path-regex = "^/(checkout|console)(/|$)"
checks.positive_data_acceptance.enabled = false

# Links from the schema's dependencies only: the pages' 303s (`Location: /console`,
# `/checkout/{id}`) are for browsers, and links inferred from them name parameters the
# target operations do not have.
[phases.stateful.inference]
algorithms = ["dependency-analysis"]
"#;

/// The schemathesis command: on PATH, or in the scripts directory of the `python3` that
/// scripts/setup.sh installed it with.
fn schemathesis() -> String {
    if Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "schemathesis".to_string();
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .expect("python3 is on PATH");
    format!(
        "{}/schemathesis",
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

fn run(p: &Payd, token: &str) {
    // schemathesis keeps a cache in its working directory: not in the source tree.
    let workdir = tempfile::tempdir().unwrap();
    std::fs::write(workdir.path().join("schemathesis.toml"), CONFIG).unwrap();
    let out = Command::new(schemathesis())
        .current_dir(workdir.path())
        .args(["run", &format!("http://{}/openapi.json", p.addr)])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // No --checks: schemathesis runs every check unless told otherwise (and a --checks
        // list would override CONFIG's per-operation setting).
        .args(["--max-examples", "40", "--seed", "20261125", "--no-color"])
        .output()
        .expect("schemathesis is installed by scripts/setup.sh (pip install schemathesis)");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("generated") || l.contains("failures") || l.contains("passed"))
        .collect();
    println!("schemathesis as {}: {}", &token[..4], summary.join(" | "));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schemathesis_finds_no_server_error_and_no_nonconforming_answer() {
    // With an SMS gateway: without one, one-time codes are a documented 503.
    let sms = SmsSim::start();
    let idv = IdentitySim::start();
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("risk.toml");
    std::fs::write(&rules, "review_at = 60\nreject_at = 90\n").unwrap();
    let mut env: Vec<(&str, String)> = sms.env();
    env.extend(idv.env());
    env.push(("RONGPAY_ADMIN_TOKEN", ADMIN.to_string()));
    env.push(("RONGPAY_RISK_RULES_FILE", rules.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The operator's run and the merchant's at once (each is one Python process, and the
    // suite's other tests are done long before them), each against its own payd: the
    // operator's fuzzing cannot then rotate, disable or re-sign the merchant the other run
    // acts as.
    let operator = Payd::start_in(&tmp.path().join("operator"), &env);
    let shop = Payd::start_in(&tmp.path().join("merchant"), &env);
    let m = shop
        .admin("POST", "/v1/merchants", r#"{"name":"Fuzz"}"#)
        .json();
    let key = m["secret_key"].as_str().unwrap();
    std::thread::scope(|s| {
        let by_operator = s.spawn(|| run(&operator, ADMIN));
        let by_merchant = s.spawn(|| run(&shop, key));
        let (a, b) = (by_operator.join(), by_merchant.join());
        if let Err(e) = a.and(b) {
            std::panic::resume_unwind(e);
        }
    });
}
