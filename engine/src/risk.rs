//! Payment risk scoring: every payment gets a score from 0 to 100 before any money moves, and
//! the score becomes a decision (approve / review / reject) by configurable thresholds, with
//! the reasons that made it.
//!
//! Pure and deterministic like the rest of the engine: time is an input, the rules are data
//! (the API layer reads them from a file and can swap them at run time), and the only state —
//! recent attempts per payer, card, IP and device for the velocity rules — is bounded both in
//! subjects and in events per subject. Identical input sequences give identical assessments.
//!
//! Scoring: each rule that fires adds its points; the sum is capped at 100. A blocklist hit
//! scores 100 on its own.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::{AccountId, Currency, Timestamp};

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Subjects (payers, cards, IPs, devices) whose recent attempts are remembered.
pub const SUBJECTS_MAX_DEFAULT: usize = 1_000_000;
/// Attempts remembered per subject, whatever the rules ask for.
pub const EVENTS_PER_SUBJECT_MAX: usize = 1_000;

/// What a velocity rule counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Payer,
    Card,
    Ip,
    Device,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Payer => "payer",
            Subject::Card => "card",
            Subject::Ip => "ip",
            Subject::Device => "device",
        }
    }
}

/// Points when a payment is above `above_minor` in `currency`, for merchants of `category`
/// (`None`: every category).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmountRule {
    pub category: Option<String>,
    pub currency: Currency,
    pub above_minor: i64,
    pub points: u8,
}

/// Points when, counting this attempt, a subject made more than `max_count` attempts (or
/// more than `max_amount_minor` in total, when set) within `window_secs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VelocityRule {
    pub subject: Subject,
    pub window_secs: u32,
    pub max_count: u32,
    pub max_amount_minor: Option<i64>,
    pub points: u8,
}

/// Points when something (the payer's account, the card) was first seen less than
/// `younger_than_secs` ago.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeRule {
    pub younger_than_secs: u64,
    pub points: u8,
}

/// Points for payments between `from_hour` and `to_hour` (UTC, `to` excluded; wraps past
/// midnight when `from > to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourRule {
    pub from_hour: u8,
    pub to_hour: u8,
    pub points: u8,
}

/// Points for a currency outside a category's usual ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrencyRule {
    pub category: Option<String>,
    pub usual: Vec<Currency>,
    pub points: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskRules {
    /// Scores at or above this are held for an operator's review.
    pub review_at: u8,
    /// Scores at or above this are rejected.
    pub reject_at: u8,
    pub amounts: Vec<AmountRule>,
    pub velocity: Vec<VelocityRule>,
    pub new_account: Option<AgeRule>,
    pub new_card: Option<AgeRule>,
    pub unusual_hours: Option<HourRule>,
    pub unusual_currency: Vec<CurrencyRule>,
    pub blocked_accounts: HashSet<AccountId>,
    /// Card BINs (the first six digits).
    pub blocked_bins: HashSet<u32>,
    pub blocked_ips: HashSet<IpAddr>,
    /// Bound on remembered subjects (oldest first out).
    pub subjects_max: usize,
}

impl Default for RiskRules {
    /// No rules: every payment scores 0 and is approved.
    fn default() -> Self {
        RiskRules {
            review_at: 60,
            reject_at: 90,
            amounts: Vec::new(),
            velocity: Vec::new(),
            new_account: None,
            new_card: None,
            unusual_hours: None,
            unusual_currency: Vec::new(),
            blocked_accounts: HashSet::new(),
            blocked_bins: HashSet::new(),
            blocked_ips: HashSet::new(),
            subjects_max: SUBJECTS_MAX_DEFAULT,
        }
    }
}

impl RiskRules {
    /// Thresholds in order and within 1..=100, windows positive, a positive subject bound.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.review_at) || !(1..=100).contains(&self.reject_at) {
            return Err("review_at and reject_at must be within 1..=100".into());
        }
        if self.review_at > self.reject_at {
            return Err("review_at must not be above reject_at".into());
        }
        if let Some(v) = self.velocity.iter().find(|v| v.window_secs == 0) {
            return Err(format!(
                "a {} velocity rule has a zero window",
                v.subject.name()
            ));
        }
        if let Some(h) = self.unusual_hours {
            if h.from_hour > 23 || h.to_hour > 24 {
                return Err("unusual hours must be within 0..=24".into());
            }
        }
        if self.subjects_max == 0 {
            return Err("subjects_max must be positive".into());
        }
        Ok(())
    }
}

