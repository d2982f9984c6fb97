//! Channel health and routing: the pure core of the router and the channel actors.
//!
//! Each channel has a [`ChannelSpec`] (what it serves and what it costs) and a
//! [`ChannelHealth`] (a sliding window of recent results, a circuit breaker, calls in
//! flight, today's volume). [`route`] filters the channels that can take a payment (method,
//! currency, per-transaction limits, daily limit, enabled, breaker, bulkhead) and ranks the
//! rest by a [`Policy`], keeping the reason each one was left out or placed. Time and the
//! random draw of a weighted split are inputs, so routing is deterministic and replayable.

use crate::{Currency, Timestamp};

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// How a payment is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    BankCard,
    Balance,
}

/// What a channel serves and costs (from config and the admin API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    pub name: String,
    pub methods: Vec<Method>,
    pub currencies: Vec<Currency>,
    /// Fee per payment: rate in parts per million plus a fixed amount (minor units).
    pub fee_rate_ppm: u32,
    pub fee_fixed_minor: i64,
    pub min_minor: i64,
    pub max_minor: i64,
    /// Total per UTC day, in minor units.
    pub daily_limit_minor: i64,
    /// Lower is preferred (Priority policy, and every tie-break).
    pub priority: u32,
    /// Share of traffic in a weighted split.
    pub weight: u32,
    pub enabled: bool,
    /// Calls in flight at once (bulkhead).
    pub inflight_max: u32,
}

impl ChannelSpec {
    /// This channel's fee for `amount`, rounded half up.
    pub fn fee(&self, amount_minor: i64) -> i64 {
        let rate = (i128::from(amount_minor) * i128::from(self.fee_rate_ppm) + 500_000) / 1_000_000;
        i64::try_from(rate)
            .unwrap_or(i64::MAX)
            .saturating_add(self.fee_fixed_minor)
    }
}

/// Circuit breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Window over which the failure ratio is computed.
    pub window_secs: u32,
    /// Fewer results than this in the window never open the breaker.
    pub min_calls: u32,
    /// Open when failures / calls reaches this (percent).
    pub failure_percent: u32,
    /// How long an open breaker refuses calls before letting probes through.
    pub open_secs: u32,
    /// Probe calls allowed at once while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window_secs: 30,
            min_calls: 20,
            failure_percent: 50,
            open_secs: 15,
            half_open_probes: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Refusing calls until this time.
    Open {
        until: Timestamp,
    },
    /// Letting a few probes through; their results close or reopen it.
    HalfOpen {
        probes: u32,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    second: u64,
    calls: u32,
    failures: u32,
    latency_us: u64,
}

/// A channel's live state (what its actor holds).
#[derive(Clone, Debug)]
pub struct ChannelHealth {
    pub breaker_config: BreakerConfig,
    pub breaker: BreakerState,
    buckets: Vec<Bucket>,
    pub inflight: u32,
    /// The amounts of the calls in flight: counted against the daily limit until they end,
    /// so concurrent payments cannot overshoot it together.
    pub reserved: i64,
    /// (UTC day number, volume that day in minor units).
    pub today: (u64, i64),
}

/// What a finished call tells the channel's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The channel answered (charged or declined: both are a working channel).
    Answered,
    /// Technical failure, refused connection or timeout: counts against the channel.
    Failed,
}

impl ChannelHealth {
    pub fn new(breaker_config: BreakerConfig) -> ChannelHealth {
        ChannelHealth {
            breaker_config,
            breaker: BreakerState::Closed,
            buckets: vec![Bucket::default(); breaker_config.window_secs.max(1) as usize],
            inflight: 0,
            reserved: 0,
            today: (0, 0),
        }
    }

    fn window(&self, at: Timestamp) -> impl Iterator<Item = &Bucket> {
        let now = at.0 / NANOS_PER_SEC;
        let span = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(move |b| b.calls > 0 && b.second + span > now && b.second <= now)
    }

