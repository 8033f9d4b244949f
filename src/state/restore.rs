//! The restore step of the state layer, pure: from the records read back
//! from the changelogs (and, at-least-once, the checkpoints) to each
//! assigned partition's state and resume position (DESIGN.md §3 State, §4).
//! The runtime reads the records (`kafka/changelog`) into a [`Restorer`]
//! as they arrive (memory bounded by the number of changelog keys, only
//! the winners decoded) and applies the result with [`apply`];
//! [`restore`] is the same over records in a `Vec`, which
//! `tests/recovery.rs` runs.
//!
//! Rules:
//! - a partition resumes at its checkpoint: at-least-once, the one in the
//!   checkpoint topic; exactly-once, the newest marker in its changelogs at
//!   or before the offset the group coordinator holds for it (the markers
//!   and offsets of one transaction commit together; a broker that hands
//!   out records of aborted transactions may show later markers);
//! - entries of writes numbered up to the checkpoint's `seq` are the state
//!   (the newest record of a window wins, a tombstone removes it);
//! - entries of later writes were never confirmed: they are left out, and
//!   their windows are marked so that the next commit writes them again
//!   (with their restored state or a tombstone). Without that, the next
//!   write, numbered `seq + 1` again, would confirm a stale entry of the
//!   crashed owner's unconfirmed write `seq + 1` ("seq aliasing");
//! - records of other sources (another input topic sharing a changelog
//!   partition) and markers are not state.

use super::codec::Checkpoint;
use crate::operator::window::WindowEntry;
use crate::operator::Chain;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

mod stream;

pub use stream::{Outcome, Restorer};

/// One record read back from a changelog partition.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Record key bytes.
    pub key: Vec<u8>,
    /// Payload; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The `weir.seq` header; 0 when missing.
    pub seq: u64,
}

impl LogRecord {
    /// The record borrowed, as a [`Restorer`] takes it.
    pub fn view(&self) -> LogRecordRef<'_> {
        LogRecordRef {
            topic: &self.topic,
            partition: self.partition,
            key: &self.key,
            payload: self.payload.as_deref(),
            seq: self.seq,
        }
    }
}

/// One record read back from a changelog partition, borrowed (from the
/// consumer's message while it is read, or from a [`LogRecord`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRecordRef<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Record key bytes.
    pub key: &'a [u8],
    /// Payload; `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
    /// The `weir.seq` header; 0 when missing.
    pub seq: u64,
}

impl LogRecordRef<'_> {
    /// The record copied.
    pub fn to_owned_record(&self) -> LogRecord {
        LogRecord {
            topic: self.topic.to_owned(),
            partition: self.partition,
            key: self.key.to_vec(),
            payload: self.payload.map(<[u8]>::to_vec),
            seq: self.seq,
        }
    }
}

/// One partition's restored state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// Where it resumes; `None`: from the consumer's start position, with
    /// no state.
    pub checkpoint: Option<Checkpoint>,
    /// Confirmed open windows: (stage index, entry), in the order of their
    /// changelog keys' bytes.
    pub windows: Vec<(usize, WindowEntry)>,
    /// Windows of unconfirmed writes, to be written again at the next
    /// commit: (stage index, key, start).
    pub unconfirmed: Vec<(usize, Value, i64)>,
    /// Entries that could not be decoded (logged by the caller; skipped).
    pub unreadable: Vec<(usize, String)>,
}

/// The state of every partition of `assigned` (by source `topic/partition`,
/// with its checkpoint from the checkpoint topic, if any) from `records` in
/// log order per changelog partition. `committed`: under exactly-once, the
/// committed offset of each source; the checkpoints then come from the
/// markers. The same as feeding each record to a [`Restorer`] (which the
/// runtime does as it reads).
pub fn restore(
    assigned: BTreeMap<String, Option<Checkpoint>>,
    records: Vec<LogRecord>,
    committed: Option<&HashMap<String, i64>>,
) -> BTreeMap<String, Restored> {
    let mut restorer = Restorer::new(assigned, committed);
    // A second pass at most: the restorer of a `ReadAgain` knows every
    // checkpoint and never asks again.
    loop {
        for r in &records {
            restorer.push(r.view());
        }
        match restorer.finish() {
            Outcome::Restored(out) => return out,
            Outcome::ReadAgain(next) => restorer = next,
        }
    }
}

/// Puts `r` into a partition's fresh `chain`: the checkpoint's watermark
/// (`max_out_of_orderness` in ms, as the plan says), the windows, and the
/// marks for rewrite (taken out of `r`, which keeps its checkpoint).
/// Returns the number of windows restored.
pub fn apply(chain: &mut Chain, r: &mut Restored, max_out_of_orderness: i64) -> usize {
    if let Some(cp) = &r.checkpoint {
        chain.restore_watermark(max_out_of_orderness, cp.watermark);
    }
    let n = r.windows.len();
    for (stage, e) in r.windows.drain(..) {
        chain.restore_window(stage, e);
    }
    for (stage, key, start) in r.unconfirmed.drain(..) {
        chain.mark_unconfirmed(stage, &key, start);
    }
    n
}

#[cfg(test)]
mod tests;