/// A card as the risk rules see it (never the number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardFacts {
    /// Stable per card (e.g. a keyed hash of the number), for velocity.
    pub fingerprint: u64,
    pub bin: u32,
    /// When the card was first tokenized.
    pub first_seen: Timestamp,
}

/// One payment attempt to score.
#[derive(Clone, Debug)]
pub struct RiskInput<'a> {
    pub at: Timestamp,
    pub merchant_category: &'a str,
    pub amount_minor: i64,
    pub currency: Currency,
    pub payer: Option<AccountId>,
    pub payer_created_at: Option<Timestamp>,
    pub card: Option<CardFacts>,
    pub ip: Option<IpAddr>,
    pub device: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Review,
    Reject,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Reject => "reject",
        }
    }
}

/// Why points were added: a stable code and the points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    pub code: String,
    pub points: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub score: u8,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
}

#[derive(Default)]
struct Window {
    /// (time, amount) of recent attempts, oldest first.
    events: VecDeque<(Timestamp, i64)>,
}

/// The risk scorer and its velocity memory.
pub struct RiskEngine {
    rules: RiskRules,
    windows: HashMap<(Subject, u64), Window>,
    /// Subjects in the order first remembered: the eviction order.
    order: VecDeque<(Subject, u64)>,
    longest_window_ns: u64,
}

fn key_of<T: Hash>(value: &T) -> u64 {
    // SipHash with fixed keys: deterministic across runs and machines.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn hour_of(at: Timestamp) -> u8 {
    ((at.0 / NANOS_PER_SEC / 3600) % 24) as u8
}

fn category_matches(rule: &Option<String>, category: &str) -> bool {
    rule.as_deref().is_none_or(|c| c == category)
}

impl RiskEngine {
    pub fn new(rules: RiskRules) -> RiskEngine {
        let mut engine = RiskEngine {
            rules: RiskRules::default(),
            windows: HashMap::new(),
            order: VecDeque::new(),
            longest_window_ns: 0,
        };
        engine.replace_rules(rules);
        engine
    }

    /// New rules from now on; the velocity memory is kept.
    pub fn replace_rules(&mut self, rules: RiskRules) {
        self.longest_window_ns = rules
            .velocity
            .iter()
            .map(|v| u64::from(v.window_secs) * NANOS_PER_SEC)
            .max()
            .unwrap_or(0);
        self.rules = rules;
        self.evict_beyond(self.rules.subjects_max);
    }

    pub fn rules(&self) -> &RiskRules {
        &self.rules
    }

    /// Subjects currently remembered (bounded by `subjects_max`).
    pub fn subjects(&self) -> usize {
        self.windows.len()
    }

