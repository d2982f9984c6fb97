//! Open-loop send schedules: when the i-th request is *meant* to be sent. Latency is measured
//! from that intended time, so a server that stalls is charged for every request that should
//! have gone out meanwhile (no coordinated omission).

use std::time::Duration;

/// A stretch of time whose rate changes linearly from `from` to `to` requests per second.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub from: f64,
    pub to: f64,
    pub secs: f64,
}

impl Segment {
    fn requests(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.secs
    }

    /// Seconds into the segment at which `n` requests have been scheduled: the inverse of
    /// `n(t) = from·t + (to − from)·t² / (2·secs)`.
    fn time_of(&self, n: f64) -> f64 {
        let a = (self.to - self.from) / (2.0 * self.secs);
        if a.abs() < 1e-12 {
            return n / self.from;
        }
        let b = self.from;
        (-b + (b * b + 4.0 * a * n).max(0.0).sqrt()) / (2.0 * a)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub segments: Vec<Segment>,
}

impl Schedule {
    /// `constant:RATE`, `ramp:FROM-TO` (both over `duration`), or
    /// `steps:RATExSECS,RATExSECS,…` (e.g. `steps:5000x5,10000x5`).
    pub fn parse(text: &str, duration: Duration) -> Result<Schedule, String> {
        let secs = duration.as_secs_f64();
        let rate = |t: &str| -> Result<f64, String> {
            let r: f64 = t
                .trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a rate"))?;
            if !(r > 0.0 && r <= 10_000_000.0) {
                return Err(format!("rate {r} is outside (0, 10000000]"));
            }
            Ok(r)
        };
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("schedule {text:?}: expected constant:, ramp: or steps:"))?;
        let segments = match kind {
            "constant" => vec![Segment {
                from: rate(rest)?,
                to: rate(rest)?,
                secs,
            }],
            "ramp" => {
                let (a, b) = rest
                    .split_once('-')
                    .ok_or_else(|| format!("ramp {rest:?}: expected FROM-TO"))?;
                vec![Segment {
                    from: rate(a)?,
                    to: rate(b)?,
                    secs,
                }]
            }
            "steps" => rest
                .split(',')
                .map(|step| {
                    let (r, s) = step
                        .split_once('x')
                        .ok_or_else(|| format!("step {step:?}: expected RATExSECS"))?;
                    let s: f64 = s
                        .trim()
                        .trim_end_matches('s')
                        .parse()
                        .map_err(|_| format!("step {step:?}: bad seconds"))?;
                    if !(s > 0.0 && s <= 86_400.0) {
                        return Err(format!("step {step:?}: seconds outside (0, 86400]"));
                    }
                    let r = rate(r)?;
                    Ok(Segment {
                        from: r,
                        to: r,
                        secs: s,
                    })
                })
                .collect::<Result<_, _>>()?,
            other => return Err(format!("unknown schedule kind {other:?}")),
        };
        if secs <= 0.0 && kind != "steps" {
            return Err("the schedule needs a positive duration".into());
        }
        Ok(Schedule { segments })
    }

    pub fn total_secs(&self) -> f64 {
        self.segments.iter().map(|s| s.secs).sum()
    }

    /// When request `i` (from 0) is meant to go out, from the start; `None` past the end.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        // Request i is sent when i + 1/2 requests have been scheduled: spreads them evenly.
        let mut n = i as f64 + 0.5;
        let mut before = 0.0;
        for s in &self.segments {
            let here = s.requests();
            if n < here {
                return Some(Duration::from_secs_f64(before + s.time_of(n)));
            }
            n -= here;
            before += s.secs;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_spaces_requests_evenly() {
        let s = Schedule::parse("constant:1000", Duration::from_secs(2)).unwrap();
        assert_eq!(s.offset(0), Some(Duration::from_micros(500)));
        let t = s.offset(999).unwrap().as_secs_f64();
        assert!((t - 0.9995).abs() < 1e-9, "{t}");
        assert!(s.offset(1999).is_some());
        assert_eq!(s.offset(2000), None);
    }

    #[test]
    fn ramp_and_steps_schedule_the_right_counts() {
        // 0 → 2000/s over 1 s: 1000 requests, half of them in the last 0.29 s.
        let s = Schedule::parse("ramp:1-2000", Duration::from_secs(1)).unwrap();
        let last = s.offset(999).unwrap().as_secs_f64();
        assert!(last < 1.0 && last > 0.99, "{last}");
        let half = s.offset(500).unwrap().as_secs_f64();
        assert!((half - 0.707).abs() < 0.01, "{half}");
        assert_eq!(s.offset(1001), None);
        let s = Schedule::parse("steps:100x1,1000x2s", Duration::ZERO).unwrap();
        assert_eq!(s.total_secs(), 3.0);
        assert!(s.offset(99).unwrap().as_secs_f64() < 1.0);
        let t = s.offset(100).unwrap().as_secs_f64();
        assert!((t - 1.0005).abs() < 1e-9, "{t}");
        assert_eq!(s.offset(2100), None);
        for bad in [
            "constant:0",
            "ramp:5",
            "steps:10x0",
            "fast:1",
            "constant:abc",
        ] {
            assert!(
                Schedule::parse(bad, Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
    }
}
