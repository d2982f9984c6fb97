//! WAL record decoding never panics nor allocates without bound: raw bytes (framing,
//! checksum, version) and well-framed arbitrary payloads (the bincode decoding of a journal
//! entry, a group's journal record and an account record). What decodes re-encodes to a record that decodes to
//! the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::codec::{decode, encode, frame, Kind};
use storage::schema::JournalGroup;
use storage::JournalEntry;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<JournalEntry>(Kind::Journal, data);
    let framed = frame(Kind::Journal, data);
    if let Ok(entry) = decode::<JournalEntry>(Kind::Journal, &framed) {
        let again = encode(Kind::Journal, &entry);
        assert_eq!(
            decode::<JournalEntry>(Kind::Journal, &again).as_ref(),
            Ok(&entry)
        );
    }
    let framed = frame(Kind::JournalGroup, data);
    if let Ok(group) = decode::<JournalGroup>(Kind::JournalGroup, &framed) {
        let again = encode(Kind::JournalGroup, &group);
        assert_eq!(
            decode::<JournalGroup>(Kind::JournalGroup, &again).as_ref(),
            Ok(&group)
        );
    }
    let framed = frame(Kind::Account, data);
    if let Ok(account) = decode::<engine::Account>(Kind::Account, &framed) {
        let again = encode(Kind::Account, &account);
        assert_eq!(
            decode::<engine::Account>(Kind::Account, &again).as_ref(),
            Ok(&account)
        );
    }
});
