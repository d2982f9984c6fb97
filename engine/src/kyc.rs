//! Real-name verification (实名, `../shared/FUNDS.md` "Customers and KYC", issue #18): the
//! PRC resident identity number's rules (GB 11643-1999: 18 characters, a province code, a
//! birth date, a sequence whose parity is the sex, and an ISO 7064 MOD 11-2 check character),
//! how one is masked for display, and the per-level payment limits. Pure: the caller gives
//! "today" (a business date) and the counters; nothing here reads a clock.

use crate::gl::BusinessDate;

/// Province-level codes (the first two digits) of GB/T 2260, with Taiwan (71), Hong Kong (81)
/// and Macao (82) as GB 11643 lists them.
const PROVINCES: [u8; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Weights of the 17 body digits, `2^(17 - i) mod 11`.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// Birth years accepted: a living person's.
const BORN_AFTER: i32 = 1900;

/// Why a text is not a resident identity number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a resident identity number has 18 characters")]
    Length,
    #[error("the first 17 characters must be digits, the last a digit or X")]
    Characters,
    #[error("the first two digits are not a province code")]
    Province,
    #[error("the birth date is not a date between 1900 and today")]
    BirthDate,
    #[error("the check character does not match")]
    Checksum,
}

/// A valid resident identity number: its 18 characters (the check character upper case).
#[derive(Clone, PartialEq, Eq)]
pub struct ResidentId(String);

impl std::fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl ResidentId {
    /// Parses `text` as of business date `today` (a birth date after it is impossible). A
    /// lower-case final `x` is read as `X`; nothing else is normalized (no spaces, no 15-digit
    /// numbers of the 1985 format).
    pub fn parse(text: &str, today: BusinessDate) -> Result<ResidentId, IdError> {
        let b = text.as_bytes();
        if b.len() != 18 {
            return Err(IdError::Length);
        }
        let last = b[17].to_ascii_uppercase();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
            return Err(IdError::Characters);
        }
        let digit = |i: usize| u32::from(b[i] - b'0');
        let province = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !PROVINCES.contains(&province) {
            return Err(IdError::Province);
        }
        let number =
            |from: usize, len: usize| (from..from + len).fold(0u32, |n, i| n * 10 + digit(i));
        let (year, month, day) = (number(6, 4) as i32, number(10, 2), number(12, 2));
        if !is_date(year, month, day) || year < BORN_AFTER || (year, month, day) > today.ymd() {
            return Err(IdError::BirthDate);
        }
        let sum: u32 = WEIGHTS.iter().enumerate().map(|(i, w)| w * digit(i)).sum();
        if CHECK[(sum % 11) as usize] != last {
            return Err(IdError::Checksum);
        }
        let mut id = text[..17].to_string();
        id.push(char::from(last));
        Ok(ResidentId(id))
    }

    /// The 18 characters (for sealing; never for display or logs).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `110***********123X`: the first three and the last four characters, as payment apps
    /// show one.
    pub fn masked(&self) -> String {
        format!("{}{}{}", &self.0[..3], "*".repeat(11), &self.0[14..])
    }

    /// The birth date it carries: (year, month, day).
    pub fn birth_date(&self) -> (i32, u32, u32) {
        let n = |from: usize, len: usize| self.0[from..from + len].parse::<u32>().unwrap_or(0);
        (n(6, 4) as i32, n(10, 2), n(12, 2))
    }
}

/// Whether (year, month, day) is a date of the Gregorian calendar.
fn is_date(year: i32, month: u32, day: u32) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// The check character GB 11643 gives 17 body digits (for building valid numbers in tests
/// and simulators).
pub fn check_character(body: &str) -> Option<char> {
    let b = body.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = WEIGHTS
        .iter()
        .zip(b)
        .map(|(w, d)| w * u32::from(d - b'0'))
        .sum();
    Some(char::from(CHECK[(sum % 11) as usize]))
}

/// A KYC level's limits, in minor units; `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_payment: Option<i64>,
    pub per_day: Option<i64>,
    pub per_year: Option<i64>,
    /// The most the customer's balance may hold.
    pub balance_cap: Option<i64>,
}

