//! Coupons (营销, issue #18, `../shared/FUNDS.md` "Coupons"): what a coupon takes off an
//! order, whether a stock can still give it, and how a refund of a discounted payment splits
//! between the payer and the stock's budget. Pure: amounts in minor units, times given.

/// How a stock's coupons discount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Discount {
    /// A fixed amount off (minor units).
    Fixed(i64),
    /// A share off, in basis points (1 to 10,000), rounded down to the minor unit.
    Percent(u32),
}

/// Why a coupon cannot be redeemed on an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the order is below the coupon's minimum")]
    BelowMinimum,
    #[error("the coupon's stock has not enough budget left")]
    BudgetExhausted,
    #[error("the coupon is outside its validity")]
    OutsideValidity,
}

/// A share off as configured (`"10"`, `"12.5"`, `"0.01"`): more than 0, at most 100, two
/// decimals at most; in basis points.
pub fn parse_percent(text: &str) -> Result<u32, &'static str> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole)
        || (text.contains('.') && (frac.is_empty() || frac.len() > 2))
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("a percentage like 10 or 12.5, two decimals at most");
    }
    let w: u32 = whole.parse().map_err(|_| "not a number")?;
    let f: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| "not a number")?
    };
    let bp = w * 100 + f;
    if bp == 0 || bp > 10_000 {
        return Err("more than 0 and at most 100");
    }
    Ok(bp)
}

/// The discount of `rule` on an order of `amount`: never the whole order (the payer pays at
/// least one minor unit), never below zero.
pub fn discount(rule: Discount, amount: i64) -> i64 {
    let off = match rule {
        Discount::Fixed(v) => v,
        Discount::Percent(bp) => {
            let v = i128::from(amount) * i128::from(bp) / 10_000;
            i64::try_from(v).unwrap_or(i64::MAX)
        }
    };
    off.clamp(0, (amount - 1).max(0))
}

/// A stock's terms and what it has given so far, as a redemption sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stock {
    pub rule: Discount,
    pub min_order: i64,
    /// The money the stock may give away in all.
    pub budget: i64,
    /// What it has given (less what refunds returned).
    pub spent: i64,
    /// Validity, ns since the epoch: `from ≤ now < until`.
    pub valid_from_ns: u64,
    pub valid_until_ns: u64,
}

/// The discount a coupon of `stock` gives on an order of `amount` at `now`, or why it
/// cannot be redeemed.
pub fn redeem(stock: &Stock, amount: i64, now: u64) -> Result<i64, Unavailable> {
    if now < stock.valid_from_ns || now >= stock.valid_until_ns {
        return Err(Unavailable::OutsideValidity);
    }
    if amount < stock.min_order {
        return Err(Unavailable::BelowMinimum);
    }
    let d = discount(stock.rule, amount);
    let left = stock.budget.saturating_sub(stock.spent);
    if d > left {
        return Err(Unavailable::BudgetExhausted);
    }
    Ok(d)
}

/// How many coupons of `rule` a budget covers at most, on orders of `amount` each.
pub fn coupons_covered(rule: Discount, budget: i64, amount: i64) -> i64 {
    match discount(rule, amount) {
        0 => i64::MAX,
        d => budget / d,
    }
}

