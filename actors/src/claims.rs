//! Transfer ids between their claim and their answer: a second command with an id that is in
//! flight is a duplicate the store cannot see yet. Owned by the coordinator's thread.
//!
//! A round of a few transfers claims its ids one at a time in a hash set. A large round (the
//! batch endpoint's, up to 8,190) claims them as one sorted list instead, checked against the
//! others by a merge and dropped whole when the round is answered: in the hash set, each of
//! its ids cost a cache miss at its claim and another at its release, because the round's
//! other work evicts the set in between (4.5% of the batch endpoint's CPU, docs/BENCHMARKS.md).

use std::collections::HashSet;

use engine::TransferId;

use crate::shard::IdHasher;

/// Rounds of at least this many transfers claim their ids as one sorted list. Below it the
/// set of a few rounds' ids stays in the CPU's caches and costs less than a sort: the engine
/// bench's rounds (up to 512 at 1,024 submitters) keep it.
pub const BULK_MIN: usize = 2_048;

/// How a round's ids were claimed, to release them the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// One at a time, in the set.
    Single,
    /// As the bulk claim of this number.
    Bulk(u64),
}

/// A large round's ids, sorted, and those of them already answered (refused before the
/// round's write): claimable again until the round is dropped.
struct Bulk {
    number: u64,
    ids: Vec<u128>,
    released: HashSet<u128, IdHasher>,
}

impl Bulk {
    fn holds(&self, id: u128) -> bool {
        self.ids.binary_search(&id).is_ok() && !self.released.contains(&id)
    }
}

#[derive(Default)]
pub struct Claims {
    single: HashSet<TransferId, IdHasher>,
    bulk: Vec<Bulk>,
    next: u64,
    /// Scratch: a large round's ids with their places, sorted.
    sorted: Vec<(u128, u32)>,
    /// Scratch: the last round's answer, per id whether it is a duplicate.
    duplicate: Vec<bool>,
}

impl Claims {
    /// Claims the ids of a round, given in round order. Returns how they were claimed and,
    /// per id, whether it is a duplicate: already in flight, or earlier in the round (the
    /// earliest is the one claimed).
    pub fn claim(&mut self, ids: impl ExactSizeIterator<Item = TransferId>) -> (Token, &[bool]) {
        let mut duplicate = std::mem::take(&mut self.duplicate);
        duplicate.clear();
        duplicate.resize(ids.len(), false);
        let token = if ids.len() < BULK_MIN {
            for (i, id) in ids.enumerate() {
                if self.held_by_bulk(id.0) || !self.single.insert(id) {
                    duplicate[i] = true;
                }
            }
            Token::Single
        } else {
            self.claim_bulk(ids, &mut duplicate)
        };
        self.duplicate = duplicate;
        (token, &self.duplicate)
    }

    fn claim_bulk(
        &mut self,
        ids: impl Iterator<Item = TransferId>,
        duplicate: &mut [bool],
    ) -> Token {
        let mut sorted = std::mem::take(&mut self.sorted);
        sorted.clear();
        sorted.extend(ids.enumerate().map(|(i, id)| (id.0, i as u32)));
        // By id, then by place: of equal ids the earliest comes first.
        sorted.sort_unstable();
        let mut claimed = Vec::with_capacity(sorted.len());
        // One cursor per bulk claim in flight: both lists are sorted, so each is walked once.
        let mut cursors = vec![0usize; self.bulk.len()];
        for (w, &(id, i)) in sorted.iter().enumerate() {
            if w > 0 && sorted[w - 1].0 == id {
                duplicate[i as usize] = true;
                continue;
            }
            let mut held = !self.single.is_empty() && self.single.contains(&TransferId(id));
            for (b, cursor) in self.bulk.iter().zip(cursors.iter_mut()) {
                while *cursor < b.ids.len() && b.ids[*cursor] < id {
                    *cursor += 1;
                }
                held |= b.ids.get(*cursor) == Some(&id) && !b.released.contains(&id);
            }
            if held {
                duplicate[i as usize] = true;
            } else {
                claimed.push(id);
            }
        }
        self.sorted = sorted;
        let number = self.next;
        self.next += 1;
        self.bulk.push(Bulk {
            number,
            ids: claimed,
            released: HashSet::default(),
        });
        Token::Bulk(number)
    }

