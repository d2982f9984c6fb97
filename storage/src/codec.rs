//! Record framing: every value we write is versioned and checksummed, so that a torn or
//! corrupted record is detected on read instead of being decoded into wrong money.
//!
//! Frame: `[format_version: u8][kind: u8][crc32 of kind+payload: u32 LE][payload: bincode 2]`.
//! The payload uses bincode's `standard()` configuration (varint integers). Changing the
//! layout of any persisted type means a new `FORMAT_VERSION` and a decoder for the old one,
//! proven by the fixtures in `tests/fixtures/`.

use bincode::{Decode, Encode};

/// The record format this build writes: 2, since the chart of accounts (GL accounts on
/// accounts and postings, dates on transfers). Format 1 records stay readable: their aux
/// and meta payloads are unchanged, and their accounts and journal records decode through
/// [`crate::legacy`] ([`decode_upgrading`]).
pub const FORMAT_VERSION: u8 = 2;
/// The first record format.
pub const FORMAT_V1: u8 = 1;

const HEADER_LEN: usize = 6;

/// What a record holds; part of the checksummed bytes, so a value cannot be misread as
/// another kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A journal entry: the effects of one commit unit.
    Journal = 1,
    /// A full account record (base value in the accounts column family).
    Account = 2,
    /// A merge operand on an account: balance and hold deltas, status change.
    AccountDelta = 3,
    /// Store metadata.
    Meta = 4,
    /// An auxiliary record written by a layer above (idempotency, API objects).
    Aux = 5,
    /// The journal entries of one group write, stored under the first one's sequence
    /// number (store layout 3; a group of one unit is still a `Journal` record).
    JournalGroup = 6,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("record too short ({0} bytes)")]
    Truncated(usize),
    #[error(
        "record format version {0} is not supported by this build (it reads {FORMAT_V1} and {FORMAT_VERSION})"
    )]
    Version(u8),
    #[error("record kind {found} where {expected:?} was expected")]
    Kind { expected: Kind, found: u8 },
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("record payload does not decode: {0}")]
    Payload(String),
    #[error("record has {0} trailing bytes")]
    Trailing(usize),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn checksum(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// Encodes `value` as a framed record of `kind`.
pub fn encode<T: Encode>(kind: Kind, value: &T) -> Vec<u8> {
    // Most records are under 256 bytes (a payment's ≈ 110, its idempotency record ≈ 200):
    // room for them at once, where growing from the header's 6 bytes took four copies.
    let mut out = Vec::with_capacity(256);
    // Encoding into a Vec cannot fail for our types (no maps with failing keys, no I/O).
    encode_into(kind, value, &mut out);
    out
}

/// [`encode`] into a buffer with room for `capacity` bytes (a large record, e.g. a group's
/// journal entries, sized from its parts instead of grown by doubling).
pub fn encode_sized<T: Encode>(kind: Kind, value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    encode_into(kind, value, &mut out);
    out
}

/// [`encode`] into `out` (cleared first), so a caller encoding many records reuses one
/// buffer.
pub fn encode_into<T: Encode>(kind: Kind, value: &T, out: &mut Vec<u8>) {
    out.clear();
    out.resize(HEADER_LEN, 0);
    bincode::encode_into_std_write(value, out, config())
        .expect("encoding a record into memory cannot fail");
    let crc = checksum(kind as u8, &out[HEADER_LEN..]);
    out[0] = FORMAT_VERSION;
    out[1] = kind as u8;
    out[2..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the kind byte of a framed record after checking version and checksum.
pub fn kind_of(bytes: &[u8]) -> Result<u8, CodecError> {
    check(bytes).map(|(_, kind, _)| kind)
}

/// The version, kind and payload of a framed record of a format this build reads.
fn check(bytes: &[u8]) -> Result<(u8, u8, &[u8]), CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated(bytes.len()));
    }
    let version = bytes[0];
    if version != FORMAT_VERSION && version != FORMAT_V1 {
        return Err(CodecError::Version(version));
    }
    let kind = bytes[1];
    let stored = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let payload = &bytes[HEADER_LEN..];
    let computed = checksum(kind, payload);
    if stored != computed {
        return Err(CodecError::Checksum { stored, computed });
    }
    Ok((version, kind, payload))
}

/// Largest payload a record's decoding may claim (containers included), in bytes.
pub const RECORD_BYTES_MAX: usize = 64 << 20;

/// Frames `payload` as a record of `kind` (version, kind, checksum): for tests and fuzzing
/// of the payload decoders.
pub fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(payload);
    let crc = checksum(kind as u8, payload);
    out[0] = FORMAT_VERSION;
    out[1] = kind as u8;
    out[2..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a framed record, checking version, kind, checksum and that nothing trails it.
/// A format-1 record is read only where its payload did not change (aux and meta); the
/// others go through [`decode_upgrading`].
pub fn decode<T: Decode<()>>(expected: Kind, bytes: &[u8]) -> Result<T, CodecError> {
    let (version, payload) = payload_of(expected, bytes)?;
    if version == FORMAT_V1 && !matches!(expected, Kind::Aux | Kind::Meta) {
        return Err(CodecError::Version(version));
    }
    decode_payload(payload)
}

/// Decodes a record whose layout changed in format 2: a format-1 record is decoded as its
/// old layout `V1` and upgraded.
pub fn decode_upgrading<T: Decode<()>, V1: Decode<()> + Into<T>>(
    expected: Kind,
    bytes: &[u8],
) -> Result<T, CodecError> {
    match payload_of(expected, bytes)? {
        (FORMAT_V1, payload) => decode_payload::<V1>(payload).map(Into::into),
        (_, payload) => decode_payload(payload),
    }
}

fn payload_of(expected: Kind, bytes: &[u8]) -> Result<(u8, &[u8]), CodecError> {
    let (version, kind, payload) = check(bytes)?;
    if kind != expected as u8 {
        return Err(CodecError::Kind {
            expected,
            found: kind,
        });
    }
    Ok((version, payload))
}

/// A value as an unframed bincode payload, in the records' configuration (a note, which the
/// framed record holding it checksums).
pub(crate) fn encode_payload<T: Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, config()).expect("encoding into memory cannot fail")
}

/// An unframed bincode payload (a record's, or a note inside one): bounded, and whole.
pub(crate) fn decode_payload<T: Decode<()>>(payload: &[u8]) -> Result<T, CodecError> {
    // A length inside a payload can never claim more than the payload holds: a corrupt
    // record that passed its checksum must fail, not allocate gigabytes.
    let (value, read) =
        bincode::decode_from_slice(payload, config().with_limit::<RECORD_BYTES_MAX>())
            .map_err(|e| CodecError::Payload(e.to_string()))?;
    if read != payload.len() {
        return Err(CodecError::Trailing(payload.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Encode, Decode)]
    struct Sample {
        a: u64,
        b: Vec<i64>,
    }

    #[test]
    fn round_trip_and_damage() {
        let s = Sample {
            a: 7,
            b: vec![-1, 2, i64::MIN],
        };
        let bytes = encode(Kind::Journal, &s);
        assert_eq!(decode::<Sample>(Kind::Journal, &bytes), Ok(s));
        assert!(matches!(
            decode::<Sample>(Kind::Account, &bytes),
            Err(CodecError::Kind { .. })
        ));
        for cut in 0..bytes.len() {
            assert!(
                decode::<Sample>(Kind::Journal, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                decode::<Sample>(Kind::Journal, &bad).is_err(),
                "flip at {i}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<Sample>(Kind::Journal, &long).is_err());
    }
}
