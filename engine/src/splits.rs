//! Profit sharing (分账, `../shared/FUNDS.md` "Profit sharing", issue #16): a payment's shares
//! for other accounts, after its fee, and what a refund takes back from each. Pure integer
//! rules in minor units; nothing is lost or created by rounding.
//!
//! - A share is an amount, or a ratio of `amount − fee` rounded down (floor) to the minor
//!   unit; the merchant keeps the rest, so shares + merchant's part + fee = amount exactly.
//! - A refund takes back from each share `floor(share × refunded_after / amount) −
//!   floor(share × refunded_before / amount)`: on cumulative amounts, so the refund that
//!   completes the payment takes back exactly what is left of each share, and the merchant's
//!   part of the refund is what remains after the fee part and the shares.

/// The most shares one payment can have.
pub const SPLITS_MAX: usize = 50;

/// One requested share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// A fixed amount, in minor units (> 0).
    Amount(i64),
    /// A ratio of the payment after its fee, in parts per million (1..=1,000,000).
    RatioPpm(u32),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("at most {SPLITS_MAX} splits, got {0}")]
    TooMany(usize),
    #[error("split {0}: an amount must be more than zero")]
    NotPositive(usize),
    #[error("split {0}: a ratio must be a decimal more than 0 and at most 1, with at most 6 decimal places")]
    BadRatio(usize),
    #[error("the ratios add up to more than 1")]
    RatiosAboveOne,
    #[error("the splits ({shares}) add up to more than the payment after its fee ({base})")]
    AboveBase { shares: i64, base: i64 },
}

/// Parses a ratio share such as `"0.30"` into parts per million: more than 0, at most 1,
/// at most 6 decimal places (the grammar of amounts).
pub fn parse_ratio(text: &str, index: usize) -> Result<u32, SplitError> {
    match crate::money::parse_fee_rate(text) {
        Ok(ppm) if ppm > 0 => Ok(ppm),
        _ => Err(SplitError::BadRatio(index)),
    }
}

/// Each share's amount for a payment of `amount` with fee `fee`, in the order requested.
/// The merchant keeps `amount − fee − Σ shares` (≥ 0).
pub fn shares(amount: i64, fee: i64, requested: &[Share]) -> Result<Vec<i64>, SplitError> {
    if requested.len() > SPLITS_MAX {
        return Err(SplitError::TooMany(requested.len()));
    }
    let base = amount.saturating_sub(fee).max(0);
    let mut ratios: u64 = 0;
    let mut out = Vec::with_capacity(requested.len());
    for (i, share) in requested.iter().enumerate() {
        let value = match *share {
            Share::Amount(a) if a > 0 => a,
            Share::Amount(_) => return Err(SplitError::NotPositive(i)),
            Share::RatioPpm(ppm) if (1..=1_000_000).contains(&ppm) => {
                ratios += u64::from(ppm);
                let v = i128::from(base) * i128::from(ppm) / 1_000_000;
                i64::try_from(v).expect("a ratio of the base fits")
            }
            Share::RatioPpm(_) => return Err(SplitError::BadRatio(i)),
        };
        out.push(value);
    }
    if ratios > 1_000_000 {
        return Err(SplitError::RatiosAboveOne);
    }
    let total = out
        .iter()
        .try_fold(0i64, |acc, v| acc.checked_add(*v))
        .unwrap_or(i64::MAX);
    if total > base {
        return Err(SplitError::AboveBase {
            shares: total,
            base,
        });
    }
    Ok(out)
}