    fn evict_beyond(&mut self, max: usize) {
        while self.windows.len() > max {
            match self.order.pop_front() {
                Some(k) => {
                    self.windows.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Scores the attempt, then remembers it for the velocity rules.
    pub fn assess(&mut self, input: &RiskInput<'_>) -> Assessment {
        let rules = &self.rules;
        let mut reasons: Vec<Reason> = Vec::new();
        let mut add = |code: String, points: u8| {
            if points > 0 {
                reasons.push(Reason { code, points });
            }
        };
        let blocked = input
            .payer
            .is_some_and(|p| rules.blocked_accounts.contains(&p))
            .then_some("blocklisted_account")
            .or_else(|| {
                input
                    .card
                    .is_some_and(|c| rules.blocked_bins.contains(&c.bin))
                    .then_some("blocklisted_card_bin")
            })
            .or_else(|| {
                input
                    .ip
                    .is_some_and(|ip| rules.blocked_ips.contains(&ip))
                    .then_some("blocklisted_ip")
            });
        if let Some(code) = blocked {
            add(code.to_string(), 100);
        }
        for r in &rules.amounts {
            if r.currency == input.currency
                && input.amount_minor > r.above_minor
                && category_matches(&r.category, input.merchant_category)
            {
                add("large_amount".to_string(), r.points);
            }
        }
        if let (Some(rule), Some(created)) = (rules.new_account, input.payer_created_at) {
            if input.at.0.saturating_sub(created.0) < rule.younger_than_secs * NANOS_PER_SEC {
                add("new_account".to_string(), rule.points);
            }
        }
        if let (Some(rule), Some(card)) = (rules.new_card, input.card) {
            if input.at.0.saturating_sub(card.first_seen.0) < rule.younger_than_secs * NANOS_PER_SEC
            {
                add("new_card".to_string(), rule.points);
            }
        }
        if let Some(h) = rules.unusual_hours {
            let hour = hour_of(input.at);
            let inside = if h.from_hour <= h.to_hour {
                (h.from_hour..h.to_hour).contains(&hour)
            } else {
                hour >= h.from_hour || hour < h.to_hour
            };
            if inside {
                add("unusual_hour".to_string(), h.points);
            }
        }
        for r in &rules.unusual_currency {
            if category_matches(&r.category, input.merchant_category)
                && !r.usual.contains(&input.currency)
            {
                add("unusual_currency".to_string(), r.points);
            }
        }
        // Velocity: this attempt counts, so "more than max_count" fires on attempt max+1.
        let subjects = [
            (Subject::Payer, input.payer.map(|p| key_of(&p.0))),
            (Subject::Card, input.card.map(|c| c.fingerprint)),
            (Subject::Ip, input.ip.map(|ip| key_of(&ip))),
            (Subject::Device, input.device.map(|d| key_of(&d))),
        ];
        let horizon = input.at.0.saturating_sub(self.longest_window_ns);
        for (subject, key) in subjects {
            let Some(key) = key else { continue };
            let window = self.windows.get_mut(&(subject, key));
            let events = window.map(|w| {
                while w.events.front().is_some_and(|(t, _)| t.0 < horizon) {
                    w.events.pop_front();
                }
                &w.events
            });
            for rule in rules.velocity.iter().filter(|r| r.subject == subject) {
                let since = input
                    .at
                    .0
                    .saturating_sub(u64::from(rule.window_secs) * NANOS_PER_SEC);
                let (mut count, mut total) = (1u64, i128::from(input.amount_minor));
                if let Some(events) = events {
                    for (t, amount) in events.iter().rev() {
                        if t.0 < since {
                            break;
                        }
                        count += 1;
                        total += i128::from(*amount);
                    }
                }
                if count > u64::from(rule.max_count) {
                    add(format!("velocity_{}_count", subject.name()), rule.points);
                } else if rule
                    .max_amount_minor
                    .is_some_and(|max| total > i128::from(max))
                {
                    add(format!("velocity_{}_amount", subject.name()), rule.points);
                }
            }
        }
        let score = reasons
            .iter()
            .map(|r| u32::from(r.points))
            .sum::<u32>()
            .min(100) as u8;
        let decision = if score >= rules.reject_at {
            Decision::Reject
        } else if score >= rules.review_at {
            Decision::Review
        } else {
            Decision::Approve
        };
        if self.longest_window_ns > 0 {
            for (subject, key) in subjects {
                let Some(key) = key else { continue };
                let entry = self.windows.entry((subject, key)).or_insert_with(|| {
                    self.order.push_back((subject, key));
                    Window::default()
                });
                if entry.events.len() >= EVENTS_PER_SUBJECT_MAX {
                    entry.events.pop_front();
                }
                entry.events.push_back((input.at, input.amount_minor));
            }
            self.evict_beyond(self.rules.subjects_max);
        }
        Assessment {
            score,
            decision,
            reasons,
        }
    }
}

#[cfg(test)]
// Amounts in minor units are written major_minor (1_000_00 is 1,000.00).
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * NANOS_PER_SEC;
    const DAY: u64 = 24 * 60 * MIN;

    fn rules() -> RiskRules {
        RiskRules {
            review_at: 50,
            reject_at: 80,
            amounts: vec![
                AmountRule {
                    category: Some("gaming".into()),
                    currency: Currency::CNY,
                    above_minor: 1_000_00,
                    points: 40,
                },
                AmountRule {
                    category: None,
                    currency: Currency::CNY,
                    above_minor: 50_000_00,
                    points: 60,
                },
            ],
            velocity: vec![
                VelocityRule {
                    subject: Subject::Payer,
                    window_secs: 60,
                    max_count: 5,
                    max_amount_minor: Some(2_000_00),
                    points: 50,
                },
                VelocityRule {
                    subject: Subject::Ip,
                    window_secs: 3600,
                    max_count: 20,
                    max_amount_minor: None,
                    points: 30,
                },
            ],
            new_account: Some(AgeRule {
                younger_than_secs: 24 * 3600,
                points: 20,
            }),
            new_card: Some(AgeRule {
                younger_than_secs: 3600,
                points: 15,
            }),
            unusual_hours: Some(HourRule {
                from_hour: 22,
                to_hour: 6,
                points: 10,
            }),
            unusual_currency: vec![CurrencyRule {
                category: Some("grocery".into()),
                usual: vec![Currency::CNY],
                points: 25,
            }],
            blocked_accounts: [AccountId(666)].into_iter().collect(),
            blocked_bins: [411111].into_iter().collect(),
            blocked_ips: ["10.6.6.6".parse().unwrap()].into_iter().collect(),
            subjects_max: 1_000,
        }
    }

    /// Noon UTC on some day, a month after the payer's account was opened.
    fn input(payer: u128, amount: i64) -> RiskInput<'static> {
        RiskInput {
            at: Timestamp(100 * DAY + 12 * 60 * MIN),
            merchant_category: "general",
            amount_minor: amount,
            currency: Currency::CNY,
            payer: Some(AccountId(payer)),
            payer_created_at: Some(Timestamp(70 * DAY)),
            card: None,
            ip: None,
            device: None,
        }
    }

    fn codes(a: &Assessment) -> Vec<&str> {
        a.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn a_plain_payment_is_approved_with_no_reasons() {
        let mut e = RiskEngine::new(rules());
        let a = e.assess(&input(1, 10_00));
        assert_eq!((a.score, a.decision), (0, Decision::Approve));
        assert!(a.reasons.is_empty());
        let mut none = RiskEngine::new(RiskRules::default());
        assert_eq!(none.assess(&input(1, 1_000_000_00)).score, 0);
        assert_eq!(none.subjects(), 0, "no velocity rules, nothing remembered");
    }

    #[test]
    fn amount_thresholds_depend_on_the_merchant_category() {
        let mut e = RiskEngine::new(rules());
        let mut i = input(1, 1_500_00);
        assert_eq!(e.assess(&i).score, 0);
        i.merchant_category = "gaming";
        let a = e.assess(&RiskInput {
            payer: Some(AccountId(2)),
            ..i.clone()
        });
        assert_eq!(
            (a.score, a.decision, codes(&a)),
            (40, Decision::Approve, vec!["large_amount"])
        );
        // Above every category's threshold, and alone above the payer's per-minute amount:
        // the points add up and cap at 100.
        let a = e.assess(&input(3, 60_000_00));
        assert_eq!(
            (a.score, a.decision, codes(&a)),
            (
                100,
                Decision::Reject,
                vec!["large_amount", "velocity_payer_amount"]
            )
        );
    }

    #[test]
    fn blocklists_reject_outright() {
        let mut e = RiskEngine::new(rules());
        let a = e.assess(&input(666, 1_00));
        assert_eq!(
            (a.score, a.decision, codes(&a)),
            (100, Decision::Reject, vec!["blocklisted_account"])
        );
        let mut i = input(1, 1_00);
        i.card = Some(CardFacts {
            fingerprint: 9,
            bin: 411111,
            first_seen: Timestamp(0),
        });
        assert_eq!(codes(&e.assess(&i)), vec!["blocklisted_card_bin"]);
        let mut i = input(1, 1_00);
        i.ip = Some("10.6.6.6".parse().unwrap());
        assert_eq!(e.assess(&i).decision, Decision::Reject);
    }

    #[test]
    fn velocity_counts_attempts_and_amounts_within_the_window() {
        let mut e = RiskEngine::new(rules());
        let mut i = input(7, 10_00);
        for n in 0..5 {
            i.at = Timestamp(i.at.0 + NANOS_PER_SEC);
            assert_eq!(e.assess(&i).score, 0, "attempt {n}");
        }
        i.at = Timestamp(i.at.0 + NANOS_PER_SEC);
        let a = e.assess(&i);
        assert_eq!(
            (a.score, a.decision, codes(&a)),
            (50, Decision::Review, vec!["velocity_payer_count"])
        );
        // A minute later the window has emptied.
        i.at = Timestamp(i.at.0 + 61 * NANOS_PER_SEC);
        assert_eq!(e.assess(&i).score, 0);
        // Amount: two payments adding up to more than 2,000.00 within the minute.
        let mut j = input(8, 1_500_00);
        assert_eq!(e.assess(&j).score, 0);
        j.at = Timestamp(j.at.0 + NANOS_PER_SEC);
        assert_eq!(codes(&e.assess(&j)), vec!["velocity_payer_amount"]);
    }

    #[test]
    fn new_accounts_new_cards_hours_and_currencies_add_points() {
        let mut e = RiskEngine::new(rules());
        let mut i = input(1, 1_00);
        i.payer_created_at = Some(Timestamp(i.at.0 - 3600 * NANOS_PER_SEC));
        i.card = Some(CardFacts {
            fingerprint: 5,
            bin: 622202,
            first_seen: Timestamp(i.at.0 - 60 * NANOS_PER_SEC),
        });
        i.at = Timestamp(i.at.0 + 11 * 60 * MIN); // 23:00 UTC
        i.payer_created_at = Some(Timestamp(i.at.0 - 3600 * NANOS_PER_SEC));
        i.merchant_category = "grocery";
        i.currency = Currency::USD;
        let a = e.assess(&i);
        assert_eq!(
            codes(&a),
            vec!["new_account", "unusual_hour", "unusual_currency"]
        );
        assert_eq!((a.score, a.decision), (55, Decision::Review));
        // 05:00 is still inside 22→6; 06:00 is not.
        let mut j = input(2, 1_00);
        j.at = Timestamp(101 * DAY + 5 * 60 * MIN);
        assert_eq!(codes(&e.assess(&j)), vec!["unusual_hour"]);
        j.at = Timestamp(101 * DAY + 6 * 60 * MIN);
        assert!(codes(&e.assess(&j)).is_empty());
    }

    #[test]
    fn the_score_is_capped_and_memory_is_bounded() {
        let mut r = rules();
        r.subjects_max = 100;
        let mut e = RiskEngine::new(r);
        let mut i = input(666, 60_000_00);
        i.payer_created_at = Some(i.at);
        assert_eq!(e.assess(&i).score, 100);
        for p in 0..10_000u128 {
            let mut i = input(1_000 + p, 1_00);
            i.ip = Some(std::net::IpAddr::from([10, 0, (p >> 8) as u8, p as u8]));
            e.assess(&i);
            assert!(e.subjects() <= 100);
        }
        let one = AccountId(1);
        let mut i = input(one.0, 1_00);
        for _ in 0..(2 * EVENTS_PER_SUBJECT_MAX) {
            e.assess(&i);
            i.at = Timestamp(i.at.0 + 1);
        }
        let window = e.windows.get(&(Subject::Payer, key_of(&one.0))).unwrap();
        assert!(window.events.len() <= EVENTS_PER_SUBJECT_MAX);
    }

    #[test]
    fn identical_inputs_give_identical_assessments() {
        let run = || {
            let mut e = RiskEngine::new(rules());
            (0..2_000u128)
                .map(|k| {
                    let mut i = input(k % 37, ((k * 7_919) % 300_000) as i64 + 1);
                    i.at = Timestamp(i.at.0 + (k as u64) * 3 * NANOS_PER_SEC);
                    i.ip = Some(std::net::IpAddr::from([192, 168, 0, (k % 5) as u8]));
                    e.assess(&i)
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert!(a.iter().any(|x| x.decision != Decision::Approve));
    }

    #[test]
    fn rules_are_validated() {
        assert!(rules().validate().is_ok());
        let mut r = rules();
        r.review_at = 90;
        assert!(r.validate().is_err());
        let mut r = rules();
        r.velocity[0].window_secs = 0;
        assert!(r.validate().is_err());
        let mut r = rules();
        r.subjects_max = 0;
        assert!(r.validate().is_err());
    }
}
