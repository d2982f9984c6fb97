//! Bank cards as rules: the Luhn check, the brand from the leading digits, expiry, and
//! finding card numbers (PANs) in free text so that they are refused or scrubbed everywhere
//! but the card vault (issue #6).
//!
//! A PAN in text is a maximal run of 13 to 19 digits (single spaces or dashes may separate
//! them, as people type them) that starts with a card network's leading digit (2–6) and
//! passes the Luhn check. Runs starting with 0, 1, 7, 8 or 9 (nanosecond timestamps, ids)
//! are not card numbers of any network we route.

use std::borrow::Cow;

/// Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    luhn_digits(digits.as_bytes())
}

/// [`luhn_valid`] over ASCII digits.
fn luhn_digits(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The brand from the leading digits (IIN ranges as published by the networks).
pub fn brand_of(digits: &str) -> &'static str {
    let prefix = |n: usize| {
        digits
            .get(..n)
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    match () {
        _ if p2 == 34 || p2 == 37 => "amex",
        _ if p2 == 36 || (300..=305).contains(&p3) || p2 == 38 || p2 == 39 => "diners",
        _ if (3528..=3589).contains(&p4) => "jcb",
        _ if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) => "discover",
        _ if p2 == 62 || p2 == 81 => "unionpay",
        _ if (51..=55).contains(&p2) || (222_100..=272_099).contains(&p6) => "mastercard",
        _ if p1 == 4 => "visa",
        _ => "unknown",
    }
}

/// Days since 1970-01-01 of the first day of (year, month), proleptic Gregorian.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A card is valid through the last day of its expiry month (UTC).
pub fn expired(exp_month: u8, exp_year: u16, now_ns: u64) -> bool {
    let (y, m) = if exp_month == 12 {
        (i64::from(exp_year) + 1, 1)
    } else {
        (i64::from(exp_year), i64::from(exp_month) + 1)
    };
    let first_day_after = days_from_civil(y, m) * 86_400;
    (now_ns / 1_000_000_000) as i64 >= first_day_after
}

/// Byte ranges of the PANs in `text`.
fn find(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    scan(text.as_bytes(), |range| {
        found.push(range);
        true
    });
    found
}

/// Calls `hit` with each PAN's byte range in `bytes`, in order, while it returns true.
/// Every text a payment carries (`out_trade_no`, description, metadata) is scanned, so a
/// run's digits are kept on the stack, not in a string per run.
fn scan(bytes: &[u8], mut hit: impl FnMut((usize, usize)) -> bool) {
    // Digits past the longest PAN only tell that the run is too long.
    let mut digits = [0u8; 20];
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A maximal run of digits with single separators between them.
        let start = i;
        let mut end = i;
        let mut count = 0;
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                if let Some(slot) = digits.get_mut(count) {
                    *slot = bytes[j];
                }
                count += 1;
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
        if (13..=19).contains(&count)
            && matches!(digits[0], b'2'..=b'6')
            && luhn_digits(&digits[..count])
            && !inside_identifier(bytes, start, end)
            && !hit((start, end))
        {
            return;
        }
        i = end.max(i + 1);
    }
}

/// Hex identifiers at least this long (payd's ids: 32 hex digits after their prefix; a
/// UUID: 36 characters with its dashes) are not searched for card numbers.
const IDENTIFIER_MIN: usize = 32;

/// Whether the digits at `start..end` are part of a hex identifier: a run of at least
/// [`IDENTIFIER_MIN`] hex digits and dashes holding a letter. One in ~1,300 random 32-hex ids
/// holds a Luhn-valid run of 13–19 digits (`ord_01a23ca80b1fb7f925a2147647782587`), and a
/// merchant's UUIDs as often: refusing those as card numbers refused an order's payment
/// (its id is in the payment's metadata) and would refuse a merchant's `out_trade_no`.
fn inside_identifier(bytes: &[u8], start: usize, end: usize) -> bool {
    let id_char = |b: &u8| b.is_ascii_hexdigit() || *b == b'-';
    if !bytes[start..end].iter().all(id_char) {
        return false;
    }
    let from = start
        - bytes[..start]
            .iter()
            .rev()
            .take_while(|b| id_char(b))
            .count();
    let to = end + bytes[end..].iter().take_while(|b| id_char(b)).count();
    to - from >= IDENTIFIER_MIN && bytes[from..to].iter().any(u8::is_ascii_alphabetic)
}