    /// (calls, failures, mean latency in µs) over the window.
    pub fn stats(&self, at: Timestamp) -> (u32, u32, u64) {
        let (mut calls, mut failures, mut latency) = (0u32, 0u32, 0u64);
        for b in self.window(at) {
            calls += b.calls;
            failures += b.failures;
            latency += b.latency_us;
        }
        (
            calls,
            failures,
            latency.checked_div(u64::from(calls)).unwrap_or(0),
        )
    }

    /// Success rate in parts per million (1,000,000 with no data: innocent until proven).
    pub fn success_ppm(&self, at: Timestamp) -> u32 {
        let (calls, failures, _) = self.stats(at);
        if calls == 0 {
            return 1_000_000;
        }
        ((u64::from(calls - failures) * 1_000_000) / u64::from(calls)) as u32
    }

    /// The breaker as of `at`, without changing it: an open breaker whose time is up shows
    /// half-open (what the next call will find), though no call moved it there yet.
    pub fn breaker_at(&self, at: Timestamp) -> BreakerState {
        match self.breaker {
            BreakerState::Open { until } if at.0 >= until.0 => BreakerState::HalfOpen { probes: 0 },
            other => other,
        }
    }

    /// Whether a call may start now; moves an expired open breaker to half-open.
    pub fn allows(&mut self, at: Timestamp) -> bool {
        match self.breaker {
            BreakerState::Closed => true,
            BreakerState::Open { until } if at.0 >= until.0 => {
                self.breaker = BreakerState::HalfOpen { probes: 0 };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probes } => probes < self.breaker_config.half_open_probes,
        }
    }

    /// Why a call of `amount_minor` may not start now (daily limit with the amounts in
    /// flight, breaker, bulkhead), or `None`. Moves an expired open breaker to half-open.
    pub fn refuses(
        &mut self,
        spec: &ChannelSpec,
        at: Timestamp,
        amount_minor: i64,
    ) -> Option<Excluded> {
        if self
            .volume_today(at)
            .saturating_add(self.reserved)
            .saturating_add(amount_minor)
            > spec.daily_limit_minor
        {
            Some(Excluded::DailyLimitReached)
        } else if !self.allows(at) {
            Some(Excluded::BreakerOpen)
        } else if self.inflight >= spec.inflight_max {
            Some(Excluded::Busy)
        } else {
            None
        }
    }

    /// Starts a call of `amount_minor` if [`refuses`](Self::refuses) has nothing against
    /// it: counts it in flight, reserves its amount against the daily limit, and counts it
    /// as a probe when half-open. Check and start are one step under the channel's lock,
    /// so concurrent payments cannot all pass the check and then overshoot together.
    pub fn try_start(
        &mut self,
        spec: &ChannelSpec,
        at: Timestamp,
        amount_minor: i64,
    ) -> Result<(), Excluded> {
        if let Some(why) = self.refuses(spec, at, amount_minor) {
            return Err(why);
        }
        self.inflight += 1;
        self.reserved = self.reserved.saturating_add(amount_minor);
        if let BreakerState::HalfOpen { probes } = &mut self.breaker {
            *probes += 1;
        }
        Ok(())
    }

    /// A started call that was never made (its attempt could not be written): releases
    /// its slot and reservation without counting a call.
    pub fn abandon(&mut self, reserved_minor: i64) {
        self.inflight = self.inflight.saturating_sub(1);
        self.reserved = self.reserved.saturating_sub(reserved_minor);
        if let BreakerState::HalfOpen { probes } = &mut self.breaker {
            *probes = probes.saturating_sub(1);
        }
    }

