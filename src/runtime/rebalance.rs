//! Rebalance hand-off (DESIGN.md §3 State, §4): on assignment, each
//! partition's state is restored (the state layer's [`crate::state::restore`]
//! over the changelogs read back) and its fetch position set; on revocation,
//! the commit sequence runs for what is revoked and the partitions are
//! forgotten. The rebalance callback only hands assigned partitions over
//! (paused); the processing loop restores them on the pipeline's own
//! thread, so a long restore holds up that pipeline only, never the async
//! workers that serve `/healthz` or the other pipelines.
//!
//! **Restore**, on assignment: read the checkpoints, then each assigned
//! partition's changelog partitions from the beginning, every record
//! straight into the state layer's [`Restorer`] (memory bounded by the
//! windows, not the records); entries of writes up to the checkpoint's
//! `seq` rebuild the windows (the newest entry of a window wins, a
//! tombstone removes it), entries of later writes were never confirmed and
//! are overwritten at the next commit. Processing resumes at the
//! checkpoint's offset with its watermark.

use super::processor::PartitionProcessor;
use super::shared::{lock, PartitionTask, Shared};
use crate::kafka::changelog;
use crate::kafka::checkpoint;
use crate::kafka::sink::{fail, PipelineFailure};
use crate::metrics::Metrics;
use crate::state::restore::{Outcome, Restored, Restorer};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, RebalanceProtocol};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Weak;
use std::time::{Duration, Instant};

type PartKey = (Arc<str>, i32);

/// What a restore read and how long its parts took.
#[derive(Debug, Clone, Copy, Default)]
struct RestoreStats {
    /// Changelog records read (every pass).
    records: u64,
    /// Their key and payload bytes.
    bytes: u64,
    /// Reading them, each into the restorer as it came, s.
    read_seconds: f64,
    /// Deciding and decoding the winners, s.
    decode_seconds: f64,
}

impl Shared {
    /// The rebalance callback's half of an assignment: the partitions are
    /// assigned paused and handed to the processing loop, which restores
    /// them ([`Shared::restore_pending`]); nothing blocks here.
    fn hand_over(
        &self,
        base: &BaseConsumer<WeirContext>,
        tpl: &TopicPartitionList,
        cooperative: bool,
    ) {
        {
            let mut pending = lock(&self.pending);
            for e in tpl.elements() {
                pending.push((e.topic().to_owned(), e.partition()));
            }
        }
        self.has_pending
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let r = if cooperative {
            base.incremental_assign(tpl)
        } else {
            base.assign(tpl)
        };
        if let Err(e) = r {
            tracing::error!(pipeline = %self.plan.name, error = %e, "assign failed");
        }
        // No record of them is fetched until their state is restored and
        // their position set.
        if let Err(e) = base.pause(tpl) {
            tracing::error!(pipeline = %self.plan.name, error = %e, "pause of assigned partitions failed");
        }
    }

    /// The processing loop's half of an assignment (on the pipeline's own
    /// thread, never inside the rebalance callback or on an async worker):
    /// builds each handed-over partition's processor, restores its state
    /// from the checkpoint and changelogs, moves it to where it resumes
    /// (the checkpoint, else the committed offset, else `start_from`) and
    /// resumes it. Ready once nothing is pending.
    pub(super) fn restore_pending<C: Consumer<X>, X: ConsumerContext>(&self, consumer: &C) {
        if !self
            .has_pending
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &pending {
            tpl.add_partition(t, *p);
        }
        self.restore(consumer, &tpl);
        let _ = consumer.resume(&tpl);
        self.set_ready(true);
    }

