//! The commit sequence (DESIGN.md §3, Delivery and State).
//!
//! **Commit**, every `commit_interval`, at revoke and at shutdown:
//! 1. send the repartition markers of watermarks that moved, then flush the
//!    output producer: everything caused by the records processed so far
//!    is acknowledged;
//! 2. per partition, write the window entries that changed since the last
//!    commit to the stage's changelog (partition = input partition), each
//!    with the header `weir.seq` = this write's number, then a marker;
//! 3. when those are acknowledged, write the checkpoint
//!    `{offset, watermark, seq}`, which confirms the write;
//! 4. when that is acknowledged, commit the offsets.
//!
//! A failed step stops the sequence; the records already queued are
//! delivered later (librdkafka retries without end) and the next commit's
//! checkpoint confirms them too.
//!
//!
//! Restore, its counterpart, is in [`super::rebalance`]; the record shapes
//! are the state layer's ([`crate::state`]).

use super::shared::{lock, PartitionTask, Shared};
use crate::kafka::changelog;
use crate::kafka::checkpoint::{self, Checkpoint};
use crate::kafka::sink::PipelineFailure;
use crate::state::commit::{self, Encoder, Position};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

type PartKey = (Arc<str>, i32);

/// The message of a failed transaction. A fenced producer (KIP-98: a newer
/// producer with the same `transactional.id` initialised transactions, or
/// the group generation moved on, KIP-447) is named as such, with the id,
/// because it means two running instances share one `instance_id`, or this
/// one is a zombie whose partitions went to another member.
fn transaction_failure(e: &rdkafka::error::KafkaError, transactional_id: &str) -> String {
    use rdkafka::types::RDKafkaErrorCode as C;
    let fenced = matches!(
        e.rdkafka_error_code(),
        Some(C::Fenced | C::ProducerFenced | C::InvalidProducerEpoch | C::FencedInstanceId)
    );
    if fenced {
        format!(
            "transaction failed: this instance was fenced: another producer with transactional id \
             `{transactional_id}` took over (two running instances share one instance_id, or this \
             one lost its partitions); its open transaction is aborted and it stops: {e}"
        )
    } else {
        format!("transaction failed: {e}")
    }
}

