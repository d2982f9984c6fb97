//! The business date (`../shared/FUNDS.md`, "Business date and day-end"): a calendar day
//! that only a day-end moves. Pure calendar arithmetic, no clock and no time zone: the
//! layers above choose the first date from the wall clock in the configured zone.

use bincode::{Decode, Encode};

use crate::Reject;

/// A calendar day, as days since 1970-01-01 (proleptic Gregorian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct BusinessDate(pub i32);

/// Years a business date may have: four digits, from the epoch on.
pub const YEAR_MIN: i32 = 1970;
pub const YEAR_MAX: i32 = 9999;

impl BusinessDate {
    /// The date of a civil year, month and day, if it exists and its year is in range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<BusinessDate> {
        if !(YEAR_MIN..=YEAR_MAX).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return None;
        }
        Some(BusinessDate(days_from_civil(year, month, day)))
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<BusinessDate> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        BusinessDate::from_ymd(year, num(5..7)?, num(8..10)?)
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The next day (what a day-end switches to), if it is still in range.
    pub fn next(self) -> Option<BusinessDate> {
        let (y, _, _) = civil_from_days(self.0 + 1);
        (y <= YEAR_MAX).then_some(BusinessDate(self.0 + 1))
    }

    /// The date `days` days before this one (for retention: `archive_after_days`).
    pub fn minus_days(self, days: u32) -> Option<BusinessDate> {
        let d = self.0.checked_sub(i32::try_from(days).ok()?)?;
        (d >= 0).then_some(BusinessDate(d))
    }
}

impl std::fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil` and `civil_from_days` (public domain algorithms).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// The ledger's period: the open business date every new entry is booked on, and the last
/// closed one. A day-end's switch moves it ([`OpenPeriod::switched`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct OpenPeriod {
    pub open: BusinessDate,
    /// `None` before the first day-end.
    pub closed_through: Option<BusinessDate>,
}

impl OpenPeriod {
    /// The dates an entry is booked with: `accounting` must be the open date (`None` means
    /// it), never a closed one (corrections are new entries in the open period, never edits
    /// of a closed day); `value` defaults to the accounting date and may be earlier (a
    /// channel's late answer, a correction), never later.
    pub fn stamp(
        &self,
        accounting: Option<BusinessDate>,
        value: Option<BusinessDate>,
    ) -> Result<(BusinessDate, BusinessDate), Reject> {
        let accounting = accounting.unwrap_or(self.open);
        if self.closed_through.is_some_and(|c| accounting <= c) {
            return Err(Reject::PeriodClosed);
        }
        if accounting != self.open {
            return Err(Reject::InvalidAccountingDate);
        }
        let value = value.unwrap_or(accounting);
        if value > accounting {
            return Err(Reject::InvalidValueDate);
        }
        Ok((accounting, value))
    }

    /// The period after a day-end's switch: `open` is closed, the next day is open.
    /// `None` on 9999-12-31.
    pub fn switched(&self) -> Option<OpenPeriod> {
        Some(OpenPeriod {
            open: self.open.next()?,
            closed_through: Some(self.open),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_booked_on_the_open_date_only() {
        let d = |t: &str| BusinessDate::parse(t).unwrap();
        let first = OpenPeriod {
            open: d("2026-12-01"),
            closed_through: None,
        };
        assert_eq!(
            first.stamp(None, None),
            Ok((d("2026-12-01"), d("2026-12-01")))
        );
        assert_eq!(
            first.stamp(None, Some(d("2026-11-28"))),
            Ok((d("2026-12-01"), d("2026-11-28")))
        );
        assert_eq!(
            first.stamp(None, Some(d("2026-12-02"))),
            Err(Reject::InvalidValueDate)
        );
        // Before the first day-end nothing is closed, but only the open date is open.
        assert_eq!(
            first.stamp(Some(d("2026-11-30")), None),
            Err(Reject::InvalidAccountingDate)
        );
        let next = first.switched().unwrap();
        assert_eq!(
            next,
            OpenPeriod {
                open: d("2026-12-02"),
                closed_through: Some(d("2026-12-01")),
            }
        );
        assert_eq!(
            next.stamp(Some(d("2026-12-01")), None),
            Err(Reject::PeriodClosed)
        );
        assert_eq!(
            next.stamp(Some(d("2026-11-02")), None),
            Err(Reject::PeriodClosed)
        );
        assert_eq!(
            next.stamp(Some(d("2026-12-03")), None),
            Err(Reject::InvalidAccountingDate)
        );
        // A late answer for a closed day is booked in the open day with its value date.
        assert_eq!(
            next.stamp(None, Some(d("2026-12-01"))),
            Ok((d("2026-12-02"), d("2026-12-01")))
        );
        let last = OpenPeriod {
            open: d("9999-12-31"),
            closed_through: None,
        };
        assert_eq!(last.switched(), None);
    }

    #[test]
    fn known_days() {
        assert_eq!(BusinessDate::parse("1970-01-01"), Some(BusinessDate(0)));
        assert_eq!(BusinessDate::parse("2026-12-01").unwrap().0, 20_788);
        assert_eq!(BusinessDate(20_788).to_string(), "2026-12-01");
        assert_eq!(
            BusinessDate::parse("2028-02-28")
                .unwrap()
                .next()
                .unwrap()
                .to_string(),
            "2028-02-29"
        );
        assert_eq!(
            BusinessDate::parse("2026-12-31")
                .unwrap()
                .next()
                .unwrap()
                .to_string(),
            "2027-01-01"
        );
        assert_eq!(BusinessDate::parse("9999-12-31").unwrap().next(), None);
        assert_eq!(
            BusinessDate::parse("2026-03-01")
                .unwrap()
                .minus_days(1)
                .unwrap()
                .to_string(),
            "2026-02-28"
        );
        assert_eq!(BusinessDate(0).minus_days(1), None);
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for bad in [
            "",
            "2026-1-01",
            "2026-01-1",
            "2026/01/01",
            "20260101",
            "2026-00-10",
            "2026-13-01",
            "2026-02-29",
            "2100-02-29",
            "2026-04-31",
            "1969-12-31",
            "+202-01-01",
            "2026-01-0a",
            "2026-01-01 ",
            "２026-01-01",
        ] {
            assert_eq!(BusinessDate::parse(bad), None, "{bad:?}");
        }
        assert!(BusinessDate::parse("2000-02-29").is_some());
    }

    #[test]
    fn every_day_round_trips_through_text() {
        // Every day from the epoch to 2200, with its successor.
        let end = BusinessDate::parse("2200-01-01").unwrap().0;
        for d in 0..end {
            let date = BusinessDate(d);
            let text = date.to_string();
            assert_eq!(BusinessDate::parse(&text), Some(date), "{text}");
            assert_eq!(date.next(), Some(BusinessDate(d + 1)));
        }
    }
}
