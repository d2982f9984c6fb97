//! Amount parsing never panics, and whatever parses formats back to a string that parses
//! to the same minor units, within the engine's bounds.
#![no_main]

use engine::money::{format_minor, parse_amount, AMOUNT_MINOR_MAX};
use engine::Currency;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for currency in [Currency::CNY, Currency::JPY, Currency::KWD] {
        if let Ok(minor) = parse_amount(text, currency) {
            assert!(
                (0..=AMOUNT_MINOR_MAX).contains(&minor),
                "{text:?} → {minor}"
            );
            let shown = format_minor(minor, currency);
            assert_eq!(
                parse_amount(&shown, currency),
                Ok(minor),
                "{text:?} → {shown}"
            );
        }
    }
});
