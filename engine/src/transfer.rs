//! Transfers: balanced sets of postings. Every money movement is one.

use bincode::{Decode, Encode};

use crate::gl::{BusinessDate, GlAccount};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::money::{Currency, AMOUNT_MINOR_MAX};
use crate::Reject;

/// Most postings one transfer may have. A payment uses three (payer, merchant, fee), a
/// card payment four; profit sharing adds one per receiver (at most
/// [`crate::splits::SPLITS_MAX`]). The bound keeps a single command's work and record size
/// small and predictable.
pub const POSTINGS_PER_TRANSFER_MAX: usize = 64;

/// One leg: `amount` minor units into (`> 0`, credit) or out of (`< 0`, debit) an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Posting {
    pub account: AccountId,
    pub currency: Currency,
    pub amount: i64,
    /// The account's GL account, filled by whoever holds the account when the leg is
    /// prepared (a shard, or [`crate::Ledger`]); `None` before that, and in entries written
    /// before the chart existed. Makes every journal leg self-describing, and lets the
    /// writer keep GL turnover without a map of every account.
    pub gl: Option<GlAccount>,
}

impl Posting {
    /// A leg whose GL account is filled when it is prepared.
    pub fn new(account: AccountId, currency: Currency, amount: i64) -> Posting {
        Posting {
            account,
            currency,
            amount,
            gl: None,
        }
    }
}

/// What a transfer is for; carried in the journal for the accounting layers above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum TransferKind {
    /// Customer funds received from a bank into a customer's account.
    Deposit,
    /// A payment from a payer to a merchant, net of the platform fee.
    Payment,
    /// Money back from a merchant to a payer.
    Refund,
    /// A plain movement between two accounts.
    Transfer,
    /// A manual GL entry by finance staff: a correction, always dated in the open period
    /// (a closed day is never edited; the correction reverses it on a later day).
    Adjustment,
    /// Merchant settlement (清算 / 结算): maturity (pending → available), a batch's netting
    /// and payout (available → in transit), a payout confirmed (in transit → reserve) or
    /// failed (back to available).
    Settlement,
    /// Funds management (头寸): a channel settling its takings to the reserve, a transfer
    /// between reserve accounts.
    Treasury,
    /// Reconciliation (对账): differences against a channel's statement booked to suspense,
    /// and their resolutions.
    Reconciliation,
    /// Marketing (营销): a coupon stock's budget set aside and returned.
    Coupon,
    /// Credit lines (信用支付): interest and late fees charged, repayments.
    Credit,
    /// A two-phase payment's hold (预授权, issue #19): the amount moved from the payer to the
    /// holds account at authorization, and back at a void. The capture is a `Payment`.
    Authorization,
}

/// The three accounts of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentParties {
    pub payer: AccountId,
    pub merchant: AccountId,
    /// The platform's fee income account in the payment's currency.
    pub fee_account: AccountId,
}

/// A balanced set of postings, applied atomically and at most once (by `id`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Transfer {
    pub id: TransferId,
    pub kind: TransferKind,
    pub postings: Vec<Posting>,
    pub timestamp: Timestamp,
    /// The business date the entry is booked on. `None` from a caller means the open date;
    /// the ledger stamps it when it orders the transfer (see [`crate::gl::date::stamp`]).
    pub accounting_date: Option<BusinessDate>,
    /// When the underlying event happened: the accounting date unless the caller names an
    /// earlier one (a channel's late answer, a correction).
    pub value_date: Option<BusinessDate>,
}

impl Transfer {
    /// A transfer to be dated by the ledger (the open business date, value date the same).
    pub fn new(
        id: TransferId,
        kind: TransferKind,
        postings: Vec<Posting>,
        timestamp: Timestamp,
    ) -> Transfer {
        Transfer {
            id,
            kind,
            postings,
            timestamp,
            accounting_date: None,
            value_date: None,
        }
    }

    /// A payment of `amount` from `payer`, `amount - fee` to `merchant` and `fee` to
    /// `fee_account`. A zero leg is left out.
    pub fn payment(
        id: TransferId,
        parties: PaymentParties,
        currency: Currency,
        amount: i64,
        fee: i64,
        timestamp: Timestamp,
    ) -> Transfer {
        let PaymentParties {
            payer,
            merchant,
            fee_account,
        } = parties;
        let mut postings = vec![Posting::new(payer, currency, -amount)];
        let net = amount.checked_sub(fee).unwrap_or(0);
        if net != 0 {
            postings.push(Posting::new(merchant, currency, net));
        }
        if fee != 0 {
            postings.push(Posting::new(fee_account, currency, fee));
        }
        Transfer::new(id, TransferKind::Payment, postings, timestamp)
    }