    /// A call ended: releases its slot and its reservation (`reserved_minor`, what
    /// [`try_start`](Self::try_start) took), then counts it in the window, the breaker and
    /// (what it charged, or may have) today's volume.
    pub fn finish(
        &mut self,
        at: Timestamp,
        result: CallResult,
        latency_us: u64,
        reserved_minor: i64,
        charged_minor: i64,
    ) {
        self.inflight = self.inflight.saturating_sub(1);
        self.reserved = self.reserved.saturating_sub(reserved_minor);
        let second = at.0 / NANOS_PER_SEC;
        let span = self.buckets.len() as u64;
        let b = &mut self.buckets[(second % span) as usize];
        if b.second != second {
            *b = Bucket {
                second,
                ..Bucket::default()
            };
        }
        b.calls += 1;
        b.latency_us += latency_us;
        if result == CallResult::Failed {
            b.failures += 1;
        }
        let day = second / SECS_PER_DAY;
        if self.today.0 != day {
            self.today = (day, 0);
        }
        self.today.1 = self.today.1.saturating_add(charged_minor);
        let c = self.breaker_config;
        let open = BreakerState::Open {
            until: Timestamp(at.0 + u64::from(c.open_secs) * NANOS_PER_SEC),
        };
        self.breaker = match (self.breaker, result) {
            (BreakerState::HalfOpen { .. }, CallResult::Failed) => open,
            (BreakerState::HalfOpen { .. }, CallResult::Answered) => {
                // A working probe closes the breaker on a clean slate.
                for b in &mut self.buckets {
                    *b = Bucket::default();
                }
                BreakerState::Closed
            }
            (BreakerState::Closed, _) => {
                let (calls, failures, _) = self.stats(at);
                if calls >= c.min_calls && failures * 100 >= calls * c.failure_percent {
                    open
                } else {
                    BreakerState::Closed
                }
            }
            (state, _) => state,
        };
    }

    /// Today's volume as of `at` (0 after midnight UTC).
    pub fn volume_today(&self, at: Timestamp) -> i64 {
        if self.today.0 == at.0 / NANOS_PER_SEC / SECS_PER_DAY {
            self.today.1
        } else {
            0
        }
    }
}

/// How candidates are ranked (ties: priority, then name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Lowest fee for this amount.
    Cost,
    /// Highest success rate over the window.
    SuccessRate,
    /// Lowest mean latency over the window.
    Latency,
    /// Lowest configured priority number.
    Priority,
    /// By weight, at random (the draw is an input), the rest by priority for failover.
    WeightedSplit,
}

pub struct Candidate<'a> {
    pub spec: &'a ChannelSpec,
    pub health: &'a mut ChannelHealth,
}

/// A payment to route.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest {
    pub method: Method,
    pub currency: Currency,
    pub amount_minor: i64,
    pub at: Timestamp,
    /// Uniform random draw for a weighted split.
    pub draw: u64,
}

/// Why a channel was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excluded {
    Disabled,
    MethodNotServed,
    CurrencyNotServed,
    BelowMinimum,
    AboveMaximum,
    DailyLimitReached,
    BreakerOpen,
    Busy,
}

