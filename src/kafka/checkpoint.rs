//! Per-partition checkpoints in the compacted topic `<group>.checkpoint`
//! (DESIGN.md §3).
//!
//! A checkpoint says: every record of the input partition before `offset`
//! is fully handled and everything it caused is acknowledged; the
//! partition's watermark then was `watermark`; and the window state as of
//! `offset` is in the changelog, in writes numbered up to `seq`. It is
//! written only after those changelog writes are acknowledged, so it is
//! what confirms them. Resuming at `offset` with that watermark and that
//! state repeats nothing and loses nothing. It is a record, not
//! offset-commit metadata, because Tansu drops commit metadata.

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One partition's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Next input offset to process.
    pub offset: i64,
    /// Watermark (ms) just before `offset`; `i64::MIN` when none yet.
    pub watermark: i64,
    /// The last changelog write the state at `offset` consists of.
    #[serde(default)]
    pub seq: u64,
    /// After a repartition: per upstream partition (`topic/partition`), the
    /// latest watermark marker and the highest upstream offset seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upstream: BTreeMap<String, Upstream>,
}

/// What a repartition topic's partition has seen of one upstream partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Latest watermark marker, ms.
    pub watermark: i64,
    /// Highest upstream source offset of a record seen; records at or below
    /// it are repeats from an upstream replay and are dropped.
    pub offset: i64,
}

/// The record key of a source partition's checkpoint: `topic/partition`.
pub fn key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// Errors reading checkpoints.
#[derive(Debug, thiserror::Error)]
#[error("reading checkpoints from `{topic}`: {source}")]
pub struct CheckpointError {
    /// The checkpoint topic.
    pub topic: String,
    /// The read's error.
    pub source: Box<crate::kafka::changelog::ChangelogError>,
}

/// Reads the newest checkpoint of every key in `topic` (blocking, bounded by
/// `timeout`; read to the end as the changelogs are,
/// [`crate::kafka::changelog::read_partitions`]); with `read_committed`,
/// only those of committed transactions. A missing topic yields no
/// checkpoints.
///
/// # Errors
/// [`CheckpointError`] when the broker cannot be read.
pub fn read_all(
    base: &ClientConfig,
    topic: &str,
    read_committed: bool,
    timeout: Duration,
) -> Result<HashMap<String, Checkpoint>, CheckpointError> {
    let records = crate::kafka::changelog::read_topic_to_end(base, topic, read_committed, timeout)
        .map_err(|source| CheckpointError {
            topic: topic.to_owned(),
            source: Box::new(source),
        })?;
    let mut out = HashMap::new();
    for r in records {
        if let (Ok(k), Some(Ok(cp))) = (
            String::from_utf8(r.key),
            r.payload
                .as_deref()
                .map(serde_json::from_slice::<Checkpoint>),
        ) {
            out.insert(k, cp);
        }
    }
    Ok(out)
}