/// The parts of a refund of a discounted payment: of `refund` (of the order amount
/// `amount`, `refunded` already), how much goes back to the payer and how much to the
/// stock's budget. Pro rata to what each paid (`amount − discount` and `discount`), on
/// cumulative amounts, rounded down for the budget: the parts of all refunds add up to
/// exactly what each paid.
pub fn refund_parts(amount: i64, discount: i64, refunded: i64, refund: i64) -> (i64, i64) {
    let budget_upto = |r: i64| -> i64 {
        if amount == 0 {
            return 0;
        }
        let v = i128::from(discount) * i128::from(r) / i128::from(amount);
        i64::try_from(v).unwrap_or(0)
    };
    let to_budget = budget_upto(refunded + refund) - budget_upto(refunded);
    (refund - to_budget, to_budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock(rule: Discount) -> Stock {
        Stock {
            rule,
            min_order: 5_000,
            budget: 1_000,
            spent: 0,
            valid_from_ns: 100,
            valid_until_ns: 200,
        }
    }

    #[test]
    fn percentages_parse_to_basis_points() {
        for (text, bp) in [
            ("10", 1_000),
            ("12.5", 1_250),
            ("0.01", 1),
            ("100", 10_000),
            ("7.05", 705),
        ] {
            assert_eq!(parse_percent(text), Ok(bp), "{text}");
        }
        for bad in [
            "0", "0.00", "100.01", "101", "", ".5", "5.", "1.234", "-1", "1e2", "abc",
        ] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn discounts_never_take_the_whole_order() {
        assert_eq!(discount(Discount::Fixed(500), 10_000), 500);
        assert_eq!(discount(Discount::Fixed(500), 300), 299);
        assert_eq!(discount(Discount::Fixed(500), 1), 0);
        assert_eq!(
            discount(Discount::Percent(1_500), 9_999),
            1_499,
            "rounded down"
        );
        assert_eq!(discount(Discount::Percent(10_000), 9_999), 9_998);
        assert_eq!(discount(Discount::Percent(1), 99), 0);
    }

    #[test]
    fn a_redemption_needs_validity_the_minimum_and_budget() {
        let s = stock(Discount::Fixed(500));
        assert_eq!(redeem(&s, 5_000, 150), Ok(500));
        assert_eq!(redeem(&s, 4_999, 150), Err(Unavailable::BelowMinimum));
        assert_eq!(redeem(&s, 5_000, 99), Err(Unavailable::OutsideValidity));
        assert_eq!(redeem(&s, 5_000, 200), Err(Unavailable::OutsideValidity));
        let spent = Stock { spent: 501, ..s };
        assert_eq!(
            redeem(&spent, 5_000, 150),
            Err(Unavailable::BudgetExhausted)
        );
        let exact = Stock { spent: 500, ..s };
        assert_eq!(redeem(&exact, 5_000, 150), Ok(500));
        assert_eq!(coupons_covered(Discount::Fixed(500), 1_000, 5_000), 2);
    }

    #[test]
    fn refund_parts_add_up_to_what_each_paid() {
        // 100.00 order, 15.00 off: the payer paid 85.00, the budget 15.00.
        let (a, d) = (10_000, 1_500);
        let mut refunded = 0;
        let (mut payer, mut budget) = (0, 0);
        for r in [3_333, 3_333, 3_334] {
            let (p, b) = refund_parts(a, d, refunded, r);
            assert_eq!(p + b, r);
            payer += p;
            budget += b;
            refunded += r;
        }
        assert_eq!((payer, budget), (a - d, d));
        assert_eq!(refund_parts(a, d, 0, a), (a - d, d));
        assert_eq!(refund_parts(a, 0, 0, 1_000), (1_000, 0));
    }

    proptest::proptest! {
        /// Any sequence of partial refunds gives back exactly what the payer and the budget
        /// paid, each part within its refund.
        #[test]
        fn refunds_in_any_pieces_return_exactly(
            amount in 2i64..10_000_000,
            off in 0i64..10_000_000,
            cuts in proptest::collection::vec(1i64..1_000_000, 1..20),
        ) {
            let d = discount(Discount::Fixed(off), amount);
            let mut refunded = 0;
            let (mut payer, mut budget) = (0, 0);
            for c in cuts {
                let r = c.min(amount - refunded);
                if r == 0 {
                    break;
                }
                let (p, b) = refund_parts(amount, d, refunded, r);
                proptest::prop_assert!(p >= 0 && b >= 0 && p + b == r);
                payer += p;
                budget += b;
                refunded += r;
            }
            let (p, b) = refund_parts(amount, d, refunded, amount - refunded);
            payer += p;
            budget += b;
            proptest::prop_assert_eq!((payer, budget), (amount - d, d));
        }
    }
}