impl Excluded {
    pub fn code(self) -> &'static str {
        match self {
            Excluded::Disabled => "disabled",
            Excluded::MethodNotServed => "method_not_served",
            Excluded::CurrencyNotServed => "currency_not_served",
            Excluded::BelowMinimum => "below_minimum",
            Excluded::AboveMaximum => "above_maximum",
            Excluded::DailyLimitReached => "daily_limit_reached",
            Excluded::BreakerOpen => "breaker_open",
            Excluded::Busy => "busy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Indices into the candidates, best first: the first to try, then failover order.
    pub ranked: Vec<usize>,
    /// (index, why) of every channel left out.
    pub excluded: Vec<(usize, Excluded)>,
}

/// Filters and ranks `candidates` for `req` under `policy`.
pub fn route(candidates: &mut [Candidate<'_>], req: &RouteRequest, policy: Policy) -> Route {
    let mut ranked = Vec::with_capacity(candidates.len());
    let mut excluded = Vec::new();
    for (i, c) in candidates.iter_mut().enumerate() {
        let s = c.spec;
        let why = if !s.enabled {
            Some(Excluded::Disabled)
        } else if !s.methods.contains(&req.method) {
            Some(Excluded::MethodNotServed)
        } else if !s.currencies.contains(&req.currency) {
            Some(Excluded::CurrencyNotServed)
        } else if req.amount_minor < s.min_minor {
            Some(Excluded::BelowMinimum)
        } else if req.amount_minor > s.max_minor {
            Some(Excluded::AboveMaximum)
        } else {
            c.health.refuses(s, req.at, req.amount_minor)
        };
        match why {
            Some(w) => excluded.push((i, w)),
            None => ranked.push(i),
        }
    }
    let key = |i: usize| {
        let (s, h) = (candidates[i].spec, &candidates[i].health);
        let metric: u64 = match policy {
            Policy::Cost => s.fee(req.amount_minor).max(0) as u64,
            Policy::SuccessRate => u64::from(1_000_000 - h.success_ppm(req.at)),
            Policy::Latency => h.stats(req.at).2,
            Policy::Priority | Policy::WeightedSplit => 0,
        };
        (metric, s.priority, s.name.clone())
    };
    ranked.sort_by_cached_key(|&i| key(i));
    if policy == Policy::WeightedSplit {
        let total: u64 = ranked
            .iter()
            .map(|&i| u64::from(candidates[i].spec.weight))
            .sum();
        if total > 0 {
            let mut point = req.draw % total;
            if let Some(pos) = ranked.iter().position(|&i| {
                let w = u64::from(candidates[i].spec.weight);
                if point < w {
                    true
                } else {
                    point -= w;
                    false
                }
            }) {
                let chosen = ranked.remove(pos);
                ranked.insert(0, chosen);
            }
        }
    }
    Route { ranked, excluded }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    fn spec(name: &str, fee_ppm: u32, priority: u32) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            methods: vec![Method::BankCard],
            currencies: vec![Currency::CNY],
            fee_rate_ppm: fee_ppm,
            fee_fixed_minor: 0,
            min_minor: 100,
            max_minor: 1_000_000,
            daily_limit_minor: 5_000_000,
            priority,
            weight: 1,
            enabled: true,
            inflight_max: 100,
        }
    }

    fn req(amount: i64, at: u64) -> RouteRequest {
        RouteRequest {
            method: Method::BankCard,
            currency: Currency::CNY,
            amount_minor: amount,
            at: Timestamp(at),
            draw: 0,
        }
    }

    fn names(specs: &[ChannelSpec], r: &Route) -> Vec<String> {
        r.ranked.iter().map(|&i| specs[i].name.clone()).collect()
    }

    fn run(
        specs: &[ChannelSpec],
        health: &mut [ChannelHealth],
        r: &RouteRequest,
        p: Policy,
    ) -> Route {
        let mut c: Vec<Candidate> = specs
            .iter()
            .zip(health.iter_mut())
            .map(|(spec, health)| Candidate { spec, health })
            .collect();
        route(&mut c, r, p)
    }

    #[test]
    fn filters_name_every_exclusion() {
        let mut specs = vec![spec("a", 6_000, 1); 8];
        for (i, s) in specs.iter_mut().enumerate() {
            s.name = format!("c{i}");
        }
        specs[0].enabled = false;
        specs[1].methods = vec![Method::Balance];
        specs[2].currencies = vec![Currency::USD];
        specs[3].min_minor = 10_000;
        specs[4].max_minor = 500;
        specs[5].daily_limit_minor = 900;
        specs[6].inflight_max = 0;
        let mut health = vec![ChannelHealth::new(BreakerConfig::default()); 8];
        let r = run(&specs, &mut health, &req(1_000, 100 * S), Policy::Priority);
        assert_eq!(names(&specs, &r), vec!["c7"]);
        let why: Vec<&str> = r.excluded.iter().map(|(_, w)| w.code()).collect();
        assert_eq!(
            why,
            vec![
                "disabled",
                "method_not_served",
                "currency_not_served",
                "below_minimum",
                "above_maximum",
                "daily_limit_reached",
                "busy"
            ]
        );
    }