    /// A card payment charged by a channel: the channel owes `amount - channel_fee`
    /// (`receivable`), its fee is a cost (`channel_fees`), the merchant gets
    /// `amount - platform_fee` and the platform `platform_fee`. A zero leg is left out.
    #[allow(clippy::too_many_arguments)]
    pub fn channel_payment(
        id: TransferId,
        receivable: AccountId,
        channel_fees: AccountId,
        merchant: AccountId,
        fee_account: AccountId,
        currency: Currency,
        (amount, channel_fee, platform_fee): (i64, i64, i64),
        timestamp: Timestamp,
    ) -> Transfer {
        let legs = [
            (receivable, channel_fee.checked_sub(amount).unwrap_or(0)),
            (channel_fees, channel_fee.checked_neg().unwrap_or(0)),
            (merchant, amount.checked_sub(platform_fee).unwrap_or(0)),
            (fee_account, platform_fee),
        ];
        let postings = legs
            .into_iter()
            .filter(|(_, a)| *a != 0)
            .map(|(account, amount)| Posting::new(account, currency, amount))
            .collect();
        Transfer::new(id, TransferKind::Payment, postings, timestamp)
    }

    /// The same transfer with `shares` (receiver, amount) split off `merchant`'s leg: its
    /// credit is reduced by Σ shares (left out at zero) and each receiver credited its
    /// share (a zero share is left out). Splits of a payment come from the merchant's part
    /// after the fee ([`crate::splits::shares`] keeps Σ shares within it); a refund's
    /// take-backs are negative shares off a negative merchant leg.
    pub fn with_splits(mut self, merchant: AccountId, shares: &[(AccountId, i64)]) -> Transfer {
        if shares.iter().all(|(_, a)| *a == 0) {
            return self;
        }
        let total: i64 = shares.iter().map(|(_, a)| *a).sum();
        let currency = self.postings[0].currency;
        match self.postings.iter().position(|p| p.account == merchant) {
            Some(i) => {
                self.postings[i].amount -= total;
                if self.postings[i].amount == 0 {
                    self.postings.remove(i);
                }
            }
            None => self.postings.push(Posting::new(merchant, currency, -total)),
        }
        self.postings.extend(
            shares
                .iter()
                .filter(|(_, a)| *a != 0)
                .map(|(account, amount)| Posting::new(*account, currency, *amount)),
        );
        self
    }

    /// A two-legged movement of `amount` from `from` to `to`.
    pub fn between(
        id: TransferId,
        kind: TransferKind,
        from: AccountId,
        to: AccountId,
        currency: Currency,
        amount: i64,
        timestamp: Timestamp,
    ) -> Transfer {
        let postings = vec![
            Posting::new(from, currency, amount.checked_neg().unwrap_or(0)),
            Posting::new(to, currency, amount),
        ];
        Transfer::new(id, kind, postings, timestamp)
    }

