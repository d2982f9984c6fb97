//! Exact money: ISO 4217 currencies, integer minor units, strict decimal parsing.
//!
//! Amounts cross the API as decimal strings in major units (`"12.34"`). They are parsed with
//! `rust_decimal` after a strict grammar check, their scale is checked against the currency's
//! minor units, and from then on they are `i64` minor units with checked arithmetic only.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// The largest amount one posting may carry, in minor units: 10^15 (ten trillion CNY).
/// Chosen so that even 9,000 maximal credits cannot overflow an `i64` balance, and so that
/// every amount times a fee rate in parts per million fits comfortably in an `i128`.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// The longest amount string accepted, in bytes. Anything longer is rejected before parsing,
/// so a hostile client cannot make us parse megabytes of digits.
pub const AMOUNT_TEXT_LEN_MAX: usize = 40;

/// Fee rates are integer parts per million: `"0.006"` is 6,000 ppm.
pub const FEE_RATE_PPM_MAX: u32 = 1_000_000;

/// An active ISO 4217 currency with defined minor units.
///
/// Persisted as its ISO numeric code (two bytes), so records do not depend on the
/// `iso_currency` crate's enum layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

/// Why a currency or amount was refused. Each variant carries enough to say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or inactive currency {0:?}")]
    UnknownCurrency(String),
    #[error("amount {0:?} is not a plain decimal number (digits, one optional '.', no sign, exponent or spaces)")]
    Malformed(String),
    #[error("amount {text:?} has {scale} decimal places but {currency} allows at most {max}")]
    TooPrecise {
        text: String,
        currency: &'static str,
        scale: u32,
        max: u32,
    },
    #[error("amount {0:?} must be greater than zero")]
    NotPositive(String),
    #[error("amount {0:?} is above the maximum of {max} minor units", max = AMOUNT_MINOR_MAX)]
    TooLarge(String),
    #[error("fee rate {0:?} must be a decimal between 0 and 1 with at most 6 decimal places")]
    BadFeeRate(String),
}

impl Currency {
    /// Looks up an alphabetic code. Only exact upper-case, active codes with minor units are
    /// accepted: superseded codes (HRK), and codes without minor units (XAU, XXX) are refused.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let bad = || MoneyError::UnknownCurrency(code.to_string());
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let c = iso_currency::Currency::from_code(code).ok_or_else(bad)?;
        Self::active(c).ok_or_else(bad)
    }

    /// Looks up an ISO numeric code (the persisted form).
    pub fn from_numeric(numeric: u16) -> Option<Currency> {
        iso_currency::Currency::from_numeric(numeric).and_then(Self::active)
    }

    fn active(c: iso_currency::Currency) -> Option<Currency> {
        let exponent = c.exponent()?;
        if c.is_special() || c.is_superseded().is_some() || exponent > 4 {
            return None;
        }
        Some(Currency(c))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    pub fn numeric(self) -> u16 {
        self.0.numeric()
    }

    /// Number of decimal places of the minor unit (CNY 2, JPY 0, KWD 3, CLF 4).
    pub fn minor_units(self) -> u32 {
        // `active` guarantees an exponent of at most 4.
        u32::from(self.0.exponent().unwrap_or(0))
    }

    pub const CNY: Currency = Currency(iso_currency::Currency::CNY);
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);
    pub const KWD: Currency = Currency(iso_currency::Currency::KWD);
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl bincode::Encode for Currency {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.numeric().encode(encoder)
    }
}

impl<C> bincode::Decode<C> for Currency {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let numeric = u16::decode(decoder)?;
        Currency::from_numeric(numeric).ok_or(bincode::error::DecodeError::Other(
            "unknown ISO 4217 numeric currency code",
        ))
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for Currency {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        bincode::Decode::decode(decoder)
    }
}