/// Whether `text` holds something that looks like a card number.
pub fn contains(text: &str) -> bool {
    let mut any = false;
    scan(text.as_bytes(), |_| {
        any = true;
        false
    });
    any
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn luhn_brands_and_expiry() {
        for (n, brand) in [
            ("4111111111111111", "visa"),
            ("5555555555554444", "mastercard"),
            ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"),
            ("6011111111111117", "discover"),
            ("3530111333300000", "jcb"),
            ("6212345678901265", "unionpay"),
            ("30569309025904", "diners"),
        ] {
            assert!(luhn_valid(n), "{n}");
            assert_eq!(brand_of(n), brand, "{n}");
        }
        assert!(!luhn_valid("4111111111111112"));
        // 2026-11-25: November 2026 is still valid, October is not; December 2030 is.
        let now = 1_795_000_000u64 * 1_000_000_000;
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(days_from_civil(2000, 3), 11_017);
        assert!(!expired(12, 2030, now));
        assert!(!expired(11, 2026, now));
        assert!(expired(10, 2026, now));
    }

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
            // Identifiers whose digits hold a Luhn-valid run: an order's id and a UUID.
            "ord_01a23ca80b1fb7f925a2147647782587",
            "metadata order_id=ord_01a23ca80b1fb7f925a2147647782587.",
            "98b49196-7163-8755-09af-b15cc7300eef",
            "98B49196-7163-8755-09AF-B15CC7300EEF",
        ] {
            assert!(!contains(not), "{not}");
        }
        // The same runs alone, or in a token too short to be an identifier, are card-like.
        for pan in [
            "2147647782587",
            "x2147647782587y",
            "ca2147647782587",
            "49196-7163-8755-09",
            "card 4111111111111111 in 0123456789abcdef0123456789abcdef",
        ] {
            assert!(contains(pan), "{pan}");
        }
        // A card number glued into a long hex token is taken for part of an identifier.
        assert!(!contains("abcdef4111111111111111abcdef0123"));
    }

    /// The reference the scan is checked against, written another way: each run grows by
    /// digit groups while one separator and a digit follow, and its digits are collected
    /// into a `String` (as the scan did before it kept them on the stack).
    fn find_by_strings(text: &str) -> Vec<(usize, usize)> {
        let b = text.as_bytes();
        let mut found = Vec::new();
        let mut start = 0;
        while start < b.len() {
            if !b[start].is_ascii_digit() {
                start += 1;
                continue;
            }
            let mut end = start;
            loop {
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                let separated = end + 1 < b.len()
                    && matches!(b[end], b' ' | b'-')
                    && b[end + 1].is_ascii_digit();
                if !separated {
                    break;
                }
                end += 1;
            }
            let digits: String = text[start..end]
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let network = digits.starts_with(['2', '3', '4', '5', '6']);
            if (13..=19).contains(&digits.len())
                && network
                && luhn_valid(&digits)
                && !inside_identifier(b, start, end)
            {
                found.push((start, end));
            }
            start = end;
        }
        found
    }

    proptest::proptest! {
        /// Texts of digits, separators, hex letters and others, with real PANs spliced in:
        /// the same ranges as the reference, and `contains` says whether there are any.
        #[test]
        fn the_scan_finds_what_the_reference_finds(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[0-9]{1,22}",
                    "[0-9 -]{1,30}",
                    "[a-fA-F0-9-]{1,40}",
                    "[ a-z.=_]{0,6}",
                    proptest::sample::select(vec![
                        "4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444",
                        "378282246310005", "2147647782587", "6212345678901234569",
                        "ord_01a23ca80b1fb7f925a2147647782587",
                    ]).prop_map(str::to_string),
                ],
                0..8,
            )
        ) {
            let text = parts.concat();
            let expected = find_by_strings(&text);
            proptest::prop_assert_eq!(find(&text), expected.clone());
            proptest::prop_assert_eq!(contains(&text), !expected.is_empty());
        }
    }
}
