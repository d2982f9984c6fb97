//! Notes on journal entries (`CommitUnit::note`): the writer keeps the notes of a group's
//! written units in one record keyed by the first one's sequence number, starts a new record
//! after a date switch (so the shelf moves each with its date), and writes no note of a unit
//! it does not write.

use engine::gl::BusinessDate;
use engine::{Effect, TransferId};
use storage::records::{self, BatchTransferNote, JournalNotes, Note};
use storage::{CommitUnit, Store, StoreOptions};

use crate::common::*;

fn note(id: u128, client_id: &str) -> Vec<u8> {
    Note::BatchTransfer(BatchTransferNote {
        transfer: TransferId(id),
        client_id: client_id.into(),
        merchant: 7,
        reference: Some(format!("ref {id}")),
    })
    .to_bytes()
}

fn with_note(mut unit: CommitUnit, note: Vec<u8>) -> CommitUnit {
    unit.note = note;
    unit
}

/// A notes record's key, and each of its notes' (sequence number, client id).
type Record = (Vec<u8>, Vec<(u64, String)>);

/// Every notes record.
fn notes(store: &Store) -> Vec<Record> {
    let mut out = Vec::new();
    store
        .for_each_aux_with_prefix(records::prefix::JOURNAL_NOTES, usize::MAX, |k, v| {
            let record: JournalNotes = records::decode(k, v)?;
            let notes = record
                .entries()
                .map(|(seq, bytes)| match Note::from_bytes(bytes).unwrap() {
                    Note::BatchTransfer(t) => (seq, t.client_id),
                })
                .collect();
            out.push((k.to_vec(), notes));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn a_groups_notes_are_one_record_split_at_a_date_switch_and_only_of_written_units() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.commit_blocking(create_accounts(4)).unwrap(), 1);
    let seq = store
        .commit_blocking(with_note(
            transfer(10, FUNDS, user(0), 100),
            note(10, "c-10"),
        ))
        .unwrap();
    assert_eq!(seq, 2);
    // One submission, so one group write (nothing else is queued).
    let ack = store
        .submit_many(vec![
            with_note(transfer(11, FUNDS, user(1), 5), note(11, "c-11")),
            // Already durable: refused by the writer, and so is its note.
            with_note(transfer(10, FUNDS, user(0), 100), note(10, "c-10 again")),
            transfer(12, FUNDS, user(2), 5),
            with_note(transfer(13, FUNDS, user(3), 5), note(13, "c-13")),
            CommitUnit::effect(Effect::DateSwitched {
                from: BusinessDate(20_000),
                to: BusinessDate(20_001),
            }),
            with_note(transfer(14, FUNDS, user(1), 5), note(14, "c-14")),
            with_note(transfer(15, FUNDS, user(2), 5), note(15, "c-15")),
        ])
        .unwrap();
    let outcomes = ack.blocking_recv().unwrap().unwrap();
    let seqs: Vec<Option<u64>> = outcomes.into_iter().map(|o| o.ok()).collect();
    assert_eq!(
        seqs,
        [Some(3), None, Some(4), Some(5), Some(6), Some(7), Some(8)]
    );
    let expected = vec![
        (records::journal_notes_key(2), vec![(2, "c-10".to_string())]),
        // The group's notes before the switch (at 6), in one record under the first one's
        // sequence number; no note of 12 (it has none) or of the refused retry of 10.
        (
            records::journal_notes_key(3),
            vec![(3, "c-11".to_string()), (5, "c-13".to_string())],
        ),
        // After the switch: a record of its own, under its first note's sequence number.
        (
            records::journal_notes_key(7),
            vec![(7, "c-14".to_string()), (8, "c-15".to_string())],
        ),
    ];
    assert_eq!(notes(&store), expected);
    // Each note is on the entry that posted its transfer.
    for (seq, id) in [(2, 10), (3, 11), (5, 13), (7, 14), (8, 15)] {
        let entry = &store.entries(seq, 1).unwrap()[0];
        assert_eq!(entry.seq, seq);
        assert!(
            matches!(&entry.effects[..], [Effect::Posted(t)] if t.id == TransferId(id)),
            "{entry:?}"
        );
    }
    // Durable like the rest of the group: the same after a reopen.
    drop(store);
    let (store, _) = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    assert_eq!(notes(&store), expected);
}
