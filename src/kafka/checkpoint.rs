//! Reading the per-partition checkpoints of the compacted topic
//! `<group>.checkpoint` (DESIGN.md §3); their format is the state layer's
//! ([`crate::state::codec`]).
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
use std::collections::HashMap;
use std::time::Duration;

pub use crate::state::codec::source_key as key;
pub use crate::state::{Checkpoint, Upstream};

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
                .map(crate::state::codec::decode_checkpoint),
        ) {
            out.insert(k, cp);
        }
    }
    Ok(out)
}