    /// Checks the transfer's own shape, without looking at any account: 2 to
    /// [`POSTINGS_PER_TRANSFER_MAX`] postings, each non-zero and within
    /// [`AMOUNT_MINOR_MAX`], no account twice, and the postings of each currency sum to zero.
    pub fn validate(&self) -> Result<(), Reject> {
        let n = self.postings.len();
        if n < 2 {
            return Err(Reject::TooFewPostings);
        }
        if n > POSTINGS_PER_TRANSFER_MAX {
            return Err(Reject::TooManyPostings);
        }
        for (i, p) in self.postings.iter().enumerate() {
            if p.amount == 0 || p.amount.unsigned_abs() > AMOUNT_MINOR_MAX.unsigned_abs() {
                return Err(Reject::InvalidAmount);
            }
            if self.postings[..i].iter().any(|q| q.account == p.account) {
                return Err(Reject::DuplicateAccount(p.account));
            }
        }
        // Per-currency sums; n <= 8, so a quadratic scan beats any map. i128 cannot overflow
        // with at most 8 amounts of at most 10^15.
        for (i, p) in self.postings.iter().enumerate() {
            if self.postings[..i].iter().any(|q| q.currency == p.currency) {
                continue;
            }
            let sum: i128 = self
                .postings
                .iter()
                .filter(|q| q.currency == p.currency)
                .map(|q| i128::from(q.amount))
                .sum();
            if sum != 0 {
                return Err(Reject::Unbalanced(p.currency));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Currency = Currency::CNY;
    const PARTIES: PaymentParties = PaymentParties {
        payer: AccountId(1),
        merchant: AccountId(2),
        fee_account: AccountId(3),
    };

    #[test]
    fn payment_legs_balance() {
        let t = Transfer::payment(TransferId(1), PARTIES, C, 1000, 6, Timestamp(0));
        assert_eq!(
            t.postings.iter().map(|p| p.amount).collect::<Vec<_>>(),
            vec![-1000, 994, 6]
        );
        assert_eq!(t.validate(), Ok(()));
        let free = Transfer::payment(TransferId(1), PARTIES, C, 1000, 0, Timestamp(0));
        assert_eq!(free.postings.len(), 2);
        assert_eq!(free.validate(), Ok(()));
    }

    #[test]
    fn splits_come_off_the_merchants_leg() {
        let r1 = AccountId(7);
        let r2 = AccountId(8);
        // 10.00, fee 0.06: shares 2.98 and 6.96 leave the merchant nothing: its leg goes.
        let t = Transfer::payment(TransferId(1), PARTIES, C, 1000, 6, Timestamp(0))
            .with_splits(PARTIES.merchant, &[(r1, 298), (r2, 696)]);
        let legs: Vec<(u128, i64)> = t.postings.iter().map(|p| (p.account.0, p.amount)).collect();
        assert_eq!(legs, vec![(1, -1000), (3, 6), (7, 298), (8, 696)]);
        assert_eq!(t.validate(), Ok(()));
        // A refund's take-back: the merchant's leg is a debit; a zero share is left out.
        let refund = Transfer::new(
            TransferId(2),
            TransferKind::Refund,
            vec![
                Posting::new(AccountId(1), C, 500),
                Posting::new(PARTIES.merchant, C, -497),
                Posting::new(PARTIES.fee_account, C, -3),
            ],
            Timestamp(0),
        )
        .with_splits(PARTIES.merchant, &[(r1, -149), (r2, 0)]);
        let legs: Vec<(u128, i64)> = refund
            .postings
            .iter()
            .map(|p| (p.account.0, p.amount))
            .collect();
        assert_eq!(legs, vec![(1, 500), (2, -348), (3, -3), (7, -149)]);
        assert_eq!(refund.validate(), Ok(()));
        // Fifty receivers fit in one transfer.
        let many: Vec<(AccountId, i64)> = (0..50).map(|i| (AccountId(100 + i), 10)).collect();
        let t = Transfer::payment(TransferId(3), PARTIES, C, 1000, 6, Timestamp(0))
            .with_splits(PARTIES.merchant, &many);
        assert_eq!(t.postings.len(), 53);
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn shape_rules() {
        let p = |a: u128, c: Currency, amount: i64| Posting::new(AccountId(a), c, amount);
        let t = |postings: Vec<Posting>| {
            Transfer::new(
                TransferId(9),
                TransferKind::Transfer,
                postings,
                Timestamp(0),
            )
        };
        assert_eq!(t(vec![p(1, C, -5)]).validate(), Err(Reject::TooFewPostings));
        assert_eq!(
            t(vec![p(1, C, -5), p(2, C, 4)]).validate(),
            Err(Reject::Unbalanced(C))
        );
        assert_eq!(
            t(vec![p(1, C, 0), p(2, C, 0)]).validate(),
            Err(Reject::InvalidAmount)
        );
        assert_eq!(
            t(vec![p(1, C, -5), p(1, C, 5)]).validate(),
            Err(Reject::DuplicateAccount(AccountId(1)))
        );
        let big = AMOUNT_MINOR_MAX + 1;
        assert_eq!(
            t(vec![p(1, C, -big), p(2, C, big)]).validate(),
            Err(Reject::InvalidAmount)
        );
        assert_eq!(
            t(vec![p(1, C, i64::MIN), p(2, C, 1)]).validate(),
            Err(Reject::InvalidAmount)
        );
        // Two currencies, each balanced (an FX conversion through two clearing accounts).
        let usd = Currency::USD;
        let fx = t(vec![
            p(1, C, -700),
            p(2, C, 700),
            p(3, usd, -100),
            p(4, usd, 100),
        ]);
        assert_eq!(fx.validate(), Ok(()));
        let unbalanced = t(vec![p(1, C, -700), p(2, usd, 700)]);
        assert_eq!(unbalanced.validate(), Err(Reject::Unbalanced(C)));
        let many = t((0..65)
            .map(|i| p(i, C, if i == 0 { -8 } else { 1 }))
            .collect());
        assert_eq!(many.validate(), Err(Reject::TooManyPostings));
    }
}
