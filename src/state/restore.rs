//! The restore step of the state layer, pure: from the records read back
//! from the changelogs (and, at-least-once, the checkpoints) to each
//! assigned partition's state and resume position (DESIGN.md §3 State, §4).
//! The runtime reads the records (`kafka/changelog`) and applies the
//! result with [`apply`]; `tests/recovery.rs` runs the same function.
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

use super::codec::{self, Checkpoint};
use crate::operator::window::WindowEntry;
use crate::operator::Chain;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

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
/// markers.
pub fn restore(
    assigned: BTreeMap<String, Option<Checkpoint>>,
    records: Vec<LogRecord>,
    committed: Option<&HashMap<String, i64>>,
) -> BTreeMap<String, Restored> {
    let mut out: BTreeMap<String, Restored> = assigned
        .into_iter()
        .map(|(s, checkpoint)| {
            let checkpoint = if committed.is_some() {
                None
            } else {
                checkpoint
            };
            (
                s,
                Restored {
                    checkpoint,
                    ..Default::default()
                },
            )
        })
        .collect();
    if let Some(committed) = committed {
        for r in &records {
            let Some(source) = codec::parse_marker_key(&r.key) else {
                continue;
            };
            let Some(Ok(cp)) = r.payload.as_deref().map(codec::decode_checkpoint) else {
                continue;
            };
            let Some(slot) = out.get_mut(&source) else {
                continue;
            };
            if committed.get(&source).is_none_or(|c| cp.offset <= *c) {
                slot.checkpoint = Some(cp);
            }
        }
    }
    // Newest record per changelog key: its bytes are the window's identity
    // (compaction's too), so only one record per window is parsed and
    // decoded, however many writes the log holds.
    let mut confirmed: HashMap<&[u8], usize> = HashMap::new();
    let mut unconfirmed: HashSet<&[u8]> = HashSet::new();
    for (i, r) in records.iter().enumerate() {
        if r.key.starts_with(b"[\"marker\",") {
            continue;
        }
        let Some(source) = codec::entry_source(&r.key) else {
            continue; // not weir's
        };
        let Some(slot) = out.get(&*source) else {
            continue; // another input topic sharing this changelog partition
        };
        let seq = slot.checkpoint.as_ref().map_or(0, |c| c.seq);
        if r.seq > seq {
            unconfirmed.insert(&r.key);
        } else {
            confirmed.insert(&r.key, i);
        }
    }
    let mut live: Vec<(&[u8], usize)> = confirmed.into_iter().collect();
    live.sort_unstable();
    for (key, i) in live {
        let Some(k) = codec::parse_entry_key(key) else {
            continue;
        };
        let Some(v) = records[i].payload.as_deref() else {
            continue; // a tombstone
        };
        let Some(r) = out.get_mut(&k.source) else {
            continue;
        };
        match codec::decode_entry(v) {
            Ok(e) => r.windows.push((k.stage, e)),
            Err(e) => r
                .unreadable
                .push((k.stage, format!("window {}: {e}", k.key))),
        }
    }
    let mut marked: Vec<&[u8]> = unconfirmed.into_iter().collect();
    marked.sort_unstable();
    for key in marked {
        if let Some(k) = codec::parse_entry_key(key) {
            if let Some(r) = out.get_mut(&k.source) {
                r.unconfirmed.push((k.stage, k.key, k.start));
            }
        }
    }
    out
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
