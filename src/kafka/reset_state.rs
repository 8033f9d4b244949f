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

use super::changelog;
use super::checkpoint::{self, Checkpoint};
use super::offsets::TopicPartition;
use super::reset::PartitionReset;
use crate::plan::Plan;
use crate::state::codec::{encode_checkpoint, marker_key, parse_entry_key, parse_marker_key};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Header of the reset record in a repartition topic.
pub const RESET_HEADER: &str = "weir.reset";

/// One state record to write: to a changelog (partition and write number
/// given) or to the checkpoint topic (partitioned by key, no number).
struct Write {
    topic: String,
    partition: Option<i32>,
    key: Vec<u8>,
    /// `None`: a tombstone.
    payload: Option<Vec<u8>>,
    seq: Option<u64>,
}

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
    // all its window stages. Per changelog, the newest record of each
    // window (live unless a tombstone) with its partition and source.
    type Latest = HashMap<Vec<u8>, (i32, String, bool)>;
    let mut logs: Vec<(usize, String, Latest)> = Vec::new();
    let mut max_seq: HashMap<String, u64> = HashMap::new();
    for (stage, ct) in plan.changelogs() {
        if !topics.contains_key(&ct) {
            continue;
        }
        let (b, t) = (base.clone(), ct.clone());
        let records = tokio::task::spawn_blocking(move || {
            changelog::read_topic_to_end(&b, &t, false, timeout)
        })
        .await
        .expect("changelog read does not panic")?;
        let mut latest = Latest::new();
        for r in records {
            let (source, entry) = match parse_entry_key(&r.key) {
                Some(k) => (k.source, true),
                None => match parse_marker_key(&r.key) {
                    Some(s) => (s, false),
                    None => continue,
                },
            };
            let m = max_seq.entry(source.clone()).or_default();
            *m = (*m).max(r.seq);
            if entry {
                latest.insert(r.key, (r.partition, source, r.payload.is_some()));
            }
        }
        logs.push((stage, ct, latest));
    }
    let seq_of = |source: &str| max_seq.get(source).copied().unwrap_or(0);
    let fresh = |source: &str| {
        encode_checkpoint(&Checkpoint {
            offset: resume[source],
            watermark: i64::MIN,
            seq: seq_of(source),
            upstream: BTreeMap::new(),
        })
    };
    let mut writes: Vec<Write> = Vec::new();
    for (stage, ct, latest) in logs {
        for (key, (partition, source, live)) in latest {
            if live && resume.contains_key(&source) {
                writes.push(Write {
                    topic: ct.clone(),
                    partition: Some(partition),
                    key,
                    payload: None,
                    seq: Some(seq_of(&source)),
                });
                report.tombstones += 1;
            }
        }
        // A marker for every reset input partition of this stage's segment:
        // the repartition partitions after the repartition, else the sources.
        let segment_input = match &plan.repartition {
            Some(r) if stage > r.after => Some(r.topic.as_str()),
            _ => None,
        };
        for source in resume.keys() {
            let Some((topic, partition)) = source.rsplit_once('/') else {
                continue;
            };
            if (plan.repartition_topic() == Some(topic)) != segment_input.is_some() {
                continue;
            }
            writes.push(Write {
                topic: ct.clone(),
                partition: partition.parse().ok(),
                key: marker_key(source).into_bytes(),
                payload: Some(fresh(source)),
                seq: Some(seq_of(source)),
            });
            report.markers += 1;
        }
    }
    if topics.contains_key(&plan.checkpoint_topic) {
        for source in resume.keys() {
            writes.push(Write {
                topic: plan.checkpoint_topic.clone(),
                partition: None,
                key: source.clone().into_bytes(),
                payload: Some(fresh(source)),
                seq: None,
            });
            report.checkpoints += 1;
        }
    }
    let futures = writes.iter().map(|w| {
        let mut rec = FutureRecord::<[u8], [u8]>::to(&w.topic).key(w.key.as_slice());
        if let Some(p) = w.partition {
            rec = rec.partition(p);
        }
        if let Some(seq) = w.seq {
            rec = rec.headers(changelog::headers(seq));
        }
        if let Some(p) = &w.payload {
            rec = rec.payload(p.as_slice());
        }
        producer.send(rec, timeout)
    });
    for (r, w) in futures::future::join_all(futures)
        .await
        .into_iter()
        .zip(&writes)
    {
        r.map_err(|(source, _)| StateResetError::Write {
            topic: w.topic.clone(),
            source,
        })?;
    }
    Ok(report)
}
