//! The commit step of the state layer, pure: from a partition's changed
//! window entries and its new checkpoint to the records to write
//! (DESIGN.md §3 State, §4). The runtime sends them (`runtime/commit`);
//! the record shapes come from [`super::codec`].
//!
//! Per input partition and commit: when any of its state changed, the
//! write number `seq` goes up by one; every changed entry of every window
//! stage goes to that stage's changelog (partition = the input partition)
//! with header `weir.seq = seq`, then a marker (the checkpoint) to every
//! stage's changelog. The checkpoint record itself (at-least-once) follows
//! once those are acknowledged, and confirms them.

use super::codec::{self, Checkpoint, Upstream};
use crate::operator::window::ChangeRef;
use std::collections::BTreeMap;

/// One changelog record to write: to the changelog of window stage
/// `stage`, in the input partition's partition, with the commit's `seq`
/// header. `value` `None` is a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRecord<'a> {
    /// Index of the window stage whose changelog takes it.
    pub stage: usize,
    /// Record key.
    pub key: &'a str,
    /// Record value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

/// Where a partition stands at a commit.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// Next input offset to process; negative before the first record.
    pub offset: i64,
    /// The partition's watermark, ms.
    pub watermark: i64,
    /// After a repartition: what each upstream partition has sent.
    pub upstream: &'a BTreeMap<String, Upstream>,
    /// Whether any state changed since the last commit.
    pub changed: bool,
}

/// The checkpoint of this commit, or `None` when nothing is to be written
/// (no record processed yet, or nothing moved since `last`). `seq` is the
/// partition's write number: it goes up by one when the state changed.
pub fn next_checkpoint(
    last: Option<&Checkpoint>,
    seq: &mut u64,
    at: Position<'_>,
) -> Option<Checkpoint> {
    if at.offset < 0 {
        return None;
    }
    if at.changed {
        *seq += 1;
    }
    let cp = Checkpoint {
        offset: at.offset,
        watermark: at.watermark,
        seq: *seq,
        upstream: at.upstream.clone(),
    };
    (last != Some(&cp)).then_some(cp)
}

/// Encodes commits with buffers reused between records.
#[derive(Debug, Default)]
pub struct Encoder {
    key: String,
    value: Vec<u8>,
}

impl Encoder {
    /// The records of one partition's commit: every change `drain` hands
    /// out (stage index and change), then the marker `cp` to each stage of
    /// `stages`. `source` is the input partition, `topic/partition`.
    /// Returns the number of records.
    pub fn partition(
        &mut self,
        source: &str,
        stages: &[usize],
        cp: &Checkpoint,
        drain: impl FnOnce(&mut dyn FnMut(usize, ChangeRef<'_>)),
        emit: &mut dyn FnMut(StateRecord<'_>),
    ) -> u64 {
        let mut n = 0;
        let (key, value) = (&mut self.key, &mut self.value);
        drain(&mut |stage, change| {
            let v = match change {
                ChangeRef::Put { key_text, entry } => {
                    codec::write_entry_key(key, source, stage, key_text, entry.start);
                    codec::encode_entry(&entry, value);
                    Some(&value[..])
                }
                ChangeRef::Remove { key_text, start } => {
                    codec::write_entry_key(key, source, stage, key_text, start);
                    None
                }
            };
            emit(StateRecord {
                stage,
                key,
                value: v,
            });
            n += 1;
        });
        let marker = codec::encode_checkpoint(cp);
        let marker_key = codec::marker_key(source);
        for &stage in stages {
            emit(StateRecord {
                stage,
                key: &marker_key,
                value: Some(&marker),
            });
            n += 1;
        }
        n
    }
}

/// The checkpoint topic's record of `cp`: key `source`, value the encoded
/// checkpoint.
pub fn checkpoint_record(source: &str, cp: &Checkpoint) -> (String, Vec<u8>) {
    (source.to_owned(), codec::encode_checkpoint(cp))
}

#[cfg(test)]
mod tests;