    #[test]
    fn policies_rank_by_cost_success_latency_priority_and_weight() {
        let specs = vec![
            spec("cheap", 3_000, 3),
            spec("mid", 5_000, 1),
            spec("dear", 8_000, 2),
        ];
        let mut health = vec![ChannelHealth::new(BreakerConfig::default()); 3];
        let at = 1_000 * S;
        // cheap: 50% failures, slow; mid: all good, fast; dear: all good, slower.
        for k in 0..10 {
            let t = Timestamp(at - 5 * S + k);
            let cheap = if k % 2 == 0 {
                CallResult::Failed
            } else {
                CallResult::Answered
            };
            health[0].finish(t, cheap, 9_000, 0, 0);
            health[1].finish(t, CallResult::Answered, 1_000, 0, 0);
            health[2].finish(t, CallResult::Answered, 4_000, 0, 0);
        }
        let r = |p, h: &mut [ChannelHealth]| names(&specs, &run(&specs, h, &req(10_000, at), p));
        assert_eq!(r(Policy::Cost, &mut health), vec!["cheap", "mid", "dear"]);
        assert_eq!(
            r(Policy::SuccessRate, &mut health),
            vec!["mid", "dear", "cheap"]
        );
        assert_eq!(
            r(Policy::Latency, &mut health),
            vec!["mid", "dear", "cheap"]
        );
        assert_eq!(
            r(Policy::Priority, &mut health),
            vec!["mid", "dear", "cheap"]
        );
        // Weighted: weights 1:1:1, the draw picks; the rest stay in failover order.
        let mut w = req(10_000, at);
        let mut firsts = Vec::new();
        for draw in 0..3 {
            w.draw = draw;
            let route = run(&specs, &mut health, &w, Policy::WeightedSplit);
            assert_eq!(route.ranked.len(), 3);
            firsts.push(specs[route.ranked[0]].name.clone());
        }
        firsts.sort();
        assert_eq!(firsts, vec!["cheap", "dear", "mid"]);
        assert_eq!(specs[0].fee(10_000), 30);
    }

    #[test]
    fn the_breaker_opens_half_opens_and_closes() {
        let c = BreakerConfig {
            window_secs: 10,
            min_calls: 4,
            failure_percent: 50,
            open_secs: 5,
            half_open_probes: 1,
        };
        let mut h = ChannelHealth::new(c);
        let t0 = 100 * S;
        h.finish(Timestamp(t0), CallResult::Answered, 10, 0, 0);
        h.finish(Timestamp(t0), CallResult::Failed, 10, 0, 0);
        h.finish(Timestamp(t0), CallResult::Answered, 10, 0, 0);
        assert_eq!(h.breaker, BreakerState::Closed, "fewer than min_calls");
        h.finish(Timestamp(t0), CallResult::Failed, 10, 0, 0);
        assert_eq!(
            h.breaker,
            BreakerState::Open {
                until: Timestamp(t0 + 5 * S)
            }
        );
        assert!(!h.allows(Timestamp(t0 + 4 * S)));
        assert_eq!(
            h.breaker_at(Timestamp(t0 + 4 * S)),
            BreakerState::Open {
                until: Timestamp(t0 + 5 * S)
            }
        );
        // Its time is up: shown half-open before any call moves it there.
        assert_eq!(
            h.breaker_at(Timestamp(t0 + 5 * S)),
            BreakerState::HalfOpen { probes: 0 }
        );
        assert!(matches!(h.breaker, BreakerState::Open { .. }));
        assert!(h.allows(Timestamp(t0 + 5 * S)));
        assert_eq!(h.breaker, BreakerState::HalfOpen { probes: 0 });
        let only = spec("only", 0, 1);
        h.try_start(&only, Timestamp(t0 + 5 * S), 1).unwrap();
        assert!(!h.allows(Timestamp(t0 + 5 * S)), "one probe at a time");
        h.finish(Timestamp(t0 + 6 * S), CallResult::Failed, 10, 1, 0);
        assert_eq!(
            h.breaker,
            BreakerState::Open {
                until: Timestamp(t0 + 11 * S)
            }
        );
        assert!(h.allows(Timestamp(t0 + 11 * S)));
        h.try_start(&only, Timestamp(t0 + 11 * S), 1).unwrap();
        h.finish(Timestamp(t0 + 11 * S), CallResult::Answered, 10, 1, 0);
        assert_eq!(h.breaker, BreakerState::Closed);
        assert_eq!(h.stats(Timestamp(t0 + 11 * S)).0, 0, "a clean slate");
        // Old results leave the window.
        let mut h = ChannelHealth::new(c);
        h.finish(Timestamp(t0), CallResult::Failed, 10, 0, 0);
        assert_eq!(h.stats(Timestamp(t0 + 9 * S)).1, 1);
        assert_eq!(h.stats(Timestamp(t0 + 10 * S)).1, 0);
    }

