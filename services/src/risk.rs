//! Risk rules from a TOML file (`risk_rules_file`), turned into [`engine::risk::RiskRules`],
//! reloadable at run time (`POST /v1/risk/rules/reload` calls [`reload`]).
//!
//! ```toml
//! review_at = 60            # score ≥ this: held for review
//! reject_at = 90            # score ≥ this: rejected
//! [[amount]]                # above this amount, for this merchant category (or any)
//! category = "gaming"
//! currency = "CNY"
//! above = "1000.00"
//! points = 40
//! [[velocity]]              # per payer / card / ip / device within a sliding window
//! subject = "payer"
//! window_secs = 60
//! max_count = 5
//! max_amount = "2000.00"    # optional, in the payment's currency
//! points = 50
//! [new_account]
//! younger_than_secs = 86400
//! points = 20
//! [unusual_hours]           # UTC, `to` excluded, wraps past midnight
//! from_hour = 1
//! to_hour = 5
//! points = 10
//! [[unusual_currency]]
//! category = "grocery"
//! usual = ["CNY"]
//! points = 25
//! [blocklist]
//! accounts = ["acct_…"]
//! bins = ["411111"]
//! ips = ["10.6.6.6"]
//! ```

use std::path::Path;

use engine::risk::{AgeRule, AmountRule, CurrencyRule, HourRule, RiskRules, Subject, VelocityRule};
use engine::{AccountId, Currency};
use serde::Deserialize;