impl Limits {
    /// Parses a level's limits as configured: `name=amount` pairs separated by commas, names
    /// among `per_payment`, `per_day`, `per_year`, `balance_cap`; a name left out is no limit
    /// (`""`: none at all). Amounts are in `currency`, at most its minor units, not negative.
    pub fn parse(text: &str, currency: crate::Currency) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, amount) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not name=amount"))?;
            let value = crate::money::parse_amount(amount.trim(), currency)
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("{amount:?} is not an amount ≥ 0 in {currency}"))?;
            let slot = match name.trim() {
                "per_payment" => &mut limits.per_payment,
                "per_day" => &mut limits.per_day,
                "per_year" => &mut limits.per_year,
                "balance_cap" => &mut limits.balance_cap,
                other => {
                    return Err(format!(
                        "{other:?} is not one of per_payment, per_day, per_year, balance_cap"
                    ))
                }
            };
            if slot.replace(value).is_some() {
                return Err(format!("{name:?} is given twice"));
            }
        }
        Ok(limits)
    }
}

/// What a customer has paid in the current business day and year.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Counters {
    /// The business date `day` counts, and its total.
    pub date: Option<BusinessDate>,
    pub day: i64,
    /// The business year `year` counts, and its total.
    pub year_of: Option<i32>,
    pub year: i64,
}

impl Counters {
    /// The counters as of business date `today`: a new day (or year) starts from zero at the
    /// business-date switch, never at a wall-clock midnight.
    pub fn on(self, today: BusinessDate) -> Counters {
        let y = today.ymd().0;
        Counters {
            date: Some(today),
            day: if self.date == Some(today) {
                self.day
            } else {
                0
            },
            year_of: Some(y),
            year: if self.year_of == Some(y) {
                self.year
            } else {
                0
            },
        }
    }
}

/// Which limit a payment would break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("the amount is over the per-payment limit of the payer's verification level")]
    PerPayment,
    #[error("the payment would take the payer over the daily limit of its verification level")]
    PerDay,
    #[error("the payment would take the payer over the yearly limit of its verification level")]
    PerYear,
}

/// Whether a payment of `amount` fits `limits` given the payer's `counters` on `today`;
/// `Ok` carries the counters with it counted.
pub fn admit(
    limits: &Limits,
    counters: Counters,
    today: BusinessDate,
    amount: i64,
) -> Result<Counters, LimitExceeded> {
    let c = counters.on(today);
    let over = |limit: Option<i64>, total: i64| {
        limit.is_some_and(|l| i128::from(total) + i128::from(amount) > i128::from(l))
    };
    if limits.per_payment.is_some_and(|l| amount > l) {
        return Err(LimitExceeded::PerPayment);
    }
    if over(limits.per_day, c.day) {
        return Err(LimitExceeded::PerDay);
    }
    if over(limits.per_year, c.year) {
        return Err(LimitExceeded::PerYear);
    }
    Ok(Counters {
        day: c.day + amount,
        year: c.year + amount,
        ..c
    })
}