/// What a refund moving the payment's refunded total from `before` to `after` (of
/// `amount`) takes back from each share: floors on cumulative amounts.
///
/// # Panics
/// Unless `0 <= before <= after <= amount` and `amount > 0`.
pub fn take_back(shares: &[i64], before: i64, after: i64, amount: i64) -> Vec<i64> {
    assert!(amount > 0 && 0 <= before && before <= after && after <= amount);
    let floor = |share: i64, part: i64| -> i64 {
        let v = i128::from(share) * i128::from(part) / i128::from(amount);
        i64::try_from(v).expect("a part of a share fits")
    };
    shares
        .iter()
        .map(|s| floor(*s, after) - floor(*s, before))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::pro_rata_minor;

    #[test]
    fn two_fifty_split_half_and_forty_five_percent() {
        // 2.50, no fee: 50% = 1.25, 45% = 1.125 → 1.12; the merchant keeps 0.13.
        let got = shares(
            250,
            0,
            &[Share::RatioPpm(500_000), Share::RatioPpm(450_000)],
        )
        .unwrap();
        assert_eq!(got, [125, 112]);
        assert_eq!(250 - got.iter().sum::<i64>(), 13);
        // With a fee the shares come from what is left after it.
        let got = shares(
            10_000,
            60,
            &[Share::RatioPpm(300_000), Share::Amount(1_000)],
        )
        .unwrap();
        assert_eq!(got, [2_982, 1_000]);
    }

    #[test]
    fn splits_beyond_the_payment_are_refused() {
        assert_eq!(
            shares(100, 10, &[Share::Amount(91)]),
            Err(SplitError::AboveBase {
                shares: 91,
                base: 90
            })
        );
        assert_eq!(
            shares(
                100,
                0,
                &[Share::RatioPpm(600_000), Share::RatioPpm(500_000)]
            ),
            Err(SplitError::RatiosAboveOne)
        );
        assert_eq!(
            shares(100, 0, &[Share::Amount(0)]),
            Err(SplitError::NotPositive(0))
        );
        assert_eq!(
            shares(100, 0, &[Share::RatioPpm(0)]),
            Err(SplitError::BadRatio(0))
        );
        assert_eq!(
            shares(100, 0, &[Share::Amount(1); 51]),
            Err(SplitError::TooMany(51))
        );
        assert_eq!(shares(100, 0, &[Share::Amount(1); 50]).unwrap().len(), 50);
    }

    #[test]
    fn ratios_parse_strictly() {
        assert_eq!(parse_ratio("0.30", 0), Ok(300_000));
        assert_eq!(parse_ratio("1", 0), Ok(1_000_000));
        assert_eq!(parse_ratio("0.000001", 0), Ok(1));
        for bad in ["0", "0.0000001", "1.01", "-0.1", "abc", "", ".5", "0.5e1"] {
            assert_eq!(parse_ratio(bad, 3), Err(SplitError::BadRatio(3)), "{bad}");
        }
    }

    #[test]
    fn a_refund_after_a_split_takes_back_what_was_shared_pro_rata() {
        let s = [125, 112];
        // Half of 2.50 refunded, then the rest.
        let first = take_back(&s, 0, 125, 250);
        assert_eq!(first, [62, 56]);
        let rest = take_back(&s, 125, 250, 250);
        assert_eq!(rest, [63, 56]);
        assert_eq!([first[0] + rest[0], first[1] + rest[1]], s);
    }

    /// The rule as FUNDS.md states it (floors on cumulative amounts, the fee half up, the
    /// merchant the rest) is exact over the whole payment, but when the merchant keeps
    /// nothing one refund's merchant part can be a unit below zero: 0.03 with a fee of 0.01
    /// and a share of 0.02, refunded 0.01 then 0.01 then 0.01.
    #[test]
    fn the_merchants_part_of_one_refund_can_be_one_unit_below_zero() {
        let (amount, fee, share) = (3, 1, [2]);
        let mut parts = Vec::new();
        for (before, after) in [(0, 1), (1, 2), (2, 3)] {
            let f = pro_rata_minor(fee, after, amount) - pro_rata_minor(fee, before, amount);
            let s = take_back(&share, before, after, amount)[0];
            parts.push((f, s, (after - before) - f - s));
        }
        assert_eq!(parts, [(0, 0, 1), (1, 1, -1), (0, 1, 0)]);
        // Over the whole payment: the fee, the share and nothing for the merchant.
        let total = parts
            .iter()
            .fold((0, 0, 0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
        assert_eq!(total, (1, 2, 0));
    }

    proptest::proptest! {
        /// Shares + the merchant's part + the fee = the amount, for any amounts and ratios;
        /// and any sequence of refunds takes back exactly each share, each refund's parts
        /// (fee, shares, merchant) adding up to the refund.
        #[test]
        fn shares_and_refunds_add_up_exactly(
            amount in 1i64..=1_000_000_000,
            fee_ppm in 0u32..=100_000,
            ratios in proptest::collection::vec(1u32..=400_000, 0..4),
            amounts in proptest::collection::vec(1i64..=10_000, 0..3),
            cuts in proptest::collection::vec(1i64..=1_000_000_000, 0..6),
        ) {
            let fee = crate::money::fee_minor(amount, fee_ppm);
            let mut requested: Vec<Share> = ratios.iter().map(|r| Share::RatioPpm(*r)).collect();
            requested.extend(amounts.iter().map(|a| Share::Amount(*a)));
            let Ok(got) = shares(amount, fee, &requested) else {
                // Refused only when the splits do not fit.
                let base = i128::from(amount - fee);
                let ratio_sum: u64 = ratios.iter().map(|r| u64::from(*r)).sum();
                let floors: i128 = ratios.iter().map(|r| base * i128::from(*r) / 1_000_000).sum();
                let fixed: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
                proptest::prop_assert!(ratio_sum > 1_000_000 || floors + fixed > base);
                return Ok(());
            };
            let merchant = amount - fee - got.iter().sum::<i64>();
            proptest::prop_assert!(merchant >= 0);
            proptest::prop_assert_eq!(got.iter().sum::<i64>() + merchant + fee, amount);
            let mut refunded = 0i64;
            let mut taken = vec![0i64; got.len()];
            let mut fee_back = 0i64;
            for cut in cuts.into_iter().chain([amount]) {
                let r = cut.min(amount - refunded);
                let parts = take_back(&got, refunded, refunded + r, amount);
                let f = pro_rata_minor(fee, refunded + r, amount) - pro_rata_minor(fee, refunded, amount);
                // The merchant's part is the rest (it can be −1 unit on one refund: see
                // `the_merchants_part_of_one_refund_can_be_one_unit_below_zero`).
                let merchant_part = r - f - parts.iter().sum::<i64>();
                proptest::prop_assert!(merchant_part >= -(parts.len() as i64) - 1);
                for (t, p) in taken.iter_mut().zip(&parts) {
                    proptest::prop_assert!(*p >= 0);
                    *t += p;
                }
                fee_back += f;
                refunded += r;
            }
            proptest::prop_assert_eq!(&taken, &got);
            proptest::prop_assert_eq!(fee_back, fee);
        }
    }
}
