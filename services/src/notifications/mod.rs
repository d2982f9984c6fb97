//! The SMS platform.
//!
//! - [`wire`]: the SMS gateway protocol (and `sms-sim` plays the gateway).

pub mod wire;

/// `+` and 8 to 15 digits (E.164).
pub fn is_e164(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #[test]
    fn e164() {
        assert!(super::is_e164("+8613800138000"));
        assert!(super::is_e164("+12345678"));
        assert!(!super::is_e164("+1234567"));
        assert!(!super::is_e164("8613800138000"));
        assert!(!super::is_e164("+86138001380001234"));
        assert!(!super::is_e164("+86 13800138000"));
    }
}
