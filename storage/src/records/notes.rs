//! Notes on journal entries: what the layers above know about a unit that the ledger's
//! effects do not say (a batch transfer's client id and reference), kept with the journal's
//! order instead of under a key of their own.
//!
//! A unit carries its note as bytes ([`crate::CommitUnit::note`], a [`Note`] encoded by
//! [`Note::to_bytes`] on the caller's thread). The writer gathers the notes of a group's
//! written units into one [`JournalNotes`] record under [`super::journal_notes_key`] of the
//! first one's sequence number. A batch of 8,190 transfers thus writes one `aux` key rather
//! than 8,190, and the keys ascend with the journal, so RocksDB appends them.

use bincode::{Decode, Encode};
use engine::TransferId;

use crate::codec::CodecError;

/// The notes of one group write (or of the part of it on one business date): note `i` is on
/// the journal entry of sequence number `first_seq + notes[i].0`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct JournalNotes {
    /// Redundant with the key: a record copied to the wrong key is detected.
    pub first_seq: u64,
    /// (offset from `first_seq`, a [`Note`] encoded), in ascending order.
    pub notes: Vec<(u32, Vec<u8>)>,
}

/// [`JournalNotes`] borrowed from the units being written (by the writer): encodes exactly
/// like it.
#[derive(Encode)]
pub(crate) struct JournalNotesRef<'a> {
    pub(crate) first_seq: u64,
    pub(crate) notes: Vec<(u32, &'a [u8])>,
}

impl JournalNotes {
    /// Each note with the sequence number of its journal entry.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.notes
            .iter()
            .map(|(offset, note)| (self.first_seq + u64::from(*offset), note.as_slice()))
    }
}

/// What a note says.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Note {
    /// A transfer of the batch endpoint: what its ledger transfer does not say.
    BatchTransfer(BatchTransferNote),
}

/// A batch transfer's note (its creation time is the journal entry's timestamp).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BatchTransferNote {
    /// The ledger transfer it is on (redundant with the journal entry, so that the note
    /// alone says which transfer it describes).
    pub transfer: TransferId,
    /// The client's own id of the transfer (the ledger's id is derived from it).
    pub client_id: String,
    /// The merchant that submitted it; 0 for the operator.
    pub merchant: u128,
    pub reference: Option<String>,
}

impl Note {
    /// The bytes a [`crate::CommitUnit`] carries: bincode, unframed (the record that holds
    /// it is framed and checksummed).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::encode_payload(self)
    }

    /// A note's bytes decoded, as a record's payload is (bounded, nothing after it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Note, CodecError> {
        crate::codec::decode_payload(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_borrowed_record_encodes_like_the_owned_one_and_notes_round_trip() {
        let a = Note::BatchTransfer(BatchTransferNote {
            transfer: TransferId(7),
            client_id: "c-1".into(),
            merchant: 3,
            reference: Some("r".into()),
        })
        .to_bytes();
        let b = Note::BatchTransfer(BatchTransferNote {
            transfer: TransferId(u128::MAX),
            client_id: "c-2".into(),
            merchant: 0,
            reference: None,
        })
        .to_bytes();
        let owned = JournalNotes {
            first_seq: 1 << 40,
            notes: vec![(0, a.clone()), (9, b.clone())],
        };
        let borrowed = JournalNotesRef {
            first_seq: 1 << 40,
            notes: vec![(0, &a), (9, &b)],
        };
        let bytes = super::super::encode(&borrowed);
        assert_eq!(bytes, super::super::encode(&owned));
        let back: JournalNotes = super::super::decode(b"k", &bytes).unwrap();
        let seqs: Vec<u64> = back.entries().map(|(s, _)| s).collect();
        assert_eq!(seqs, [1 << 40, (1 << 40) + 9]);
        assert_eq!(Note::from_bytes(&b).unwrap().to_bytes(), b);
        // A note with bytes after it, or cut short, is refused.
        assert!(Note::from_bytes(&[a.as_slice(), &[0]].concat()).is_err());
        assert!(Note::from_bytes(&a[..a.len() - 1]).is_err());
    }
}
