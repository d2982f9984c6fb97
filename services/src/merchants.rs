//! Merchants: who is paid, their credentials and settings.

use crate::records;

pub fn merchant_id_text(id: u128) -> String {
    format!("mch_{id:032x}")
}

pub fn parse_merchant_id(text: &str) -> Option<u128> {
    records::parse_id(text, "mch_")
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Merchant(Box<records::Merchant>),
}

impl Caller {
    /// Whether this caller may see a resource of `merchant`: the operator sees all, a
    /// merchant only its own (others' answer 404, so ids cannot be probed).
    pub fn may_see(&self, merchant: u128) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Merchant(m) => m.id == merchant,
        }
    }
}