/// Checks the strict grammar `digits [ '.' digits ]`: no sign, no exponent, no spaces, no
/// leading or trailing dot. `rust_decimal` alone would accept `"1e3"`, `"+1"`, `"1_000"`.
fn plain_decimal(text: &str) -> bool {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// Parses a positive amount in major units into minor units of `currency`.
///
/// Refuses: anything but a plain decimal, more decimal places than the currency has (trailing
/// zeros count: `"1.230"` CNY is over-precise, because the client said something we can't
/// represent as stated), zero, and anything above [`AMOUNT_MINOR_MAX`].
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let malformed = || MoneyError::Malformed(text.to_string());
    if text.len() > AMOUNT_TEXT_LEN_MAX || !plain_decimal(text) {
        return Err(if text.len() > AMOUNT_TEXT_LEN_MAX && plain_decimal(text) {
            MoneyError::TooLarge(text.to_string())
        } else {
            malformed()
        });
    }
    let value = match Decimal::from_str_exact(text) {
        Ok(v) => v,
        // Only digits and a dot got here, so the one failure left is magnitude or digit count.
        Err(_) => return Err(MoneyError::TooLarge(text.to_string())),
    };
    let max = currency.minor_units();
    if value.scale() > max {
        return Err(MoneyError::TooPrecise {
            text: text.to_string(),
            currency: currency.code(),
            scale: value.scale(),
            max,
        });
    }
    // mantissa * 10^(max - scale); the mantissa of a 40-byte decimal fits i128 easily, and
    // the exponent is at most 4, so only the final range check can fail.
    let scale_up = 10i128.pow(max - value.scale());
    let minor = value
        .mantissa()
        .checked_mul(scale_up)
        .ok_or_else(|| MoneyError::TooLarge(text.to_string()))?;
    if minor <= 0 {
        return Err(MoneyError::NotPositive(text.to_string()));
    }
    if minor > i128::from(AMOUNT_MINOR_MAX) {
        return Err(MoneyError::TooLarge(text.to_string()));
    }
    i64::try_from(minor).map_err(|_| MoneyError::TooLarge(text.to_string()))
}

/// Formats minor units at the currency's full scale: 1230 CNY is `"12.30"`, -5 is `"-0.05"`.
/// Takes `i128` too: an available amount adds a credit limit to a balance.
pub fn format_minor(minor: impl Into<i128>, currency: Currency) -> String {
    Decimal::from_i128_with_scale(minor.into(), currency.minor_units()).to_string()
}

/// Parses a fee rate such as `"0.006"` into parts per million. At most 6 decimal places,
/// between 0 and 1 inclusive, same strict grammar as amounts.
pub fn parse_fee_rate(text: &str) -> Result<u32, MoneyError> {
    let bad = || MoneyError::BadFeeRate(text.to_string());
    if text.len() > AMOUNT_TEXT_LEN_MAX || !plain_decimal(text) {
        return Err(bad());
    }
    let value = Decimal::from_str(text).map_err(|_| bad())?;
    if value.scale() > 6 {
        return Err(bad());
    }
    let ppm = value.mantissa() * 10i128.pow(6 - value.scale());
    if !(0..=i128::from(FEE_RATE_PPM_MAX)).contains(&ppm) {
        return Err(bad());
    }
    u32::try_from(ppm).map_err(|_| bad())
}

/// Formats a fee rate in ppm as a decimal without trailing zeros: 6,000 is `"0.006"`.
pub fn format_fee_rate(ppm: u32) -> String {
    Decimal::new(i64::from(ppm), 6).normalize().to_string()
}

/// The fee on `amount_minor` at `rate_ppm`, rounded half up to the minor unit (the rounding
/// Chinese acquirers use, 四舍五入). Never more than the amount.
pub fn fee_minor(amount_minor: i64, rate_ppm: u32) -> i64 {
    assert!((0..=AMOUNT_MINOR_MAX).contains(&amount_minor));
    assert!(rate_ppm <= FEE_RATE_PPM_MAX);
    let scaled = i128::from(amount_minor) * i128::from(rate_ppm);
    let fee = (scaled + 500_000) / 1_000_000;
    // Both bounds were asserted, so fee <= amount <= AMOUNT_MINOR_MAX fits i64.
    let fee = i64::try_from(fee).expect("fee is bounded by the amount");
    assert!(fee <= amount_minor);
    fee
}

/// A merchant's fee terms (`../shared/FUNDS.md`, "Merchant settlement"): a rate, a fixed part
/// per payment, and an optional minimum and maximum, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeeTerms {
    pub rate_ppm: u32,
    pub fixed: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl FeeTerms {
    /// clamp(round_half_up(amount × rate) + fixed, min, max), never above the amount and
    /// never below zero: the fee stored with a payment of `amount_minor`.
    ///
    /// # Panics
    /// As [`fee_minor`], for an amount or a rate out of range.
    pub fn fee(&self, amount_minor: i64) -> i64 {
        let mut fee = fee_minor(amount_minor, self.rate_ppm).saturating_add(self.fixed.max(0));
        if let Some(min) = self.min {
            fee = fee.max(min);
        }
        if let Some(max) = self.max {
            fee = fee.min(max);
        }
        fee.clamp(0, amount_minor)
    }
}

