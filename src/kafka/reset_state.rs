//! The state part of `weir reset-offsets --execute`: what a pipeline's
//! state depends on is reset with its offsets, so that reprocessing gives
//! the results of a first run (as Kafka Streams' application reset tool
//! does for internal topics, but with records, which every
//! Kafka-compatible broker takes):
//!
//! - each repartition partition gets a reset record (header `weir.reset`);
//!   the downstream partitions resume just after it, so they never read the
//!   old run's repartitioned records, and one that reads it anyway forgets
//!   what it saw of the upstream partitions;
//! - each changelog's open windows of the reset partitions are deleted
//!   (tombstones), and a marker at the new offset with watermark −∞ is
//!   written, numbered after every earlier write so all of them count as
//!   confirmed (the marker is the checkpoint under `exactly_once`);
//! - the checkpoint of each reset partition is rewritten likewise.
//!
//! The offsets themselves are committed by the caller, after this.

use super::changelog::{self, LogRecord};
use super::checkpoint::{self, Checkpoint};
use super::offsets::TopicPartition;
use super::reset::PartitionReset;
use crate::operator::window::state::{marker_key, parse_entry_key, parse_marker_key};
use crate::plan::Plan;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Header of the reset record in a repartition topic.
pub const RESET_HEADER: &str = "weir.reset";

/// What an execution changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateReport {
    /// Where each repartition partition resumes (after its reset record).
    pub repartition: Vec<(TopicPartition, i64)>,
    /// Open windows deleted from the changelogs.
    pub tombstones: usize,
    /// Changelog markers written.
    pub markers: usize,
    /// Checkpoints rewritten.
    pub checkpoints: usize,
}

