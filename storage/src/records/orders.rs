//! Payment orders (issue #19, `../shared/FUNDS.md` "Payment orders, checkout and two-phase
//! payments").

use bincode::{Decode, Encode};

use super::Tail;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum OrderStatus {
    /// Waiting to be paid.
    Open,
    /// Paid by `Order::payment` (final).
    Paid,
    /// Closed unpaid, by the merchant or by its expiry (final).
    Closed,
}

/// An order a customer pays later (at the checkout, or through the API). Its payments are
/// ordinary payments whose `out_trade_no` is `ord_<id>-<n>`, the `n`-th attempt: at most one
/// succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Order {
    pub id: u128,
    pub merchant: u128,
    pub out_trade_no: String,
    pub amount: i64,
    /// ISO numeric code.
    pub currency: u16,
    pub description: Option<String>,
    /// Where the checkout sends the customer back.
    pub return_url: Option<String>,
    pub status: OrderStatus,
    /// The succeeded payment (paid orders).
    pub payment: Option<u128>,
    /// Payment attempts started (each durable before its payment).
    pub attempts: u32,
    pub expires_at_ns: u64,
    pub created_at_ns: u64,
    pub closed_at_ns: Option<u64>,
    /// `closed` (by the merchant) or `expired`.
    pub close_reason: Option<String>,
    pub extra: Tail<()>,
}