    fn held_by_bulk(&self, id: u128) -> bool {
        self.bulk.iter().any(|b| b.holds(id))
    }

    /// The command of `id`, claimed with `token`, is answered before its round is done.
    pub fn release(&mut self, id: TransferId, token: Token) {
        match token {
            Token::Single => {
                self.single.remove(&id);
            }
            Token::Bulk(number) => {
                if let Some(b) = self.bulk.iter_mut().find(|b| b.number == number) {
                    b.released.insert(id.0);
                }
            }
        }
    }

    /// Every command of a bulk claim is answered: its ids may be claimed again.
    pub fn finish(&mut self, token: Token) {
        if let Token::Bulk(number) = token {
            self.bulk.retain(|b| b.number != number);
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.single.is_empty() && self.bulk.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: impl IntoIterator<Item = u128>) -> Vec<TransferId> {
        v.into_iter().map(TransferId).collect()
    }

    /// Claims `v`: the token, and the places of the duplicates.
    fn claim(c: &mut Claims, v: impl IntoIterator<Item = u128>) -> (Token, Vec<usize>) {
        let (token, d) = c.claim(ids(v).into_iter());
        let dups = d
            .iter()
            .enumerate()
            .filter(|(_, &x)| x)
            .map(|(i, _)| i)
            .collect();
        (token, dups)
    }

    #[test]
    fn a_bulk_round_keeps_the_earliest_of_its_equal_ids() {
        let mut c = Claims::default();
        let mut round: Vec<u128> = (0..BULK_MIN as u128)
            .map(|i| i * 7_919 % 1_000_000)
            .collect();
        round[10] = round[3];
        round[200] = round[3];
        round[50] = round[199];
        let (t, d) = claim(&mut c, round);
        assert!(matches!(t, Token::Bulk(_)));
        assert_eq!(d, vec![10, 199, 200], "50 comes before 199");
        c.finish(t);
        assert!(c.is_empty());
    }

    #[test]
    fn rounds_in_flight_see_each_others_ids_whichever_way_they_claimed() {
        let n = BULK_MIN as u128;
        let mut c = Claims::default();
        let (big_a, d) = claim(&mut c, 0..n);
        assert!(matches!(big_a, Token::Bulk(_)) && d.is_empty());
        let (small, d) = claim(&mut c, [5 * n, n - 1, n]);
        assert_eq!(small, Token::Single);
        assert_eq!(d, vec![1], "n - 1 is the first bulk round's");
        // n is the small round's, n - 100..n the first bulk round's.
        let (big_b, d) = claim(&mut c, n - 100..2 * n);
        assert!(matches!(big_b, Token::Bulk(_)));
        assert_eq!(d, (0..101).collect::<Vec<_>>());
        // The second bulk round claimed n + 1..2n only.
        let (small_2, d) = claim(&mut c, [n + 500, n - 50, 2 * n]);
        assert_eq!(d, vec![0, 1]);
        c.finish(big_a);
        let (again, d) = claim(&mut c, [n - 50, n + 500]);
        assert_eq!(d, vec![1], "n - 50 is free once its round is answered");
        c.release(TransferId(n - 50), again);
        c.release(TransferId(5 * n), small);
        c.release(TransferId(n), small);
        c.release(TransferId(2 * n), small_2);
        c.finish(big_b);
        assert!(c.is_empty());
    }

    #[test]
    fn an_id_answered_early_is_claimable_while_its_round_is_in_flight() {
        let mut c = Claims::default();
        let (big, _) = claim(&mut c, 0..BULK_MIN as u128);
        c.release(TransferId(7), big);
        let (small, d) = claim(&mut c, [7, 8]);
        assert_eq!(d, vec![1]);
        let (big_2, d) = claim(&mut c, 5..5 + BULK_MIN as u128);
        // 5, 6 and 8.. are the first round's; 7 the small round's.
        assert_eq!(d, (0..BULK_MIN - 5).collect::<Vec<_>>());
        c.release(TransferId(7), small);
        c.finish(big);
        c.finish(big_2);
        assert!(c.is_empty());
    }
}
