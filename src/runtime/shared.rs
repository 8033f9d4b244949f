//! What a pipeline's processing loop and its consumer callbacks share:
//! the plan, the assigned partitions, the producers, health, the first
//! failure.

use super::partitions::Partitions;
use super::processor::PartitionProcessor;
use crate::http::Health;
use crate::kafka::checkpoint::Checkpoint;
use crate::kafka::sink::{AckContext, Failure, PipelineFailure, StateContext};
use crate::metrics::{Metrics, PipelineCounters};
use crate::plan::Plan;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One assigned input partition: its per-record path and where it stands.
pub(super) struct PartitionTask {
    /// Stages, state and what crossed the repartition topic.
    pub(super) proc: PartitionProcessor,
    /// Next input offset to process (-1 before the first record when no
    /// checkpoint says where to start).
    pub(super) next_offset: i64,
    /// Number of the last changelog write of this partition's state.
    pub(super) seq: u64,
    pub(super) last_checkpoint: Option<Checkpoint>,
    /// When the last record arrived (wall clock ms, as of the last producer
    /// poll: no clock read per record), and the watermark then; for
    /// `idle_timeout`.
    pub(super) last_record: (i64, i64),
    /// Upstream: the watermark last sent as a marker.
    pub(super) marker_sent: i64,
    /// `errors.policy: fail` stopped on a record released by a table (T4):
    /// its offset, past which nothing is committed.
    pub(super) fail_at: Option<i64>,
}

impl PartitionTask {
    /// The offset to commit and checkpoint: the next one to process, but
    /// no further than the oldest record held for a table (T4: held
    /// records are read again after a restart) or one that failed.
    pub(super) fn commit_offset(&self) -> i64 {
        let mut o = self.next_offset;
        if let Some(h) = self.proc.held_from() {
            o = o.min(h);
        }
        if let Some(f) = self.fail_at {
            o = o.min(f);
        }
        o
    }
}

/// State shared between the processing task and the consumer callbacks.
pub struct Shared {
    pub(super) plan: Arc<Plan>,
    pub(super) metrics: Metrics,
    pub(super) health: Arc<Health>,
    pub(super) partitions: Mutex<Partitions<PartitionTask>>,
    /// Outputs; polled by the processing task (delivery callbacks run there).
    pub(super) producer: BaseProducer<AckContext>,
    /// Changelog and checkpoint records.
    pub(super) state_producer: BaseProducer<StateContext>,
    pub(super) clock: Arc<std::sync::atomic::AtomicI64>,
    pub(super) reader_config: ClientConfig,
    /// Partitions assigned by the rebalance callback, paused, waiting for
    /// the processing loop to restore them.
    pub(super) pending: Mutex<Vec<(String, i32)>>,
    /// Whether `pending` may hold any (checked once per batch of records).
    pub(super) has_pending: std::sync::atomic::AtomicBool,
    /// Bound on one commit (flushes, transaction commit).
    pub(super) commit_timeout: Duration,
    /// Set when the shutdown begins: `shutdown_timeout` from then bounds
    /// everything that is left (the last commit, leaving the group).
    pub(super) shutdown_deadline: std::sync::OnceLock<std::time::Instant>,
    pub(super) counters: PipelineCounters,
    /// The first delivery or state failure; the pipeline stops on it.
    pub(super) failure: Failure,
    /// Set when librdkafka reports every broker down; cleared by the next
    /// fetched record or successful commit.
    pub(super) brokers_down: std::sync::atomic::AtomicBool,
    /// Every source partition (`topic/partition`): the upstream partitions
    /// whose markers a repartition partition waits for.
    pub(super) upstream_sources: Vec<String>,
    /// Partitions of the repartition topic.
    pub(super) repartition_partitions: i32,
    /// `delivery: exactly_once`: `producer` is transactional and carries
    /// the state records too.
    pub(super) eos: bool,
    /// `<group id>.<instance>`, the producer's `transactional.id` under
    /// `exactly_once` (for messages).
    pub(super) transactional_id: String,
    /// Every table as read so far, when the pipeline joins tables: a
    /// partition assigned later starts from it.
    pub(super) tables: Option<Mutex<super::joins::TableCache>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn set_ready(&self, ready: bool) {
        self.health.set(&self.plan.name, ready);
    }

    pub(super) fn tick_clock(&self) {
        self.clock.store(
            crate::kafka::sink::now_ms(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Serves every delivery report that is due, without waiting. One
    /// `poll(0)` serves a single event (one batch of reports), so poll until
    /// a poll acknowledges nothing more.
    pub(super) fn poll_producer(&self) {
        self.tick_clock();
        loop {
            let before = self.producer.in_flight_count();
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() == before {
                break;
            }
        }
    }

    /// Every broker is unreachable: not ready until one answers again.
    pub(super) fn brokers_down(&self) {
        self.brokers_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.set_ready(false);
    }

    /// A broker answered (record fetched, commit done): ready again if it was down.
    pub(super) fn brokers_up(&self) {
        if self
            .brokers_down
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.set_ready(true);
        }
    }

    /// The first failure that must stop the pipeline.
    pub(super) fn failure(&self) -> Option<PipelineFailure> {
        self.failure.get().cloned()
    }
}