/// Whether a credit of `amount` to a balance of `balance` stays within `cap`.
pub fn within_cap(limits: &Limits, balance: i64, amount: i64) -> bool {
    limits
        .balance_cap
        .is_none_or(|cap| i128::from(balance) + i128::from(amount) <= i128::from(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> BusinessDate {
        BusinessDate::from_ymd(2026, 12, 1).unwrap()
    }

    /// `body` (17 digits) with its right check character.
    fn valid(body: &str) -> String {
        format!("{body}{}", check_character(body).unwrap())
    }

    /// The same with a wrong one.
    fn wrong(body: &str) -> String {
        let right = check_character(body).unwrap();
        let other = if right == '0' { '1' } else { '0' };
        format!("{body}{other}")
    }

    #[test]
    fn the_standards_worked_example_checks() {
        // GB 11643-1999's example: 11010519491231002X.
        assert_eq!(check_character("11010519491231002"), Some('X'));
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.masked(), "110***********002X");
        assert_eq!(id.birth_date(), (1949, 12, 31));
    }

    /// The table: at least 20 numbers, each classified right.
    #[test]
    fn a_table_of_numbers_is_classified() {
        use IdError::*;
        let lower_x = valid("11010519491231002").to_lowercase();
        let cases: Vec<(String, Result<(), IdError>)> = vec![
            ("11010519491231002X".into(), Ok(())),
            (lower_x.clone(), Ok(())),
            (valid("44030419900101001"), Ok(())),
            (valid("31011520001229123"), Ok(())),
            (valid("51010719780816422"), Ok(())),
            (valid("65010219000101001"), Ok(())),
            // Born today: allowed.
            (valid("33010220261201001"), Ok(())),
            (valid("81000019850704005"), Ok(())),
            (wrong("44030419900101001"), Err(Checksum)),
            (wrong("11010519491231002"), Err(Checksum)),
            ("110105194912310021".into(), Err(Checksum)),
            // Impossible birth dates: 30 February, month 13, day 00, 29 February of a
            // non-leap year, tomorrow, before 1900.
            (valid("11010519900230001"), Err(BirthDate)),
            (valid("11010519901301001"), Err(BirthDate)),
            (valid("11010519900100001"), Err(BirthDate)),
            (valid("11010520230229001"), Err(BirthDate)),
            (valid("11010520261202001"), Err(BirthDate)),
            (valid("11010518991231001"), Err(BirthDate)),
            // 29 February of a leap year is a date.
            (valid("11010520000229001"), Ok(())),
            // Wrong length: the 15-digit 1985 format, 17 and 19 characters, empty.
            ("110105491231002".into(), Err(Length)),
            ("11010519491231002".into(), Err(Length)),
            ("11010519491231002X1".into(), Err(Length)),
            (String::new(), Err(Length)),
            // Characters: a letter in the body, X not last, a full-width digit.
            ("1101051949123100AX".into(), Err(Characters)),
            ("X10105194912310021".into(), Err(Characters)),
            ("11010519491231002Y".into(), Err(Characters)),
            ("１1010519491231002X".into(), Err(Length)),
            // Not a province: 00, 10, 99.
            (valid("00010519491231002"), Err(Province)),
            (valid("10010519491231002"), Err(Province)),
            (valid("99010519491231002"), Err(Province)),
        ];
        assert!(cases.len() >= 20);
        for (text, want) in &cases {
            let got = ResidentId::parse(text, today()).map(|_| ());
            assert_eq!(&got, want, "{text:?}");
        }
        // The lower-case x is read as X.
        let id = ResidentId::parse(&lower_x, today()).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert!(!format!("{id:?}").contains("1949"), "Debug shows it masked");
    }

    #[test]
    fn limits_count_by_business_day_and_year() {
        let limits = Limits {
            per_payment: Some(5_000),
            per_day: Some(10_000),
            per_year: Some(15_000),
            balance_cap: Some(20_000),
        };
        let d1 = today();
        let d2 = d1.next().unwrap();
        let c = admit(&limits, Counters::default(), d1, 5_000).unwrap();
        let c = admit(&limits, c, d1, 5_000).unwrap();
        assert_eq!((c.day, c.year), (10_000, 10_000));
        assert_eq!(admit(&limits, c, d1, 1), Err(LimitExceeded::PerDay));
        assert_eq!(admit(&limits, c, d1, 5_001), Err(LimitExceeded::PerPayment));
        // The next business date starts a new day, not a new year.
        let c = admit(&limits, c, d2, 5_000).unwrap();
        assert_eq!((c.day, c.year), (5_000, 15_000));
        assert_eq!(admit(&limits, c, d2, 1), Err(LimitExceeded::PerYear));
        // A new business year starts the year again.
        let next_year = BusinessDate::from_ymd(2027, 1, 1).unwrap();
        let c = admit(&limits, c, next_year, 5_000).unwrap();
        assert_eq!((c.day, c.year), (5_000, 5_000));
        assert!(within_cap(&limits, 15_000, 5_000));
        assert!(!within_cap(&limits, 15_000, 5_001));
        assert!(within_cap(&Limits::default(), i64::MAX, i64::MAX));
    }

    #[test]
    fn limits_parse_as_configured() {
        let cny = crate::Currency::from_code("CNY").unwrap();
        assert_eq!(
            Limits::parse("per_payment=200.00, per_day=500,balance_cap=1000.5", cny),
            Ok(Limits {
                per_payment: Some(20_000),
                per_day: Some(50_000),
                per_year: None,
                balance_cap: Some(100_050),
            })
        );
        assert_eq!(Limits::parse("", cny), Ok(Limits::default()));
        for bad in [
            "per_payment",
            "per_payment=1.001",
            "per_payment=-1",
            "per_week=1",
            "per_day=1,per_day=2",
        ] {
            assert!(Limits::parse(bad, cny).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any 17 digits with a province code and a real past birth date, with the check
        /// character GB 11643 gives them, parse; any other final character does not.
        #[test]
        fn exactly_the_right_check_character_parses(
            province in proptest::sample::select(PROVINCES.to_vec()),
            rest in 0u32..10_000,
            days in 0i32..40_000,
            seq in 0u32..1_000,
            other in proptest::sample::select(b"0123456789X".to_vec()),
        ) {
            let born = BusinessDate(today().0 - days);
            let (y, m, d) = born.ymd();
            proptest::prop_assume!(y >= BORN_AFTER);
            let body = format!("{province:02}{rest:04}{y:04}{m:02}{d:02}{seq:03}");
            let right = check_character(&body).unwrap();
            let text = format!("{body}{}", char::from(other));
            let parsed = ResidentId::parse(&text, today());
            proptest::prop_assert_eq!(parsed.is_ok(), char::from(other) == right);
        }
    }
}
