//! Coupon stocks and coupons (issue #18, `../shared/FUNDS.md` "Coupons").

use bincode::{Decode, Encode};
use engine::AccountId;

use super::Tail;

/// Whether a stock gives coupons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum StockStatus {
    /// Issues and redeems.
    Active,
    /// Neither issues nor redeems, until made active again.
    Paused,
    /// Final: its unspent budget was returned; its coupons are void.
    Stopped,
}

/// A coupon stock (a campaign): its terms, its budget and what it has given.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CouponStock {
    pub id: u128,
    /// The merchant whose payments its coupons apply to (and who made it, when it funds
    /// it); 0: any merchant's (a platform campaign).
    pub merchant: u128,
    pub name: String,
    pub rule: engine::coupons::Discount,
    /// Least order amount a coupon applies to (minor units).
    pub min_order: i64,
    /// The money it may give away in all (minor units).
    pub budget: i64,
    pub max_coupons: u32,
    pub max_per_customer: u32,
    pub valid_from_ns: u64,
    pub valid_until_ns: u64,
    /// The platform funds the discounts (the merchant receives the full amount, the
    /// discount drawn from `account`); else the merchant does (it receives the amount less
    /// the discount, and no money is set aside).
    pub platform_funded: bool,
    /// ISO numeric code of the currency of its amounts.
    pub currency: u16,
    /// The budget's ledger account (GL 2301) when the platform funds it.
    pub account: Option<AccountId>,
    pub status: StockStatus,
    pub issued: u32,
    /// Coupons redeemed (less those a full refund gave back).
    pub redeemed: u32,
    /// Discounts given (less what refunds returned).
    pub spent: i64,
    /// The budget returned when it stopped.
    pub returned: i64,
    pub created_at_ns: u64,
    pub created_by: String,
    pub extra: Tail<()>,
}

/// Where a coupon stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum CouponStatus {
    Available,
    Redeemed,
}

/// One coupon, issued to one account.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Coupon {
    pub id: u128,
    pub stock: u128,
    /// The account that may pay with it (a customer's balance account).
    pub account: AccountId,
    pub status: CouponStatus,
    /// The payment that redeemed it.
    pub payment: Option<u128>,
    pub issued_at_ns: u64,
    pub redeemed_at_ns: Option<u64>,
    pub extra: Tail<()>,
}

/// A coupon as redeemed by a payment (on the payment's record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct CouponUse {
    pub coupon: u128,
    pub stock: u128,
    /// What it took off the order (minor units); the payer paid the amount less this.
    pub discount: i64,
    /// The stock's budget account when the platform funds it (the discount's source).
    pub budget: Option<AccountId>,
    /// What refunds have given back to the budget so far (pro rata of the discount).
    pub returned: i64,
}
