//! Positions and reserve (issue #16): the reserve accounts at clearing banks and the
//! transfers between them.

use bincode::{Decode, Encode};
use engine::positions::TransferPhase;

use super::Tail;

/// A reserve account at a clearing bank (GL 1001). Number 0 (`default`) is the platform's
/// customer-funds account; it has a record only once its settings are changed.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReserveRecord {
    /// Numbers its ledger account (`AccountId::platform_at_channel(CustomerFunds, number, …)`).
    pub number: u32,
    pub name: String,
    /// The clearing bank.
    pub bank: String,
    /// ISO numeric code.
    pub currency: u16,
    /// The position below which its alert fires (minor units; 0: none).
    pub low_water: i64,
    pub created_at_ns: u64,
    /// Later fields.
    pub extra: Tail<()>,
}

/// A transfer between two reserve accounts, in two phases (out to funds in transit, then
/// confirmed into the destination or voided back).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReserveTransfer {
    pub id: u128,
    /// Reserve account numbers.
    pub from: u32,
    pub to: u32,
    pub currency: u16,
    pub amount: i64,
    pub phase: TransferPhase,
    pub reference: Option<String>,
    pub created_at_ns: u64,
    /// Who started it and who decided it (audit actor names).
    pub created_by: String,
    pub decided_at_ns: Option<u64>,
    pub decided_by: Option<String>,
    /// Later fields.
    pub extra: Tail<()>,
}
