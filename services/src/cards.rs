//! Bank cards: tokens (`tok_…`) stand for cards sealed in the vault ([`crate::vault`]).

use crate::records;

pub fn card_token_text(token: u128) -> String {
    format!("tok_{token:032x}")
}

pub fn parse_card_token(text: &str) -> Option<u128> {
    records::parse_id(text, "tok_")
}