    #[test]
    fn daily_volume_counts_charges_and_resets_at_midnight_utc() {
        let specs = vec![spec("only", 0, 1)];
        let mut health = vec![ChannelHealth::new(BreakerConfig::default())];
        let noon = 20_000 * SECS_PER_DAY * S + 12 * 3600 * S;
        health[0].finish(Timestamp(noon), CallResult::Answered, 10, 0, 4_500_000);
        assert_eq!(health[0].volume_today(Timestamp(noon)), 4_500_000);
        let r = run(&specs, &mut health, &req(600_000, noon), Policy::Cost);
        assert_eq!(r.excluded, vec![(0, Excluded::DailyLimitReached)]);
        let r = run(&specs, &mut health, &req(400_000, noon), Policy::Cost);
        assert_eq!(r.ranked, vec![0]);
        let tomorrow = noon + 12 * 3600 * S;
        assert_eq!(health[0].volume_today(Timestamp(tomorrow)), 0);
        let r = run(&specs, &mut health, &req(600_000, tomorrow), Policy::Cost);
        assert_eq!(r.ranked, vec![0]);
    }

    #[test]
    fn calls_in_flight_hold_their_amount_and_slot_until_they_end() {
        let mut only = spec("only", 0, 1);
        only.inflight_max = 3;
        let mut h = ChannelHealth::new(BreakerConfig::default());
        let noon = 20_000 * SECS_PER_DAY * S + 12 * 3600 * S;
        let at = Timestamp(noon);
        let limit = only.daily_limit_minor;
        // Two calls in flight reserve 80% of the day's limit: a third of 30% is refused
        // before either has ended, though today's volume is still zero.
        h.try_start(&only, at, limit / 2).unwrap();
        h.try_start(&only, at, limit * 3 / 10).unwrap();
        assert_eq!(h.volume_today(at), 0);
        assert_eq!(
            h.try_start(&only, at, limit * 3 / 10),
            Err(Excluded::DailyLimitReached)
        );
        h.try_start(&only, at, 1).unwrap();
        assert_eq!(
            h.try_start(&only, at, 1),
            Err(Excluded::Busy),
            "bulkhead of 3"
        );
        // The first call charged; the second charged nothing: its reservation goes back.
        h.finish(at, CallResult::Answered, 10, limit / 2, limit / 2);
        h.finish(at, CallResult::Answered, 10, limit * 3 / 10, 0);
        h.abandon(1);
        assert_eq!((h.inflight, h.reserved), (0, 0));
        assert_eq!(h.volume_today(at), limit / 2);
        h.try_start(&only, at, limit / 2).unwrap();
        assert_eq!(h.try_start(&only, at, 1), Err(Excluded::DailyLimitReached));
    }
}
