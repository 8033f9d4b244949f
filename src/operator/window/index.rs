//! When windows close: an index of window slots by the watermark at which
//! they close, so closing is a pop of the earliest close time. Aligned
//! windows never move, and many share a close time (every key's window of
//! one minute), so they sit in one bucket per close time, filled by a push.
//! Session windows move when they grow, so they sit in an ordered set with
//! an `O(log n)` removal.

use std::collections::{BTreeMap, BTreeSet};

/// Window slots by close time (the watermark, ms, that closes them).
#[derive(Debug, Clone)]
pub enum CloseIndex {
    /// One bucket per close time (aligned windows).
    Buckets(BTreeMap<i64, Vec<u32>>),
    /// `(close time, slot)` pairs (session windows).
    Set(BTreeSet<(i64, u32)>),
}

impl CloseIndex {
    /// An empty index: buckets for aligned windows, a set for sessions.
    pub fn new(aligned: bool) -> Self {
        if aligned {
            CloseIndex::Buckets(BTreeMap::new())
        } else {
            CloseIndex::Set(BTreeSet::new())
        }
    }

    /// Indexes `slot`, closing at `closes`.
    pub fn insert(&mut self, closes: i64, slot: u32) {
        match self {
            CloseIndex::Buckets(b) => b.entry(closes).or_default().push(slot),
            CloseIndex::Set(s) => {
                s.insert((closes, slot));
            }
        }
    }

    /// Removes `slot`, indexed at `closes`.
    pub fn remove(&mut self, closes: i64, slot: u32) {
        match self {
            CloseIndex::Buckets(b) => {
                if let Some(bucket) = b.get_mut(&closes) {
                    if let Some(i) = bucket.iter().position(|s| *s == slot) {
                        bucket.swap_remove(i);
                    }
                    if bucket.is_empty() {
                        b.remove(&closes);
                    }
                }
            }
            CloseIndex::Set(s) => {
                s.remove(&(closes, slot));
            }
        }
    }

    /// Takes out every slot of the earliest close time, when that is at or
    /// before `to`, in no particular order; `None` when none is due.
    pub fn pop_due(&mut self, to: i64) -> Option<Vec<u32>> {
        match self {
            CloseIndex::Buckets(b) => {
                let entry = b.first_entry().filter(|e| *e.key() <= to)?;
                Some(entry.remove())
            }
            CloseIndex::Set(s) => {
                let first = s.first().map(|(c, _)| *c).filter(|c| *c <= to)?;
                let mut slots = Vec::new();
                while let Some((_, slot)) = s.first().filter(|(c, _)| *c == first) {
                    slots.push(*slot);
                    s.pop_first();
                }
                Some(slots)
            }
        }
    }

    /// Estimated bytes of the index.
    pub fn approx_bytes(&self) -> usize {
        match self {
            CloseIndex::Buckets(b) => b
                .values()
                .map(|v| 32 + v.capacity() * size_of::<u32>())
                .sum(),
            CloseIndex::Set(s) => s.len() * (size_of::<(i64, u32)>() + 8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_the_earliest_close_time_when_due() {
        for aligned in [true, false] {
            let mut ix = CloseIndex::new(aligned);
            ix.insert(20, 1);
            ix.insert(10, 2);
            ix.insert(10, 3);
            ix.insert(30, 4);
            ix.remove(30, 4);
            assert_eq!(ix.pop_due(5), None);
            let mut due = ix.pop_due(25).unwrap();
            due.sort_unstable();
            assert_eq!(due, vec![2, 3]);
            assert_eq!(ix.pop_due(25), Some(vec![1]));
            assert_eq!(ix.pop_due(i64::MAX), None, "30 was removed");
        }
    }
}
