//! Card numbers (PANs) out of everything but the card vault (issue #6): a free-text field
//! that holds one is refused (so it is never stored, logged or echoed), and every error
//! message is scrubbed of any that an input put there. What counts as a card number is
//! `engine::cards`.

pub use engine::cards::{contains, redact};

use crate::error::ApiError;

/// Refuses a free-text field that holds a card number (without quoting it).
pub fn refuse(text: &str, param: &str) -> Result<(), ApiError> {
    if contains(text) {
        return Err(ApiError::invalid(
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
        assert_eq!(
            refuse("pay 4111111111111111", "description")
                .unwrap_err()
                .code,
            "card_number_not_allowed"
        );
        assert!(!refuse("pay 4111111111111111", "d")
            .unwrap_err()
            .message
            .contains("4111"));
        assert!(refuse("pay 1764123456789012345", "d").is_ok());
    }
}