impl Shared {
    /// Runs the commit sequence for every assigned partition, or only those
    /// of `only`. Returns whether the offsets were committed.
    pub(super) fn commit_state<C: Consumer<X>, X: ConsumerContext>(
        &self,
        consumer: &C,
        only: Option<&[PartKey]>,
        mode: CommitMode,
    ) -> bool {
        // The watermark each partition reached goes to the repartition
        // topic with the offsets that reached it (in this transaction, or
        // acknowledged before the offsets commit): markers are otherwise
        // sent every 100 ms, and a successor resuming at the end of the
        // input would never send the one a crash or a revoke lost, so the
        // windows downstream would never close.
        let mut markers = Vec::new();
        super::route::send_markers(self, &mut markers, false);
        super::route::send_all(self, &mut markers);
        let until = self.commit_deadline();
        if self.eos {
            return self.commit_transaction(consumer, until);
        }
        self.tick_clock();
        if let Err(e) = crate::kafka::client::flush(&self.producer, left(until)) {
            tracing::warn!(pipeline = %self.plan.name, error = %e, "outputs not acknowledged yet; commit deferred");
            return false;
        }
        if self.failure.get().is_some() {
            return false;
        }
        let cps = self.write_changes(only);
        if cps.is_empty() {
            return true;
        }
        if !self.flush_state("changelog", until) {
            return false;
        }
        self.send_checkpoints(&cps);
        if !self.flush_state("checkpoint", until) {
            return false;
        }
        let mut tpl = TopicPartitionList::new();
        for (k, cp) in &cps {
            let _ = tpl.add_partition_offset(&k.0, k.1, Offset::Offset(cp.offset));
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                self.confirmed(cps);
                true
            }
            Err(e) => {
                tracing::warn!(pipeline = %self.plan.name, error = %e, "offset commit failed");
                false
            }
        }
    }

    /// `exactly_once`: the changelog entries, markers and checkpoints of
    /// every partition and the consumer offsets join the open transaction
    /// with the outputs, and it commits (KIP-98, KIP-447); then the next
    /// transaction begins. A failed transaction stops the pipeline: its
    /// state in memory is ahead of what committed, and a restart restores
    /// the committed state.
    fn commit_transaction<C: Consumer<X>, X: ConsumerContext>(
        &self,
        consumer: &C,
        until: Instant,
    ) -> bool {
        self.tick_clock();
        if self.failure.get().is_some() {
            return false;
        }
        let cps = self.write_changes(None);
        let mut tpl = TopicPartitionList::new();
        for (k, t) in lock(&self.partitions).iter() {
            if t.next_offset >= 0 {
                let _ = tpl.add_partition_offset(k.0, k.1, Offset::Offset(t.commit_offset()));
            }
        }
        let result = (|| {
            if tpl.count() > 0 {
                let gm =
                    consumer
                        .group_metadata()
                        .ok_or(rdkafka::error::KafkaError::MetadataFetch(
                            rdkafka::types::RDKafkaErrorCode::InvalidGroupId,
                        ))?;
                self.producer
                    .send_offsets_to_transaction(&tpl, &gm, left(until))?;
            }
            self.producer.commit_transaction(left(until))?;
            self.producer.begin_transaction()
        })();
        match result {
            Ok(()) => {
                self.confirmed(cps);
                true
            }
            Err(e) => {
                let why = transaction_failure(&e, &self.transactional_id);
                tracing::error!(pipeline = %self.plan.name, error = %why, "transaction failed");
                crate::kafka::sink::fail(&self.failure, PipelineFailure::Transaction(why));
                false
            }
        }
    }

    /// Queues the checkpoint records of `cps`.
    fn send_checkpoints(&self, cps: &[(PartKey, Checkpoint)]) {
        for ((t, p), cp) in cps {
            let (key, payload) = commit::checkpoint_record(&checkpoint::key(t, *p), cp);
            self.send_state(
                &self.plan.checkpoint_topic,
                None,
                &key,
                Some(&payload),
                None,
            );
        }
    }

    /// The checkpoints and offsets of `cps` are committed.
    fn confirmed(&self, cps: Vec<(PartKey, Checkpoint)>) {
        let mut parts = lock(&self.partitions);
        for (k, cp) in cps {
            if let Some(t) = parts.get_mut(&k.0, k.1) {
                t.last_checkpoint = Some(cp);
            }
        }
        self.metrics
            .commits
            .with_label_values(&[&self.plan.name])
            .inc();
    }

    /// Step 2: queues every partition's changed entries and marker; returns
    /// the checkpoints to write once they are acknowledged.
    fn write_changes(&self, only: Option<&[PartKey]>) -> Vec<(PartKey, Checkpoint)> {
        let mut parts = lock(&self.partitions);
        let mut cps = Vec::new();
        // One encoder for every partition: its buffers are reused.
        let mut enc = Encoder::default();
        let (mut entries, mut bytes, mut written) = (0usize, 0usize, 0u64);
        let now = crate::kafka::sink::now_ms();
        for (k, t) in parts.iter_mut() {
            entries += t.proc.chain.open_windows();
            bytes += t.proc.chain.state_bytes();
            let wm = t.proc.chain.watermark();
            if wm > i64::MIN {
                let labels = [self.plan.name.as_str(), k.0, &k.1.to_string()];
                self.metrics.watermark_ms.with_label_values(&labels).set(wm);
                self.metrics
                    .watermark_lag
                    .with_label_values(&labels)
                    .set((now - wm) as f64 / 1000.0);
            }
            if only.is_some_and(|o| !o.iter().any(|(ot, op)| **ot == **k.0 && *op == k.1))
                || t.next_offset < 0
            {
                continue;
            }
            let at = Position {
                offset: t.commit_offset(),
                watermark: wm,
                upstream: &t.proc.upstream,
                changed: t.proc.chain.has_changes(),
            };
            if let Some(cp) = commit::next_checkpoint(t.last_checkpoint.as_ref(), &mut t.seq, at) {
                written += self.send_changes(&mut enc, k.1, t, &cp);
                cps.push(((Arc::clone(k.0), k.1), cp));
            }
        }
        let n = self.plan.name.as_str();
        self.metrics
            .windows_open
            .with_label_values(&[n])
            .set(entries as i64);
        self.metrics
            .state_entries
            .with_label_values(&[n])
            .set(entries as i64);
        self.metrics
            .state_bytes
            .with_label_values(&[n])
            .set(bytes as i64);
        self.metrics
            .changelog_records
            .with_label_values(&[n])
            .inc_by(written);
        cps
    }

    /// Queues one partition's changes, then its marker (the checkpoint
    /// `cp`) to the changelog of every window stage; returns the record
    /// count. Under `exactly_once` the marker is what a restore resumes
    /// from: the checkpoint topic, which every instance writes, would be
    /// held behind any open transaction of a crashed one.
    fn send_changes(
        &self,
        enc: &mut Encoder,
        partition: i32,
        t: &mut PartitionTask,
        cp: &Checkpoint,
    ) -> u64 {
        let headers = changelog::headers(t.seq);
        // The changelog of each window stage this chain runs, by stage index.
        let stages = t.proc.chain.window_stages();
        let topics: Vec<(usize, String)> = stages
            .iter()
            .map(|&stage| {
                let store = crate::state::store::StoreSpec::window(stage);
                (stage, store.changelog(&self.plan.group_id))
            })
            .collect();
        let topic_of = |stage: usize| {
            topics
                .iter()
                .find(|(s, _)| *s == stage)
                .map(|(_, t)| t.as_str())
                .expect("changes come from the chain's window stages")
        };
        let (source, chain) = (t.proc.source.as_str(), &mut t.proc.chain);
        enc.partition(source, &stages, cp, |f| chain.drain_changes(f), &mut |r| {
            self.send_state(
                topic_of(r.stage),
                Some(partition),
                r.key,
                r.value,
                Some(headers.clone()),
            );
        })
    }

    fn send_state(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: Option<&[u8]>,
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) {
        let mut rec = BaseRecord::to(topic).key(key);
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        if let Some(p) = payload {
            rec = rec.payload(p);
        }
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        let sent = if self.eos {
            // The state record joins the open transaction through the
            // output producer.
            let mut r = BaseRecord::with_opaque_to(topic, crate::kafka::sink::STATE_RECORD);
            (r.key, r.payload, r.partition, r.headers) =
                (rec.key, rec.payload, rec.partition, rec.headers);
            crate::kafka::client::send_waiting(&self.producer, r, || {})
        } else {
            crate::kafka::client::send_waiting(&self.state_producer, rec, || {})
        };
        if let Err(e) = sent {
            crate::kafka::sink::fail(
                &self.failure,
                PipelineFailure::Delivery {
                    topic: topic.to_owned(),
                    error: e.to_string(),
                },
            );
        }
    }

    /// When the commit that starts now must be done: `commit_timeout` from
    /// now, or the shutdown's deadline if that comes first.
    fn commit_deadline(&self) -> Instant {
        let own = Instant::now() + self.commit_timeout;
        self.shutdown_deadline.get().map_or(own, |d| own.min(*d))
    }

    /// Waits until every queued state record is acknowledged, or `until`.
    fn flush_state(&self, what: &str, until: Instant) -> bool {
        match crate::kafka::client::flush(&self.state_producer, left(until)) {
            Ok(()) if self.failure.get().is_none() => true,
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(pipeline = %self.plan.name, error = %e, "{what} not acknowledged yet; commit deferred");
                false
            }
        }
    }
}

/// Time left until `until` (zero once passed: a blocking call then only
/// polls once).
fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}
