//! Per-partition checkpoints in the compacted topic `weir.<pipeline>.checkpoint`
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

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

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
    /// librdkafka's error.
    pub source: rdkafka::error::KafkaError,
}

/// Reads the newest checkpoint of every key in `topic` (blocking, bounded by
/// `timeout`); with `read_committed`, only those of committed transactions.
/// A missing topic yields no checkpoints.
///
/// # Errors
/// [`CheckpointError`] when the broker cannot be read.
pub fn read_all(
    base: &ClientConfig,
    topic: &str,
    read_committed: bool,
    timeout: Duration,
) -> Result<HashMap<String, Checkpoint>, CheckpointError> {
    let err = |source| CheckpointError {
        topic: topic.to_owned(),
        source,
    };
    let mut cfg = base.clone();
    cfg.set("group.id", "weir.checkpoint-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.queue.backoff.ms", "10");
    if read_committed {
        cfg.set("isolation.level", "read_committed");
    }
    let consumer: BaseConsumer = cfg.create().map_err(err)?;
    let md = consumer.fetch_metadata(Some(topic), timeout).map_err(err)?;
    let mut targets = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for t in md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
    {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .map_err(err)?;
            if high > low {
                targets.insert(p.id(), high - 1);
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .map_err(err)?;
            }
        }
    }
    let mut out = HashMap::new();
    if targets.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(err)?;
    let deadline = Instant::now() + timeout;
    let mut last_progress = Instant::now();
    while !targets.is_empty()
        && Instant::now() < deadline
        && last_progress.elapsed() < crate::kafka::changelog::QUIET
    {
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.map_err(err)?;
        last_progress = Instant::now();
        if let (Some(k), Some(v)) = (msg.key(), msg.payload()) {
            if let (Ok(k), Ok(cp)) = (
                std::str::from_utf8(k),
                serde_json::from_slice::<Checkpoint>(v),
            ) {
                out.insert(k.to_owned(), cp);
            }
        }
        if targets
            .get(&msg.partition())
            .is_some_and(|last| msg.offset() >= *last)
        {
            targets.remove(&msg.partition());
        }
    }
    // Records of the last fetched batch beyond the reported high watermark
    // (Tansu reports the last batch's base offset + 1) are already queued.
    while let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) {
        if let (Some(k), Some(v)) = (msg.key(), msg.payload()) {
            if let (Ok(k), Ok(cp)) = (
                std::str::from_utf8(k),
                serde_json::from_slice::<Checkpoint>(v),
            ) {
                out.insert(k.to_owned(), cp);
            }
        }
    }
    Ok(out)
}
