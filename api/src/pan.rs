//! Card numbers (PANs) out of everything but the card vault (issue #6): a free-text field
//! that holds one is refused (so it is never stored, logged or echoed), and every error
//! message is scrubbed of any that an input put there.
//!
//! A PAN here is a maximal run of 13 to 19 digits (single spaces or dashes may separate
//! them, as people type them) that starts with a card network's leading digit (2–6) and
//! passes the Luhn check. Runs starting with 0, 1, 7, 8 or 9 (nanosecond timestamps, ids)
//! are not card numbers of any network we route.

use std::borrow::Cow;

use crate::error::ApiError;

/// Byte ranges of the PANs in `text`.
fn find(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A maximal run of digits with single separators between them.
        let start = i;
        let mut end = i;
        let mut digits = String::new();
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                digits.push(bytes[j] as char);
                end = j + 1;
                j += 1;
            } else if (bytes[j] == b' ' || bytes[j] == b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
                && j > start
                && bytes[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits.len())
            && matches!(digits.as_bytes()[0], b'2'..=b'6')
            && crate::routes::cards::luhn_valid(&digits)
        {
            found.push((start, end));
        }
        i = end.max(i + 1);
    }
    found
}

/// Whether `text` holds something that looks like a card number.
pub fn contains(text: &str) -> bool {
    !find(text).is_empty()
}

/// `text` with every card number replaced by `[card number]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let found = find(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in found {
        out.push_str(&text[at..s]);
        out.push_str("[card number]");
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

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
    fn card_numbers_are_found_in_text_and_timestamps_and_ids_are_not() {
        for pan in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "378282246310005",
            "6212345678901265",
        ] {
            assert!(contains(&format!("order for card {pan}, thanks")), "{pan}");
            assert_eq!(redact(&format!("x{pan}y")), "x[card number]y", "{pan}");
        }
        for not in [
            "4111111111111112",              // Luhn fails
            "1764123456789012345",           // a nanosecond timestamp
            "acct_0193a1b2c3d4e5f60718293a", // hex id
            "41111111111",                   // too short
            "41111111111111111111111",       // a longer run is not a card number
            "order 4111  1111 1111 1111",    // two separators: four numbers
        ] {
            assert!(!contains(not), "{not}");
        }
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
    }
}
