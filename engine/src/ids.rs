//! Identifiers and time. Ids are 128-bit values chosen outside the engine (random or UUIDv7 at
//! the edge): they mean nothing about the machine that made them, so a shard can move.

use std::fmt;

use bincode::{Decode, Encode};

/// 32 lower-case hex digits, most significant first: an id's text form after its prefix.
/// By hand rather than `u128::from_str_radix`, which checks each digit's multiply and add
/// for overflow on 128 bits (a batch request parses two ids a transfer).
fn parse_hex32(hex: &str) -> Option<u128> {
    let hex: &[u8; 32] = hex.as_bytes().try_into().ok()?;
    let (high, low) = hex.split_at(16);
    Some(u128::from(parse_hex16(high)?) << 64 | u128::from(parse_hex16(low)?))
}

/// The lower-case hex digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Each byte's value as a lower-case hex digit, or `0xff`.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX_DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// 16 hex digits into a `u64` (on 64-bit halves: a `u128` shift is two). A table lookup a
/// digit and one check at the end, no branch a digit: whether a random id's next digit is
/// a letter cannot be predicted, and a `match` on it cost ≈ 80 ns an id in mispredictions
/// (`benches/benches/engine.rs`, `ids/account_id_parse_4096_different`).
fn parse_hex16(hex: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut seen = 0u8;
    for &b in hex {
        let digit = HEX_VALUE[usize::from(b)];
        seen |= digit;
        value = (value << 4) | u64::from(digit & 0xf);
    }
    // Only a byte that is no digit sets a high bit.
    (seen & 0xf0 == 0).then_some(value)
}

/// The 32 lower-case hex digits of `value`, zero-padded: what `{:032x}` writes, without the
/// formatting machinery's padding pass.
struct Hex32([u8; 32]);

impl Hex32 {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

fn hex32(value: u128) -> Hex32 {
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = HEX_DIGITS[((value >> (124 - 4 * i)) & 0xf) as usize];
    }
    Hex32(out)
}

/// `prefix` then the 32 hex digits of `value` (`pay_…`, `mch_…`): an id's text form in one
/// allocation of its exact size, for the ids that are not an [`id128!`] type.
pub fn prefixed_hex(prefix: &str, value: u128) -> String {
    let mut text = String::with_capacity(prefix.len() + 32);
    text.push_str(prefix);
    text.push_str(hex32(value).as_str());
    text
}