use crate::platform::Platform;
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    review_at: Option<u8>,
    reject_at: Option<u8>,
    subjects_max: Option<usize>,
    #[serde(default)]
    amount: Vec<AmountFile>,
    #[serde(default)]
    velocity: Vec<VelocityFile>,
    new_account: Option<AgeFile>,
    new_card: Option<AgeFile>,
    unusual_hours: Option<HoursFile>,
    #[serde(default)]
    unusual_currency: Vec<CurrencyFile>,
    #[serde(default)]
    blocklist: BlocklistFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountFile {
    category: Option<String>,
    currency: String,
    above: String,
    points: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VelocityFile {
    subject: String,
    window_secs: u32,
    max_count: u32,
    /// Minor units are not used in files: a decimal in the default currency's scale.
    max_amount: Option<String>,
    points: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgeFile {
    younger_than_secs: u64,
    points: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    from_hour: u8,
    to_hour: u8,
    points: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrencyFile {
    category: Option<String>,
    usual: Vec<String>,
    points: u8,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlocklistFile {
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    bins: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
}

fn currency(code: &str) -> Result<Currency, String> {
    Currency::from_code(code).map_err(|e| e.to_string())
}

/// Reads and checks a rules file. `default_currency` scales velocity amounts.
pub fn load(path: &Path, default_currency: Currency) -> Result<RiskRules, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text, default_currency).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str, default_currency: Currency) -> Result<RiskRules, String> {
    let file: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let defaults = RiskRules::default();
    let amount = |text: &str, c: Currency| {
        engine::money::parse_amount(text, c).map_err(|e| format!("amount {text:?}: {e}"))
    };
    let rules = RiskRules {
        review_at: file.review_at.unwrap_or(defaults.review_at),
        reject_at: file.reject_at.unwrap_or(defaults.reject_at),
        subjects_max: file.subjects_max.unwrap_or(defaults.subjects_max),
        amounts: file
            .amount
            .iter()
            .map(|a| {
                let c = currency(&a.currency)?;
                Ok(AmountRule {
                    category: a.category.clone(),
                    currency: c,
                    above_minor: amount(&a.above, c)?,
                    points: a.points,
                })
            })
            .collect::<Result<_, String>>()?,
        velocity: file
            .velocity
            .iter()
            .map(|v| {
                let subject = match v.subject.as_str() {
                    "payer" => Subject::Payer,
                    "card" => Subject::Card,
                    "ip" => Subject::Ip,
                    "device" => Subject::Device,
                    other => {
                        return Err(format!(
                            "velocity subject {other:?}: use payer, card, ip or device"
                        ))
                    }
                };
                Ok(VelocityRule {
                    subject,
                    window_secs: v.window_secs,
                    max_count: v.max_count,
                    max_amount_minor: v
                        .max_amount
                        .as_deref()
                        .map(|t| amount(t, default_currency))
                        .transpose()?,
                    points: v.points,
                })
            })
            .collect::<Result<_, String>>()?,
        new_account: file.new_account.map(|a| AgeRule {
            younger_than_secs: a.younger_than_secs,
            points: a.points,
        }),
        new_card: file.new_card.map(|a| AgeRule {
            younger_than_secs: a.younger_than_secs,
            points: a.points,
        }),
        unusual_hours: file.unusual_hours.map(|h| HourRule {
            from_hour: h.from_hour,
            to_hour: h.to_hour,
            points: h.points,
        }),
        unusual_currency: file
            .unusual_currency
            .iter()
            .map(|c| {
                Ok(CurrencyRule {
                    category: c.category.clone(),
                    usual: c
                        .usual
                        .iter()
                        .map(|u| currency(u))
                        .collect::<Result<_, _>>()?,
                    points: c.points,
                })
            })
            .collect::<Result<_, String>>()?,
        blocked_accounts: file
            .blocklist
            .accounts
            .iter()
            .map(|a| AccountId::parse(a).ok_or_else(|| format!("blocklist account {a:?}")))
            .collect::<Result<_, _>>()?,
        blocked_bins: file
            .blocklist
            .bins
            .iter()
            .map(|b| {
                (b.len() == 6 && b.bytes().all(|c| c.is_ascii_digit()))
                    .then(|| b.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| format!("blocklist bin {b:?}: six digits"))
            })
            .collect::<Result<_, _>>()?,
        blocked_ips: file
            .blocklist
            .ips
            .iter()
            .map(|ip| ip.parse().map_err(|_| format!("blocklist ip {ip:?}")))
            .collect::<Result<_, _>>()?,
    };
    rules.validate()?;
    Ok(rules)
}

/// What a reload put in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RulesLoaded {
    pub review_at: u8,
    pub reject_at: u8,
    /// Number of rules of each kind now in force.
    pub rules: usize,
    pub blocklisted: usize,
}

/// Reads the configured rules file again and puts it in force (the old rules stay when it
/// does not parse). Returns the file and what is now in force.
pub fn reload(platform: &Platform) -> Result<(std::path::PathBuf, RulesLoaded)> {
    let path =
        platform.settings.risk_rules_file.as_ref().ok_or_else(|| {
            Error::invalid("invalid_request", "payd runs without a risk_rules_file")
        })?;
    let rules = load(path, platform.settings.currency)
        .map_err(|e| Error::invalid("invalid_risk_rules", e))?;
    let loaded = RulesLoaded {
        review_at: rules.review_at,
        reject_at: rules.reject_at,
        rules: rules.amounts.len()
            + rules.velocity.len()
            + rules.unusual_currency.len()
            + usize::from(rules.new_account.is_some())
            + usize::from(rules.new_card.is_some())
            + usize::from(rules.unusual_hours.is_some()),
        blocklisted: rules.blocked_accounts.len()
            + rules.blocked_bins.len()
            + rules.blocked_ips.len(),
    };
    platform
        .risk
        .lock()
        .map_err(|_| Error::Storage("risk state poisoned".into()))?
        .replace_rules(rules);
    tracing::info!("risk rules reloaded from {}", path.display());
    Ok((path.clone(), loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_parses_and_bad_ones_are_named() {
        let rules = parse(
            r#"
            review_at = 50
            reject_at = 80
            [[amount]]
            category = "gaming"
            currency = "CNY"
            above = "1000.00"
            points = 40
            [[velocity]]
            subject = "payer"
            window_secs = 60
            max_count = 5
            max_amount = "2000.00"
            points = 50
            [unusual_hours]
            from_hour = 1
            to_hour = 5
            points = 10
            [blocklist]
            bins = ["411111"]
            ips = ["10.6.6.6"]
            "#,
            Currency::CNY,
        )
        .unwrap();
        assert_eq!(rules.amounts[0].above_minor, 100_000);
        assert_eq!(rules.velocity[0].max_amount_minor, Some(200_000));
        assert!(rules.blocked_bins.contains(&411_111));
        for (bad, says) in [
            ("review_at = 90\nreject_at = 50", "review_at"),
            (
                "[[velocity]]\nsubject = \"planet\"\nwindow_secs = 1\nmax_count = 1\npoints = 1",
                "planet",
            ),
            (
                "[[amount]]\ncurrency = \"CNY\"\nabove = \"1.001\"\npoints = 1",
                "1.001",
            ),
            ("[blocklist]\nbins = [\"4111\"]", "4111"),
            ("surprise = 1", "surprise"),
        ] {
            let e = parse(bad, Currency::CNY).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
