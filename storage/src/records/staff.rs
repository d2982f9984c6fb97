//! A merchant's staff (issue #19, the merchant console): people who sign in to the console
//! with their phone and a one-time code, each with a role.

use bincode::{Decode, Encode};

use super::Tail;

/// What a staff member may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub enum StaffRole {
    /// Sees payments, orders, settlements and reports, and downloads them.
    Viewer,
    /// A viewer who may also refund.
    Refunder,
    /// A refunder who may also manage the webhook endpoint.
    Admin,
}

/// One staff member of one merchant.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Staff {
    pub id: u128,
    pub merchant: u128,
    pub name: String,
    /// E.164: where the sign-in codes go.
    pub phone: String,
    pub role: StaffRole,
    /// A disabled member cannot sign in (and a signed-in one is refused at the next step).
    pub active: bool,
    pub created_at_ns: u64,
    /// Who added it (`admin:…` or `merchant:mch_…`).
    pub created_by: String,
    pub extra: Tail<()>,
}
