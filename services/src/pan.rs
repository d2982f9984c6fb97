//! Card numbers (PANs) out of everything but the card vault (issue #6): a free-text field
//! that holds one is refused (so it is never stored, logged or echoed), and every error
//! message is scrubbed of any that an input put there. What counts as a card number is
//! `engine::cards`.

pub use engine::cards::{contains, redact};

use crate::{Error, Result};

/// Refuses a free-text field that holds a card number (without quoting it).
pub fn refuse(text: &str, param: &str) -> Result<()> {
    if contains(text) {
        return Err(Error::invalid(
            "card_number_not_allowed",
            format!(
                "{param} looks like it holds a card number; card numbers go only to POST /v1/cards"
            ),
        )
        .with_param(param));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_with_a_card_number_is_refused_without_quoting_it() {
        let Err(Error::Invalid { code, message, .. }) = refuse("pay 4111111111111111", "d") else {
            panic!("a card number was let through");
        };
        assert_eq!(code, "card_number_not_allowed");
        assert!(!message.contains("4111"));
        assert!(refuse("pay 1764123456789012345", "d").is_ok());
    }
}
