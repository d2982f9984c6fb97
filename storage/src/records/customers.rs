//! Customers and their real-name verification (issue #18, `../shared/FUNDS.md` "Customers and
//! KYC").

use bincode::{Decode, Encode};
use engine::AccountId;

use super::Tail;

/// A customer: a person paying from a balance account here, verified to a KYC level. The
/// resident id number is never stored in clear: sealed under the master key (context: the
/// customer's id), and its masked form for display.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Customer {
    pub id: u128,
    /// The merchant that created it; 0: the operator.
    pub owner: u128,
    pub name: String,
    /// E.164.
    pub phone: String,
    /// Its balance account (the ledger's; `super::customer_by_account_key` finds the
    /// customer from it).
    pub account: AccountId,
    /// 0 unverified, 1 phone verified, 2 identity verified.
    pub kyc_level: u8,
    /// The resident id number, sealed; `None` until one is given.
    pub id_number_sealed: Option<Vec<u8>>,
    /// Its masked form (`110***********002X`).
    pub id_number_masked: Option<String>,
    pub phone_verified_at_ns: Option<u64>,
    pub identity_verified_at_ns: Option<u64>,
    /// Identity checks the service answered "no match" (bounded: see the service).
    pub identity_mismatches: u32,
    pub created_at_ns: u64,
    pub extra: Tail<()>,
}
