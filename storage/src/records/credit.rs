//! Credit lines (issue #18, `../shared/FUNDS.md` "Credit lines").

use bincode::{Decode, Encode};
use engine::AccountId;

use super::Tail;

/// A customer's credit line: its terms, its bills, and its two ledger accounts in GL 1301
/// credit receivable — principal drawn (whose limit is the line's: the ledger refuses a draw
/// beyond it) and interest and fees charged.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CreditLine {
    pub id: u128,
    /// The customer it is lent to.
    pub customer: u128,
    /// The customer's balance account (repayments are taken from it).
    pub account: AccountId,
    pub principal_account: AccountId,
    pub charges_account: AccountId,
    /// ISO numeric code of its currency.
    pub currency: u16,
    pub terms: engine::credit::Terms,
    pub state: engine::credit::State,
    pub created_at_ns: u64,
    pub created_by: String,
    pub extra: Tail<()>,
}
