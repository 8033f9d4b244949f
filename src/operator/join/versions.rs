//! [`VersionedTable`]: the versions of a table by key, the state behind an
//! event-time stream–table join (DESIGN.md §7 T2, T3; Flink's event-time
//! temporal join, Kafka Streams' versioned stores of KIP-889).
//!
//! Per key, a list of versions `(version time ms, value)` sorted by time,
//! where a `None` value is a tombstone (T3). A lookup at event time `t`
//! answers with the version whose time is the greatest ≤ `t`.
//!
//! Decisions where DESIGN.md §7 is silent:
//! - **Equal version times: last write wins.** A version at the time of an
//!   existing one of its key replaces it, as a compacted topic keeps the
//!   last record of a key.
//! - **Keys** are the same key exactly when their JSON texts are equal (as
//!   in the window operator's key table).
//! - **Retention** ([`VersionedTable::expire`]) keeps, per key, the newest
//!   version at or before the cutoff and every version after it (Flink). Once
//!   anything of a key was dropped, its *floor* is the time of its oldest
//!   kept version. A key left with only a tombstone at or before the cutoff
//!   is removed; so that no lookup gives a wrong [`Lookup::Absent`], a key
//!   the table does not hold answers [`Lookup::Expired`] below the highest
//!   cutoff applied, and a key (re)created after a cutoff takes that cutoff
//!   as its floor (its older history may have been removed).
//! - **A lookup is [`Lookup::Expired`]** when the version that answers it is
//!   older than the key's floor, or none answers and `t` is below it:
//!   dropped versions could have answered. A late version older than the
//!   floor is still inserted; it only ever answers lookups that expire.
//!   For `time: latest` ([`VersionedTable::latest`]) that happens only when
//!   a removed key is created again by such a late version.
//! - **Cost.** [`VersionedTable::expire`] visits only the keys it changes,
//!   found by their due time in an ordered index; a key with one value is
//!   never visited.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The answer of a lookup in a [`VersionedTable`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup<'a> {
    /// The value of the version that answers.
    Match(&'a Value),
    /// No version answers, or the one that does is a tombstone (T3).
    Absent,
    /// The answer is unknowable: versions that could give it were dropped
    /// by [`VersionedTable::expire`] (`table history expired`, T2).
    Expired,
}

/// One key's versions.
#[derive(Debug, Clone, Default)]
struct KeyVersions {
    /// `(version time ms, value)`, strictly increasing in time; `None` is a
    /// tombstone.
    versions: Vec<(i64, Option<Value>)>,
    /// Lookups answered by a version older than this (or by none, below
    /// it) are expired; `i64::MIN` while nothing of the key was dropped.
    floor: i64,
}

impl KeyVersions {
    /// Index of the version with the greatest time ≤ `t`.
    fn at(&self, t: i64) -> Option<usize> {
        self.versions
            .partition_point(|(vt, _)| *vt <= t)
            .checked_sub(1)
    }

    /// The lowest cutoff (ms) at which [`VersionedTable::expire`] changes
    /// this key: when it reaches the second version's time (the first is
    /// then dropped), or a lone tombstone's (the key is removed); `None` for
    /// a lone value, which expiry never touches.
    fn due(&self) -> Option<i64> {
        match self.versions.as_slice() {
            [(t, None)] | [_, (t, _), ..] => Some(*t),
            _ => None,
        }
    }
}

/// The versions of a table's keys (DESIGN.md §7 T2): inserted as table
/// records arrive, looked up at a stream record's event time, expired behind
/// the stream's watermark minus `history`.
#[derive(Debug, Clone, Default)]
pub struct VersionedTable {
    /// Versions by the key's JSON text.
    keys: HashMap<String, KeyVersions>,
    /// `(due, key text)` of every key expiry can change (see
    /// `KeyVersions::due`), so that [`VersionedTable::expire`] visits only
    /// the keys it changes, not a whole reference table at every step.
    due: BTreeSet<(i64, String)>,
    /// The highest cutoff applied by [`VersionedTable::expire`], ms.
    cutoff: Option<i64>,
    /// Versions held over every key.
    versions: usize,
    /// Bytes of the keys' JSON texts held.
    key_bytes: usize,
}

/// The JSON text of a key, its identity in the table.
fn key_text(key: &Value) -> String {
    // Writing a `Value` to a string cannot fail: its keys are strings.
    serde_json::to_string(key).unwrap_or_default()
}

