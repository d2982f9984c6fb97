//! Merchants: who is paid, their credentials and settings.

use crate::records;

pub fn merchant_id_text(id: u128) -> String {
    format!("mch_{id:032x}")
}

pub fn parse_merchant_id(text: &str) -> Option<u128> {
    records::parse_id(text, "mch_")
}
