//! WAL record decoding never panics nor allocates without bound: raw bytes (framing,
//! checksum, version) and well-framed arbitrary payloads of both record formats (the
//! bincode decoding of a journal entry, a group's journal record and an account record,
//! format 1's upgraded on read). What decodes re-encodes (as format 2) to a record that
//! decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::codec::{encode, frame, Kind, FORMAT_V1};
use storage::legacy::{decode_account, decode_entry, decode_group};

/// `data` framed as a record of `kind`, in format 2 and in format 1.
fn framed(kind: Kind, data: &[u8]) -> [Vec<u8>; 2] {
    let v2 = frame(kind, data);
    let mut v1 = v2.clone();
    v1[0] = FORMAT_V1;
    [v2, v1]
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_entry(data);
    for bytes in framed(Kind::Journal, data) {
        if let Ok(entry) = decode_entry(&bytes) {
            let again = encode(Kind::Journal, &entry);
            assert_eq!(decode_entry(&again).as_ref(), Ok(&entry));
        }
    }
    for bytes in framed(Kind::JournalGroup, data) {
        if let Ok(group) = decode_group(&bytes) {
            let again = encode(Kind::JournalGroup, &group);
            assert_eq!(decode_group(&again).as_ref(), Ok(&group));
        }
    }
    for bytes in framed(Kind::Account, data) {
        if let Ok(account) = decode_account(&bytes) {
            let again = encode(Kind::Account, &account);
            assert_eq!(decode_account(&again).as_ref(), Ok(&account));
        }
    }
});