/// `value × numerator / denominator`, rounded half up: the share of a fee that goes with a
/// share of a payment. Refunds use it on cumulative amounts (fee refunded after this refund
/// minus fee refunded before), so partial refunds add up to exactly the whole fee.
///
/// # Panics
/// Unless `0 <= numerator <= denominator`, `denominator > 0` and `value >= 0`.
pub fn pro_rata_minor(value: i64, numerator: i64, denominator: i64) -> i64 {
    assert!(denominator > 0 && (0..=denominator).contains(&numerator) && value >= 0);
    let scaled = i128::from(value) * i128::from(numerator);
    let d = i128::from(denominator);
    let share = (2 * scaled + d) / (2 * d);
    i64::try_from(share).expect("a share of value fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fee table at the rounding edges (issue #16), in fen.
    #[test]
    fn fees_round_half_up_then_clamp_and_never_exceed_the_amount() {
        let rate = |ppm| FeeTerms {
            rate_ppm: ppm,
            ..FeeTerms::default()
        };
        // 32.50 at 0.60% = 0.195 → 0.20; 0.01 at 1% = 0.0001 → 0.00.
        assert_eq!(rate(6_000).fee(3_250), 20);
        assert_eq!(rate(10_000).fee(1), 0);
        // Exactly half a fen rounds up; just under it rounds down.
        assert_eq!(rate(5_000).fee(100), 1); // 1.00 at 0.5% = 0.005
        assert_eq!(rate(4_999).fee(100), 0);
        assert_eq!(rate(6_000).fee(1_250), 8); // 12.50 at 0.6% = 0.075
        let terms = FeeTerms {
            rate_ppm: 6_000,
            fixed: 30,
            min: Some(50),
            max: Some(500),
        };
        assert_eq!(terms.fee(100), 50); // 0.006 + 0.30 = 0.31 → the minimum 0.50
        assert_eq!(terms.fee(10_000), 90); // 0.60 + 0.30
        assert_eq!(terms.fee(1_000_000), 500); // 60.00 + 0.30 → the maximum 5.00
        assert_eq!(terms.fee(20), 20); // the minimum, but never above the amount
        assert_eq!(terms.fee(0), 0);
        assert_eq!(rate(1_000_000).fee(AMOUNT_MINOR_MAX), AMOUNT_MINOR_MAX);
        let fixed_only = FeeTerms {
            fixed: 100,
            ..FeeTerms::default()
        };
        assert_eq!(fixed_only.fee(99), 99);
        assert_eq!(fixed_only.fee(101), 100);
    }

    proptest::proptest! {
        /// Any fee terms and amount: 0 ≤ fee ≤ amount, within the clamps when they allow,
        /// and any sequence of partial refunds returns exactly the fee.
        #[test]
        fn any_fee_is_within_bounds_and_refunds_return_exactly_it(
            amount in 1i64..=100_000_000,
            ppm in 0u32..=FEE_RATE_PPM_MAX,
            fixed in 0i64..=10_000,
            min in proptest::option::of(0i64..=10_000),
            span in proptest::option::of(0i64..=1_000_000),
            cuts in proptest::collection::vec(1i64..=100_000_000, 0..8),
        ) {
            let max = span.map(|s| min.unwrap_or(0) + s);
            let terms = FeeTerms { rate_ppm: ppm, fixed, min, max };
            let fee = terms.fee(amount);
            proptest::prop_assert!((0..=amount).contains(&fee));
            if let Some(max) = max {
                proptest::prop_assert!(fee <= max);
            }
            if let Some(min) = min {
                proptest::prop_assert!(fee >= min.min(amount));
            }
            let mut refunded = 0i64;
            let mut back = 0i64;
            for cut in cuts.into_iter().chain([amount]) {
                let part = cut.min(amount - refunded);
                back += pro_rata_minor(fee, refunded + part, amount)
                    - pro_rata_minor(fee, refunded, amount);
                refunded += part;
            }
            proptest::prop_assert_eq!(refunded, amount);
            proptest::prop_assert_eq!(back, fee);
        }
    }

    #[test]
    fn parses_exact_amounts() {
        assert_eq!(parse_amount("12.34", Currency::CNY), Ok(1234));
        assert_eq!(parse_amount("12.3", Currency::CNY), Ok(1230));
        assert_eq!(parse_amount("12", Currency::CNY), Ok(1200));
        assert_eq!(parse_amount("0.01", Currency::CNY), Ok(1));
        assert_eq!(parse_amount("500", Currency::JPY), Ok(500));
        assert_eq!(parse_amount("1.234", Currency::KWD), Ok(1234));
        assert_eq!(parse_amount("007.10", Currency::USD), Ok(710));
        assert_eq!(
            parse_amount("10000000000000.00", Currency::CNY),
            Ok(AMOUNT_MINOR_MAX)
        );
    }

    #[test]
    fn refuses_bad_amounts() {
        let cny = Currency::CNY;
        for bad in [
            "", " 1", "1 ", "+1", "-1", "1e3", "1E3", ".5", "5.", "1.2.3", "1,00", "1_0", "NaN",
            "inf", "0x10", "１", "1.0\n",
        ] {
            assert!(
                matches!(parse_amount(bad, cny), Err(MoneyError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_amount("12.345", cny),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_amount("1.230", cny),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_amount("1.5", Currency::JPY),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_amount("0", cny),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            parse_amount("0.00", cny),
            Err(MoneyError::NotPositive(_))
        ));
        assert!(matches!(
            parse_amount("10000000000000.01", cny),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            parse_amount("99999999999999999999999999999999", cny),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            parse_amount(&"9".repeat(100), cny),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::from_code("CNY").unwrap().minor_units(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_units(), 3);
        for bad in ["cny", "XAU", "XXX", "HRK", "ABC", "CN", "CNYY", ""] {
            assert!(Currency::from_code(bad).is_err(), "{bad}");
        }
        assert_eq!(Currency::from_numeric(156), Some(Currency::CNY));
        assert_eq!(Currency::from_numeric(959), None); // XAU
    }

    #[test]
    fn formats_full_scale() {
        assert_eq!(format_minor(1230, Currency::CNY), "12.30");
        assert_eq!(format_minor(5, Currency::CNY), "0.05");
        assert_eq!(format_minor(-5, Currency::CNY), "-0.05");
        assert_eq!(format_minor(0, Currency::CNY), "0.00");
        assert_eq!(format_minor(500, Currency::JPY), "500");
        assert_eq!(format_minor(1, Currency::KWD), "0.001");
    }

    #[test]
    fn pro_rata_shares_add_up() {
        assert_eq!(pro_rata_minor(7, 0, 1234), 0);
        assert_eq!(pro_rata_minor(7, 1234, 1234), 7);
        assert_eq!(pro_rata_minor(7, 617, 1234), 4); // 3.5 rounds up
                                                     // Any split of a payment into refunds refunds exactly the fee in total.
        let (fee, amount) = (7i64, 1234i64);
        for parts in [
            vec![1, 1, 1232],
            vec![617, 617],
            vec![100; 12].into_iter().chain([34]).collect::<Vec<_>>(),
        ] {
            let mut refunded = 0;
            let mut fee_back = 0;
            for p in parts {
                let before = pro_rata_minor(fee, refunded, amount);
                refunded += p;
                fee_back += pro_rata_minor(fee, refunded, amount) - before;
            }
            assert_eq!((refunded, fee_back), (amount, fee));
        }
    }

    #[test]
    fn fees_round_half_up() {
        assert_eq!(parse_fee_rate("0.006"), Ok(6000));
        assert_eq!(parse_fee_rate("1"), Ok(1_000_000));
        assert_eq!(parse_fee_rate("0"), Ok(0));
        assert!(parse_fee_rate("1.000001").is_err());
        assert!(parse_fee_rate("0.0000001").is_err());
        assert!(parse_fee_rate("-0.1").is_err());
        assert_eq!(format_fee_rate(6000), "0.006");
        assert_eq!(fee_minor(10_000, 6000), 60);
        assert_eq!(fee_minor(250, 6000), 2); // 1.5 rounds up
        assert_eq!(fee_minor(249, 6000), 1); // 1.494 rounds down
        assert_eq!(fee_minor(1, 1_000_000), 1);
        assert_eq!(fee_minor(AMOUNT_MINOR_MAX, 1_000_000), AMOUNT_MINOR_MAX);
    }
}