macro_rules! id128 {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
        pub struct $name(pub u128);

        impl $name {
            /// The prefix of the id's text form, e.g. `acct_`.
            pub const PREFIX: &'static str = $prefix;

            /// Big-endian bytes: the storage key, ordered like the number.
            pub fn to_be_bytes(self) -> [u8; 16] {
                self.0.to_be_bytes()
            }

            pub fn from_be_bytes(bytes: [u8; 16]) -> Self {
                Self(u128::from_be_bytes(bytes))
            }

            /// Parses the text form (`prefix` then 32 lower-case hex digits).
            pub fn parse(text: &str) -> Option<Self> {
                parse_hex32(text.strip_prefix($prefix)?).map(Self)
            }

            /// The text form in one allocation of its size (`to_string` grows a `String`
            /// from nothing through the formatter).
            pub fn text(self) -> String {
                prefixed_hex($prefix, self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                f.write_str(hex32(self.0).as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

/// A time-ordered 128-bit id (UUIDv7's layout without the version bits): the Unix time in
/// milliseconds in the top 48 bits, then 80 random bits. Ids made later sort later, so the
/// indexes keyed by them (the dedup index, the `aux` records) take them as appends: a flush
/// writes files that do not overlap the older ones, and compaction moves them instead of
/// rewriting. The clock and the randomness are the caller's (the engine has neither).
pub fn time_ordered_id(unix_ms: u64, random: u128) -> u128 {
    (u128::from(unix_ms & 0xffff_ffff_ffff) << 80) | (random >> 48)
}

/// The Unix time in milliseconds a [`time_ordered_id`] was made at.
pub fn id_time_ms(id: u128) -> u64 {
    (id >> 80) as u64
}

id128!(
    /// An account: a balance in one currency.
    AccountId,
    "acct_"
);
id128!(
    /// A transfer: one balanced set of postings, applied at most once.
    TransferId,
    "tr_"
);

impl AccountId {
    /// The platform's own account for `role` in a currency (ISO numeric code): a fixed id in a
    /// reserved range that random or time-ordered ids never reach (top 32 bits all ones).
    pub const fn platform(role: PlatformRole, currency_numeric: u16) -> AccountId {
        AccountId((0xffff_ffff_u128 << 96) | ((role as u128) << 16) | currency_numeric as u128)
    }

    /// The platform's account for `role` at channel number `channel` (1 and up) in a
    /// currency. Channel 0 is [`AccountId::platform`]'s layout.
    pub const fn platform_at_channel(
        role: PlatformRole,
        channel: u32,
        currency_numeric: u16,
    ) -> AccountId {
        AccountId(
            (0xffff_ffff_u128 << 96)
                | ((channel as u128) << 32)
                | ((role as u128) << 16)
                | currency_numeric as u128,
        )
    }

    /// One of the platform's own accounts (see [`AccountId::platform`]).
    pub const fn is_platform(self) -> bool {
        self.0 >> 96 == 0xffff_ffff
    }

    /// The role of a platform account; `None` for any other account.
    pub fn platform_role(self) -> Option<PlatformRole> {
        if !self.is_platform() {
            return None;
        }
        PlatformRole::from_u16((self.0 >> 16) as u16)
    }
}

/// What a platform account is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum PlatformRole {
    /// Customer funds held at banks: the counterpart of every deposit and withdrawal. Its
    /// balance is minus what the platform owes its customers.
    CustomerFunds = 1,
    /// The platform's fee income.
    FeeIncome = 2,
    /// What a channel owes us for charges it made (our position at it), net of its fee.
    /// Minus that amount: like customer funds, it mirrors money held elsewhere.
    ChannelReceivable = 3,
    /// Fees channels take: a cost.
    ChannelFees = 4,
    /// What merchants owe us: shortfalls carried by settlement (refunds above takings),
    /// offset from their later income. Minus that amount (an asset).
    MerchantNegative = 5,
    /// Settlement payouts sent to merchants' banks and not yet confirmed.
    PayoutsInTransit = 6,
    /// Money moving between the platform's reserve accounts (two-phase reserve transfers).
    FundsInTransit = 7,
    /// The platform's own capital put into the reserve.
    Equity = 8,
    /// Reconciliation differences where a channel holds less than we booked (per channel).
    SuspenseShort = 9,
    /// Reconciliation differences where a channel holds more than we booked (per channel).
    SuspenseLong = 10,
    /// Reconciliation differences written off.
    ReconWriteOffs = 11,
    /// Discounts the platform funds (coupon budgets set aside and returned): an expense.
    PlatformDiscounts = 12,
    /// Interest charged on credit lines: income.
    InterestIncome = 13,
    /// Customer money held for two-phase payments until capture or void (issue #19).
    AuthorizationHolds = 14,
}

impl PlatformRole {
    /// The role whose discriminant is `value`.
    pub fn from_u16(value: u16) -> Option<PlatformRole> {
        [
            PlatformRole::CustomerFunds,
            PlatformRole::FeeIncome,
            PlatformRole::ChannelReceivable,
            PlatformRole::ChannelFees,
            PlatformRole::MerchantNegative,
            PlatformRole::PayoutsInTransit,
            PlatformRole::FundsInTransit,
            PlatformRole::Equity,
            PlatformRole::SuspenseShort,
            PlatformRole::SuspenseLong,
            PlatformRole::ReconWriteOffs,
            PlatformRole::PlatformDiscounts,
            PlatformRole::InterestIncome,
            PlatformRole::AuthorizationHolds,
        ]
        .into_iter()
        .find(|r| *r as u16 == value)
    }
}

/// Nanoseconds since the Unix epoch, given to the engine by its caller (the engine has no
/// clock, so that replay and simulation are deterministic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Timestamp(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let id = AccountId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let text = id.to_string();
        assert_eq!(text, "acct_0123456789abcdef0011223344556677");
        assert_eq!(AccountId::parse(&text), Some(id));
        assert_eq!(
            AccountId::parse("acct_0123456789ABCDEF0011223344556677"),
            None
        );
        assert_eq!(
            AccountId::parse("tr_0123456789abcdef0011223344556677"),
            None
        );
        assert_eq!(
            AccountId::parse("acct_+123456789abcdef0011223344556677"),
            None
        );
        assert_eq!(AccountId::parse("acct_123"), None);
    }

    proptest::proptest! {
        /// The hand-written hex agrees with the standard library's both ways.
        #[test]
        fn hex_text_is_std_formatting(value: u128, noise: u8, at in 0usize..32) {
            let text = format!("{value:032x}");
            let hex = hex32(value);
            proptest::prop_assert_eq!(hex.as_str(), text.as_str());
            proptest::prop_assert_eq!(parse_hex32(&text), Some(value));
            proptest::prop_assert_eq!(AccountId(value).to_string(), format!("acct_{text}"));
            proptest::prop_assert_eq!(prefixed_hex("pay_", value), format!("pay_{text}"));
            // One byte changed: parsed only if it is still a lower-case hex digit.
            let mut bytes = text.into_bytes();
            bytes[at] = noise;
            let expected = matches!(noise, b'0'..=b'9' | b'a'..=b'f')
                .then(|| u128::from_str_radix(std::str::from_utf8(&bytes).unwrap(), 16).unwrap());
            match std::str::from_utf8(&bytes) {
                Ok(changed) => proptest::prop_assert_eq!(parse_hex32(changed), expected),
                Err(_) => proptest::prop_assert!(expected.is_none()),
            }
        }
    }

    #[test]
    fn time_ordered_ids_sort_by_time_then_randomness() {
        let max = u128::MAX;
        // A later millisecond sorts later whatever the random bits.
        assert!(time_ordered_id(1_000, max) < time_ordered_id(1_001, 0));
        // The time is in the top 48 bits, the random part's top 80 bits below it.
        assert_eq!(time_ordered_id(1, 0), 1 << 80);
        assert_eq!(
            id_time_ms(time_ordered_id(1_700_000_000_123, max)),
            1_700_000_000_123
        );
        assert_eq!(time_ordered_id(0, max), (1 << 80) - 1);
        // Only 48 bits of time are kept.
        assert_eq!(time_ordered_id(1 << 48, 0), 0);
    }
}