    /// Restores the partitions of `tpl` and seeks each to where it resumes.
    fn restore<C: Consumer<X>, X: ConsumerContext>(&self, consumer: &C, tpl: &TopicPartitionList) {
        let started = Instant::now();
        // Under exactly_once, the offsets the group coordinator holds are
        // those of committed transactions only: they pick the marker a
        // restore resumes from, also on a broker that hands out records of
        // aborted transactions (Tansu, the mock cluster).
        let committed: HashMap<String, i64> = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .map(|c| {
                c.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((format!("{}/{}", e.topic(), e.partition()), o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Under exactly_once the changelog markers and the committed offsets
        // say where each partition stands; the checkpoint topic is not written.
        let cps = if self.eos {
            Ok(HashMap::new())
        } else {
            checkpoint::read_all(
                &self.reader_config,
                &self.plan.checkpoint_topic,
                false,
                Duration::from_secs(30),
            )
        };
        let cps = match cps {
            Ok(c) => c,
            Err(e) => {
                // Without the checkpoints, state cannot be restored safely.
                fail(&self.failure, PipelineFailure::Restore(e.to_string()));
                HashMap::new()
            }
        };
        let mut tasks = Vec::new();
        let mut assigned = BTreeMap::new();
        let mut reads = Vec::new();
        for el in tpl.elements() {
            let (topic, partition) = (el.topic(), el.partition());
            let mut proc = PartitionProcessor::new(&self.plan, topic, partition);
            if let Some(cache) = &self.tables {
                proc.prime_tables(&lock(cache));
            }
            let source = proc.source.clone();
            assigned.insert(source.clone(), cps.get(&source).cloned());
            for s in proc.chain.window_stages() {
                let store = crate::state::store::StoreSpec::window(s);
                reads.push((store.changelog(&self.plan.group_id), partition));
            }
            tasks.push((Arc::<str>::from(topic), partition, proc));
        }
        reads.sort();
        reads.dedup();
        let (mut restored, stats) = self.read_state(assigned, &reads, &committed);
        let mut windows = 0;
        let mut ready = Vec::new();
        for (topic, partition, mut proc) in tasks {
            let source = proc.source.clone();
            let mut r = restored.remove(&source).unwrap_or_default();
            for (stage, why) in &r.unreadable {
                tracing::error!(pipeline = %self.plan.name, %source, stage, error = %why, "unreadable changelog entry skipped");
            }
            windows += crate::state::restore::apply(
                &mut proc.chain,
                &mut r,
                self.plan.max_out_of_orderness,
            );
            let cp = r.checkpoint;
            if let Some(cp) = &cp {
                proc.upstream = cp.upstream.clone();
            }
            tracing::info!(pipeline = %self.plan.name, %topic, partition, checkpoint = ?cp, "partition assigned");
            ready.push((
                (Arc::clone(&topic), partition),
                PartitionTask {
                    next_offset: cp.as_ref().map_or(-1, |c| c.offset),
                    seq: cp.as_ref().map_or(0, |c| c.seq),
                    last_record: (crate::kafka::sink::now_ms(), proc.chain.watermark()),
                    proc,
                    last_checkpoint: cp,
                    marker_sent: i64::MIN,
                    fail_at: None,
                },
            ));
        }
        if !reads.is_empty() {
            let secs = started.elapsed().as_secs_f64();
            self.metrics
                .restore_seconds
                .with_label_values(&[&self.plan.name])
                .set(secs);
            // Of `seconds`: `read_seconds` reading the changelog (each record
            // into the restorer as it comes), `decode_seconds` deciding and
            // decoding the winners; the rest reads the checkpoints and puts
            // the windows in place.
            tracing::info!(pipeline = %self.plan.name, records = stats.records, bytes = stats.bytes, windows, seconds = secs, read_seconds = stats.read_seconds, decode_seconds = stats.decode_seconds, "state restored from the changelog");
        }
        let mut parts = lock(&self.partitions);
        for (k, task) in ready {
            let source = &task.proc.source;
            let at = if task.next_offset >= 0 {
                Offset::Offset(task.next_offset)
            } else if let Some(o) = committed.get(source) {
                Offset::Offset(*o)
            } else {
                match self.plan.start_from {
                    crate::spec::StartFrom::Earliest => Offset::Beginning,
                    crate::spec::StartFrom::Latest => Offset::End,
                }
            };
            if let Err(e) = consumer.seek(&k.0, k.1, at, Duration::from_secs(10)) {
                tracing::warn!(pipeline = %self.plan.name, topic = %k.0, partition = k.1, error = %e, "seek failed");
            }
            parts.insert(k, task);
        }
    }

    /// The state of the partitions of `assigned` from the changelog
    /// partitions `reads`: each record read goes straight into the state
    /// layer's [`Restorer`] (which keeps the newest of each key only), read
    /// a second time in the rare case it asks ([`Outcome::ReadAgain`]).
    /// A read that fails stops the pipeline ([`PipelineFailure::Restore`])
    /// and restores no window.
    fn read_state(
        &self,
        assigned: BTreeMap<String, Option<crate::state::Checkpoint>>,
        reads: &[(String, i32)],
        committed: &HashMap<String, i64>,
    ) -> (BTreeMap<String, Restored>, RestoreStats) {
        let committed = self.eos.then_some(committed);
        let mut restorer = Restorer::new(assigned.clone(), committed);
        let mut total = RestoreStats::default();
        loop {
            if !reads.is_empty() {
                let reading = Instant::now();
                let read = changelog::read_partitions(
                    &self.reader_config,
                    reads,
                    self.eos,
                    Duration::from_secs(120),
                    &mut |r| restorer.push(r),
                );
                match read {
                    Ok(s) => {
                        total.records += s.records;
                        total.bytes += s.bytes;
                        total.read_seconds += reading.elapsed().as_secs_f64();
                    }
                    Err(e) => {
                        fail(&self.failure, PipelineFailure::Restore(e.to_string()));
                        // The checkpoints without any window: the pipeline
                        // stops before it processes a record.
                        restorer = Restorer::new(assigned, committed);
                        return match restorer.finish() {
                            Outcome::Restored(out) => (out, total),
                            Outcome::ReadAgain(_) => (BTreeMap::new(), total),
                        };
                    }
                }
            }
            let decoding = Instant::now();
            match restorer.finish() {
                Outcome::Restored(out) => {
                    total.decode_seconds = decoding.elapsed().as_secs_f64();
                    return (out, total);
                }
                Outcome::ReadAgain(next) => {
                    tracing::info!(pipeline = %self.plan.name, "changelog markers fell back: reading the changelog again with the checkpoints known");
                    restorer = next;
                }
            }
        }
    }

    /// Revocation: commit the state of the revoked partitions and forget
    /// them. Open windows are not emitted: the next owner restores them.
    pub(super) fn on_revoke<C: Consumer<X>, X: ConsumerContext>(
        &self,
        consumer: &C,
        tpl: &TopicPartitionList,
    ) {
        // Handed over but not restored yet: nothing of theirs was processed.
        lock(&self.pending).retain(|(t, p)| {
            !tpl.elements()
                .iter()
                .any(|e| e.topic() == t && e.partition() == *p)
        });
        let revoked: Vec<PartKey> = {
            let parts = lock(&self.partitions);
            tpl.elements()
                .iter()
                .filter(|e| parts.get(e.topic(), e.partition()).is_some())
                .filter_map(|e| Some((parts.topic(e.topic())?, e.partition())))
                .collect()
        };
        // A transaction spans every partition: it commits whole.
        let only = (!self.eos).then_some(revoked.as_slice());
        self.commit_state(consumer, only, CommitMode::Sync);
        let mut parts = lock(&self.partitions);
        for k in &revoked {
            parts.remove(&k.0, k.1);
            // Per-partition series belong to the partition's owner: drop
            // them here so that the new owner's are the only ones.
            let labels = [self.plan.name.as_str(), &*k.0, &k.1.to_string()];
            let _ = self.metrics.consumer_lag.remove_label_values(&labels);
            let _ = self.metrics.watermark_ms.remove_label_values(&labels);
            let _ = self.metrics.watermark_lag.remove_label_values(&labels);
            tracing::info!(pipeline = %self.plan.name, topic = %k.0, partition = k.1, "partition revoked");
        }
    }
}

/// Consumer context of a pipeline.
pub struct WeirContext {
    /// The pipeline's shared state (weak: the pipeline owns it).
    pub shared: Weak<Shared>,
    /// Metrics.
    pub metrics: Metrics,
    /// Pipeline name.
    pub pipeline: String,
}

impl ClientContext for WeirContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(s) = self.shared.upgrade() {
            if matches!(
                error.rdkafka_error_code(),
                Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown)
            ) {
                s.brokers_down();
            }
        }
        tracing::warn!(pipeline = %self.pipeline, %error, reason, "consumer error");
    }

    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (id, p) in &t.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.pipeline, topic, &id.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WeirContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                shared.hand_over(base, tpl, cooperative);
                self.metrics
                    .rebalances
                    .with_label_values(&[&self.pipeline, "assign"])
                    .inc();
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                shared.on_revoke(base, tpl);
                let r = if cooperative {
                    base.incremental_unassign(tpl)
                } else {
                    base.unassign()
                };
                if let Err(e) = r {
                    tracing::error!(pipeline = %self.pipeline, error = %e, "unassign failed");
                }
                self.metrics
                    .rebalances
                    .with_label_values(&[&self.pipeline, "revoke"])
                    .inc();
            }
            other => {
                tracing::error!(pipeline = %self.pipeline, error = ?other, "rebalance error");
                shared.on_revoke(base, tpl);
                let _ = base.unassign();
            }
        }
    }
}