impl VersionedTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts the version of `key` at `time` (ms; the table record's event
    /// time) with `value`, `None` for a tombstone. A version at the time of
    /// an existing one replaces it (last write wins); an older-than-newest
    /// version is inserted in order and affects only lookups made after it
    /// arrived (T2 "late version").
    pub fn insert(&mut self, key: &Value, time: i64, value: Option<Value>) {
        let text = key_text(key);
        let floor = self.cutoff.unwrap_or(i64::MIN);
        let kv = match self.keys.get_mut(&text) {
            Some(kv) => kv,
            None => {
                self.key_bytes += text.len();
                self.keys.entry(text.clone()).or_insert(KeyVersions {
                    versions: Vec::new(),
                    floor,
                })
            }
        };
        let was_due = kv.due();
        let i = kv.versions.partition_point(|(vt, _)| *vt < time);
        match kv.versions.get_mut(i) {
            Some(v) if v.0 == time => v.1 = value,
            _ => {
                kv.versions.insert(i, (time, value));
                self.versions += 1;
            }
        }
        let due = kv.due();
        if due != was_due {
            if let Some(d) = was_due {
                self.due.remove(&(d, text.clone()));
            }
            if let Some(d) = due {
                self.due.insert((d, text));
            }
        }
    }

    /// The value of `key` at event time `t` (ms): the version with the
    /// greatest time ≤ `t` (T2). [`Lookup::Absent`] when it is a tombstone or
    /// there is none; [`Lookup::Expired`] when dropped versions could answer.
    pub fn lookup(&self, key: &Value, t: i64) -> Lookup<'_> {
        let Some(kv) = self.keys.get(&key_text(key)) else {
            return match self.cutoff {
                Some(c) if t < c => Lookup::Expired,
                _ => Lookup::Absent,
            };
        };
        match kv.at(t) {
            Some(i) if kv.versions[i].0 < kv.floor => Lookup::Expired,
            None if t < kv.floor => Lookup::Expired,
            None => Lookup::Absent,
            Some(i) => match &kv.versions[i].1 {
                Some(v) => Lookup::Match(v),
                None => Lookup::Absent,
            },
        }
    }

    /// The newest value of `key` (`time: latest`): [`Lookup::Absent`] when it
    /// is a tombstone or the key is unknown. [`Lookup::Expired`] only for a
    /// key removed by [`VersionedTable::expire`] and created again by a late
    /// version older than its floor: the removed tombstone could be newer.
    pub fn latest(&self, key: &Value) -> Lookup<'_> {
        let Some(kv) = self.keys.get(&key_text(key)) else {
            return Lookup::Absent;
        };
        match kv.versions.last() {
            Some((t, _)) if *t < kv.floor => Lookup::Expired,
            Some((_, Some(v))) => Lookup::Match(v),
            _ => Lookup::Absent,
        }
    }

    /// Retention (Flink's event-time temporal join, DESIGN.md §7 T2): per
    /// key, keeps the newest version with time ≤ `cutoff` (ms) and every
    /// version after it, and drops the older ones; removes a key left with a
    /// tombstone only. `cutoff` is the stream's watermark minus `history`
    /// (the caller computes it); a cutoff at or below one already applied
    /// changes nothing. Visits only the keys it changes (by their due
    /// time, O(log keys) each).
    pub fn expire(&mut self, cutoff: i64) {
        if self.cutoff.is_some_and(|c| cutoff <= c) {
            return;
        }
        self.cutoff = Some(cutoff);
        while self.due.first().is_some_and(|(d, _)| *d <= cutoff) {
            let Some((_, text)) = self.due.pop_first() else {
                break;
            };
            // Every key in `due` is in `keys`: both change together.
            let Some(kv) = self.keys.get_mut(&text) else {
                continue;
            };
            if let Some(i) = kv.at(cutoff).filter(|i| *i > 0) {
                kv.versions.drain(..i);
                self.versions -= i;
                kv.floor = kv.floor.max(kv.versions[0].0);
            }
            if matches!(kv.versions.as_slice(), [(t, None)] if *t <= cutoff) {
                self.versions -= 1;
                self.key_bytes -= text.len();
                self.keys.remove(&text);
            } else if let Some(d) = kv.due() {
                // Above `cutoff`: the versions left start at the newest ≤ it.
                self.due.insert((d, text));
            }
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of versions held over every key (tombstones included).
    pub fn versions(&self) -> usize {
        self.versions
    }

    /// The highest cutoff (ms) applied by [`VersionedTable::expire`], if any.
    pub fn cutoff(&self) -> Option<i64> {
        self.cutoff
    }

    /// A rough estimate of the bytes held: the keys' JSON texts plus a fixed
    /// 64 bytes a version (values are not measured, which would cost a walk).
    pub fn estimated_bytes(&self) -> usize {
        self.key_bytes + self.versions * 64
    }
}