/// Errors of the state reset.
#[derive(Debug, thiserror::Error)]
pub enum StateResetError {
    /// The producer could not be created.
    #[error("create producer: {0}")]
    Client(rdkafka::error::KafkaError),
    /// A changelog could not be read to its end.
    #[error(transparent)]
    Read(#[from] changelog::ChangelogError),
    /// A write was not acknowledged.
    #[error("writing to `{topic}`: {source}")]
    Write {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
}

/// The internal topics a reset of `plan` touches, as lines for the dry run
/// (only those that exist in `topics`).
pub fn describe(plan: &Plan, topics: &BTreeMap<String, i32>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rt) = plan.repartition_topic() {
        if let Some(n) = topics.get(rt) {
            out.push(format!(
                "{rt}: a reset record in each of its {n} partitions; the group resumes after it"
            ));
        }
    }
    for ct in plan.changelog_topics() {
        if topics.contains_key(&ct) {
            out.push(format!(
                "{ct}: open windows of the reset partitions deleted; a marker at the new offset"
            ));
        }
    }
    if topics.contains_key(&plan.checkpoint_topic) {
        out.push(format!(
            "{}: the checkpoint of each reset partition set to its new offset",
            plan.checkpoint_topic
        ));
    }
    out
}

/// Resets the state of `plan` for `resets` (see the module doc); `topics`
/// are the cluster's topics with their partition counts. Blocks on reads;
/// every write is acknowledged (acks=all) before it returns.
///
/// # Errors
/// [`StateResetError`] on the first read or write that fails; running it
/// again is safe.
pub async fn reset_state(
    base: &ClientConfig,
    plan: &Plan,
    resets: &[PartitionReset],
    topics: &BTreeMap<String, i32>,
    timeout: Duration,
) -> Result<StateReport, StateResetError> {
    let mut cfg = base.clone();
    cfg.set("acks", "all").set("enable.idempotence", "true");
    let producer: FutureProducer = cfg.create().map_err(StateResetError::Client)?;
    let mut report = StateReport::default();
    // Where every reset input partition resumes, by `topic/partition`.
    let mut resume: BTreeMap<String, i64> = resets
        .iter()
        .map(|r| (checkpoint::key(&r.tp.0, r.tp.1), r.new))
        .collect();
    if let Some(rt) = plan.repartition_topic() {
        for p in 0..topics.get(rt).copied().unwrap_or(0) {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: RESET_HEADER,
                value: Some("1"),
            });
            let rec = FutureRecord::<(), [u8]>::to(rt)
                .partition(p)
                .payload(b"{\"reset\":true}")
                .headers(headers);
            let offset = producer
                .send(rec, timeout)
                .await
                .map_err(|(source, _)| StateResetError::Write {
                    topic: rt.to_owned(),
                    source,
                })?
                .offset
                + 1;
            report.repartition.push(((rt.to_owned(), p), offset));
            resume.insert(checkpoint::key(rt, p), offset);
        }
    }
    // Read every changelog first: a partition's writes are numbered across
    // all its window stages.
    let mut logs: Vec<(String, Vec<LogRecord>)> = Vec::new();
    for ct in plan.changelog_topics() {
        if topics.contains_key(&ct) {
            let b = base.clone();
            let t = ct.clone();
            let records = tokio::task::spawn_blocking(move || {
                changelog::read_topic_to_end(&b, &t, false, timeout)
            })
            .await
            .expect("changelog read does not panic")?;
            logs.push((ct, records));
        }
    }
    let mut max_seq: HashMap<String, u64> = HashMap::new();
    for (_, records) in &logs {
        for r in records {
            let source = parse_entry_key(&r.key)
                .map(|(s, ..)| s)
                .or_else(|| parse_marker_key(&r.key));
            if let Some(s) = source {
                let m = max_seq.entry(s).or_default();
                *m = (*m).max(r.seq);
            }
        }
    }
    let seq_of = |source: &str| max_seq.get(source).copied().unwrap_or(0);
    let fresh = |source: &str, offset: i64| Checkpoint {
        offset,
        watermark: i64::MIN,
        seq: seq_of(source),
        upstream: BTreeMap::new(),
    };
    let mut sends = Vec::new();
    for (ct, records) in &logs {
        // The newest record of each window: live unless a tombstone.
        let mut latest: HashMap<&[u8], (i32, &str, bool)> = HashMap::new();
        let parsed: Vec<(&LogRecord, String)> = records
            .iter()
            .filter_map(|r| parse_entry_key(&r.key).map(|(s, ..)| (r, s)))
            .collect();
        for (r, s) in &parsed {
            latest.insert(&r.key, (r.partition, s.as_str(), r.payload.is_some()));
        }
        for (key, (partition, source, live)) in latest {
            if live && resume.contains_key(source) {
                sends.push((ct.clone(), partition, key.to_vec(), None, seq_of(source)));
                report.tombstones += 1;
            }
        }
        // A marker for every reset input partition of this stage's segment.
        let stage: usize = ct
            .strip_prefix(&format!("weir.{}.", plan.name))
            .and_then(|s| s.strip_suffix(".changelog"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let downstream = plan.repartition.as_ref().is_some_and(|r| stage > r.after);
        let in_segment = |source: &str| {
            plan.repartition_topic()
                .is_some_and(|rt| source.starts_with(&format!("{rt}/")))
                == downstream
        };
        let sources: BTreeMap<&str, i32> = resume
            .keys()
            .filter(|s| in_segment(s))
            .filter_map(|s| Some((s.as_str(), s.rsplit_once('/')?.1.parse().ok()?)))
            .collect();
        for (source, partition) in sources {
            let cp = serde_json::to_vec(&fresh(source, resume[source])).unwrap_or_default();
            sends.push((
                ct.clone(),
                partition,
                marker_key(source).into_bytes(),
                Some(cp),
                seq_of(source),
            ));
            report.markers += 1;
        }
    }
    if topics.contains_key(&plan.checkpoint_topic) {
        for (source, offset) in &resume {
            let cp = serde_json::to_vec(&fresh(source, *offset)).unwrap_or_default();
            sends.push((
                plan.checkpoint_topic.clone(),
                -1,
                source.clone().into_bytes(),
                Some(cp),
                0,
            ));
            report.checkpoints += 1;
        }
    }
    let futures = sends.iter().map(|(topic, partition, key, payload, seq)| {
        let mut rec = FutureRecord::<[u8], [u8]>::to(topic).key(key.as_slice());
        if *partition >= 0 {
            rec = rec.partition(*partition).headers(changelog::headers(*seq));
        }
        if let Some(p) = payload {
            rec = rec.payload(p.as_slice());
        }
        producer.send(rec, timeout)
    });
    for (r, (topic, ..)) in futures::future::join_all(futures)
        .await
        .into_iter()
        .zip(&sends)
    {
        r.map_err(|(source, _)| StateResetError::Write {
            topic: topic.clone(),
            source,
        })?;
    }
    Ok(report)
}
