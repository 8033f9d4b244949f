//! One pipeline as one consumer group member: consume in offset order per
//! partition, run the chain, produce outputs, and every `commit_interval`
//! run the commit sequence of [`super::state`] (DESIGN.md §3).
//!
//! One task processes every assigned partition of the pipeline, interleaved
//! as librdkafka delivers them (Kafka Streams' default of one stream thread);
//! librdkafka's own threads fetch and produce on the other cores.

use super::output::{Dest, Original, OutMsg, StepCounts};
use super::partitions::Partitions;
use super::processor::{PartitionProcessor, SourceMessage};
use super::rebalance::WeirContext;
use super::repartition::{self, Incoming};
use crate::http::Health;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::checkpoint::Checkpoint;
use crate::kafka::client;
use crate::kafka::sink::{AckContext, Failure, PipelineFailure, StateContext};
use crate::metrics::{Metrics, PipelineCounters};
use crate::operator::chain::Outcome;
use crate::operator::StageRef;
use crate::plan::Plan;
use crate::spec::daemon::KafkaConfig;
use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Broker connection.
    pub kafka: KafkaConfig,
    /// Checkpoint and commit period.
    pub commit_interval: Duration,
    /// Bound on draining at revoke and shutdown.
    pub shutdown_timeout: Duration,
    /// `weir dev`: end offsets of the input; when every partition reaches
    /// its end, flush all windows, commit and stop.
    pub finish_at: Option<HashMap<(String, i32), i64>>,
    /// Stable instance name; with `exactly_once` the transactional id is
    /// `<group id>.<instance>`.
    pub instance: String,
}

/// Why a pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A Kafka client could not be created or used.
    #[error("pipeline `{pipeline}`: {op}: {source}")]
    Kafka {
        /// Pipeline name.
        pipeline: String,
        /// The operation.
        op: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Topics could not be created.
    #[error("pipeline `{pipeline}`: {source}")]
    Admin {
        /// Pipeline name.
        pipeline: String,
        /// The admin error.
        source: crate::kafka::admin::AdminError,
    },
    /// `errors.policy: fail` met a bad record.
    #[error("pipeline `{pipeline}` stopped (errors.policy: fail): {message}")]
    RecordFailed {
        /// Pipeline name.
        pipeline: String,
        /// The record's coordinates and error.
        message: String,
    },
    /// A record could not be delivered, ever.
    #[error("pipeline `{pipeline}`: delivery failed: {failure}")]
    Delivery {
        /// Pipeline name.
        pipeline: String,
        /// What failed.
        failure: PipelineFailure,
    },
    /// The operating system refused the pipeline's thread.
    #[error("pipeline `{pipeline}`: cannot start its thread: {source}")]
    Thread {
        /// Pipeline name.
        pipeline: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Totals of one run (for `weir dev`'s summary line).
pub use crate::metrics::Totals as Summary;

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
}

/// State shared between the processing task and the consumer callbacks.
pub struct Shared {
    pub(super) plan: Arc<Plan>,
    pub(super) metrics: Metrics,
    health: Arc<Health>,
    pub(super) partitions: Mutex<Partitions<PartitionTask>>,
    /// Outputs; polled by the processing task (delivery callbacks run there).
    pub(super) producer: BaseProducer<AckContext>,
    /// Changelog and checkpoint records.
    pub(super) state_producer: BaseProducer<StateContext>,
    pub(super) clock: Arc<std::sync::atomic::AtomicI64>,
    pub(super) reader_config: ClientConfig,
    pub(super) shutdown_timeout: Duration,
    counters: PipelineCounters,
    /// The first delivery or state failure; the pipeline stops on it.
    pub(super) failure: Failure,
    /// Set when librdkafka reports every broker down; cleared by the next
    /// fetched record or successful commit.
    brokers_down: std::sync::atomic::AtomicBool,
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
    fn poll_producer(&self) {
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

/// Runs `plan` until `shutdown` turns true, or, with `finish_at`, until the
/// input is drained and windows are flushed.
///
/// # Errors
/// [`RuntimeError`] for client failures, `errors.policy: fail`, or a record
/// that can never be delivered.
pub async fn run_pipeline(
    plan: Arc<Plan>,
    opts: RunOptions,
    metrics: Metrics,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Summary, RuntimeError> {
    let name = plan.name.clone();
    let kerr = |op: &'static str| {
        let name = name.clone();
        move |source| RuntimeError::Kafka {
            pipeline: name,
            op,
            source,
        }
    };
    let counters = metrics.register_pipeline(&plan);
    health.set(&plan.name, false);

    let base = client::base(&opts.kafka);
    let sources: Vec<(String, i32)> = {
        let cfg = base.clone();
        let plan = Arc::clone(&plan);
        let (pipeline, stop) = (name.clone(), shutdown.clone());
        // Waits for the cluster as long as it takes (not ready meanwhile),
        // logging why it cannot be reached (wrong credentials, untrusted
        // certificate): the daemon keeps retrying instead of exiting.
        let all = tokio::task::spawn_blocking(move || {
            crate::kafka::admin::wait_topic_partitions(&cfg, &pipeline, || *stop.borrow())
        })
        .await
        .expect("metadata task does not panic")
        .map_err(|source| RuntimeError::Admin {
            pipeline: name.clone(),
            source,
        })?;
        let Some(all) = all else {
            // Shut down before the cluster answered.
            return Ok(counters.totals());
        };
        all.into_iter()
            .filter(|(t, _)| plan.is_source_topic(t))
            .collect()
    };
    let input_partitions = sources.iter().map(|(_, n)| *n).max().unwrap_or(1);
    let mut upstream_sources: Vec<String> = sources
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| format!("{t}/{p}")))
        .collect();
    upstream_sources.sort();
    ensure_topics(
        &base,
        &output_topics(&plan, input_partitions),
        Duration::from_secs(30),
    )
    .await
    .map_err(|source| RuntimeError::Admin {
        pipeline: name.clone(),
        source,
    })?;

    let clock = Arc::new(std::sync::atomic::AtomicI64::new(
        crate::kafka::sink::now_ms(),
    ));
    let failure: Failure = Arc::default();
    let eos = plan.delivery == crate::spec::Delivery::ExactlyOnce;
    let transactional_id = format!("{}.{}", plan.group_id, opts.instance);
    let mut producer_config = client::producer(&opts.kafka);
    if eos {
        client::transactional(&mut producer_config, &transactional_id);
    }
    let producer: BaseProducer<AckContext> = producer_config
        .create_with_context(AckContext {
            latency: metrics.latency(&plan.name),
            clock: Arc::clone(&clock),
            pipeline: name.clone(),
            failure: Arc::clone(&failure),
        })
        .map_err(kerr("create producer"))?;
    if eos {
        // Fences an earlier instance with the same transactional id and
        // aborts its open transaction.
        producer
            .init_transactions(Duration::from_secs(60))
            .map_err(kerr("init transactions"))?;
        producer
            .begin_transaction()
            .map_err(kerr("begin transaction"))?;
    }
    let state_producer: BaseProducer<StateContext> = client::producer(&opts.kafka)
        .create_with_context(StateContext {
            pipeline: name.clone(),
            failure: Arc::clone(&failure),
        })
        .map_err(kerr("create state producer"))?;
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        metrics: metrics.clone(),
        health: Arc::clone(&health),
        partitions: Mutex::new(Partitions::default()),
        producer,
        state_producer,
        clock,
        reader_config: base.clone(),
        shutdown_timeout: opts.shutdown_timeout,
        counters,
        failure,
        brokers_down: std::sync::atomic::AtomicBool::new(false),
        upstream_sources,
        repartition_partitions: input_partitions,
        eos,
        transactional_id,
    });
    let mut cfg = client::consumer(&opts.kafka, &plan.group_id, plan.start_from, &plan.consumer);
    cfg.set("statistics.interval.ms", "5000");
    if cfg.get("client.id").is_none_or(|c| c == "rdkafka") {
        // Names this instance in the group's member list (DescribeGroups,
        // `kafka-consumer-groups --describe --members`, the refusal of
        // `weir reset-offsets`): member ids start with the client id.
        cfg.set("client.id", format!("weir-{}", opts.instance));
    }
    if eos {
        cfg.set("isolation.level", "read_committed");
    }
    let consumer: StreamConsumer<WeirContext> = cfg
        .create_with_context(WeirContext {
            shared: Arc::downgrade(&shared),
            metrics: metrics.clone(),
            pipeline: name.clone(),
        })
        .map_err(kerr("create consumer"))?;
    let mut topics: Vec<&str> = match &plan.pattern {
        Some(p) => vec![p.as_str()],
        None => plan.topics.iter().map(String::as_str).collect(),
    };
    topics.extend(plan.repartition_topic());
    consumer.subscribe(&topics).map_err(kerr("subscribe"))?;
    tracing::info!(pipeline = %name, group = %plan.group_id, "pipeline started");

    let mut tick = tokio::time::interval(opts.commit_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Serves acknowledgements while no record arrives.
    let mut ack_tick = tokio::time::interval(Duration::from_millis(5));
    ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut since_poll = 0u32;
    let mut idle_check = Instant::now();
    let mut ends_sent = false;
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            _ = ack_tick.tick() => {
                shared.poll_producer();
                if idle_check.elapsed() >= Duration::from_millis(100) {
                    idle_check = Instant::now();
                    if let Err(e) = advance_idle(&shared, &mut out) {
                        break Err(e);
                    }
                    send_markers(&shared, &mut out, false);
                    send_all(&shared, &mut out);
                }
            }
            _ = tick.tick() => {
                shared.poll_producer();
                if let Some(m) = shared.failure() {
                    break Err(RuntimeError::Delivery { pipeline: name.clone(), failure: m });
                }
                shared.commit_state(&consumer, None, CommitMode::Async);
                if finished(&shared, &opts, &mut ends_sent) {
                    break Ok(());
                }
            }
            msg = consumer.recv() => {
                // Drain what librdkafka already holds before going back to
                // `select!`: one pass over the timers per batch, not per record.
                let mut next = Some(msg);
                let mut stop = None;
                let mut batch = 0;
                while let Some(msg) = next.take() {
                    match msg {
                        Ok(m) => {
                            shared.brokers_up();
                            if let Err(e) = process(&shared, &m, &mut scratch, &mut out) {
                                stop = Some(Err(e));
                                break;
                            }
                            send_all(&shared, &mut out);
                            since_poll += 1;
                            if since_poll >= 64 {
                                since_poll = 0;
                                shared.poll_producer();
                            }
                            if finished(&shared, &opts, &mut ends_sent) {
                                stop = Some(Ok(()));
                                break;
                            }
                        }
                        Err(e) => tracing::warn!(pipeline = %name, error = %e, "consume error"),
                    }
                    batch += 1;
                    if batch < 512 {
                        next = consumer.recv().now_or_never();
                    }
                }
                if let Some(r) = stop {
                    break r;
                }
            }
        }
    };
    let result = match result {
        Ok(()) if opts.finish_at.is_some() => flush_windows(&shared, &mut out).map(|()| {
            send_all(&shared, &mut out);
        }),
        r => r,
    };
    // Drain, write state, commit; dropping the consumer then leaves the group.
    shared.commit_state(&consumer, None, CommitMode::Sync);
    if let Some(m) = shared.failure() {
        return Err(RuntimeError::Delivery {
            pipeline: name,
            failure: m,
        });
    }
    health.set(&plan.name, false);
    drop(consumer);
    tracing::info!(pipeline = %name, "pipeline stopped");
    result.map(|()| shared.counters.totals())
}

/// Every topic the pipeline writes: sinks and DLQ (1 partition and the
/// broker's defaults when weir creates them), the compacted checkpoint
/// topic, the compacted changelogs and the repartition topic (no time
/// retention) with `input_partitions` partitions.
fn output_topics(plan: &Plan, input_partitions: i32) -> Vec<TopicSpec> {
    let compact = || {
        vec![
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            // An entry of an unconfirmed write must not displace the
            // confirmed one before the next owner overwrites it.
            ("min.compaction.lag.ms".to_owned(), "3600000".to_owned()),
        ]
    };
    let mut v: Vec<TopicSpec> = plan
        .output_topics()
        .into_iter()
        .filter(|t| *t != plan.checkpoint_topic)
        .map(|name| TopicSpec {
            name,
            partitions: 1,
            configs: vec![],
        })
        .collect();
    v.push(TopicSpec {
        name: plan.checkpoint_topic.clone(),
        partitions: 1,
        configs: compact(),
    });
    v.extend(plan.changelog_topics().into_iter().map(|name| TopicSpec {
        name,
        partitions: input_partitions,
        configs: compact(),
    }));
    v.extend(plan.repartition_topic().map(|name| TopicSpec {
        name: name.to_owned(),
        partitions: input_partitions,
        // Its records carry event time as their Kafka timestamp: with the
        // broker's time retention (7 days by default), a replay of older
        // history would be deleted before the downstream side read it (as
        // Kafka Streams, which creates repartition topics with
        // `retention.ms=-1`).
        configs: vec![("retention.ms".to_owned(), "-1".to_owned())],
    }));
    v
}

/// `weir dev`: whether every source partition reached its end offset and,
/// with a repartition, every repartition partition has seen the end marker
/// of every source partition (sent once, when the sources are done; the
/// repartition topic's end offset would not do: with transactions it holds
/// control records no consumer position reaches).
fn finished(shared: &Shared, opts: &RunOptions, ends_sent: &mut bool) -> bool {
    let Some(ends) = &opts.finish_at else {
        return false;
    };
    let sources_done = {
        let parts = lock(&shared.partitions);
        ends.iter().all(|((t, p), end)| {
            *end == 0
                || parts
                    .get(t, *p)
                    .is_some_and(|task| task.next_offset >= *end)
        })
    };
    if !sources_done || shared.plan.repartition.is_none() {
        return sources_done;
    }
    if !*ends_sent {
        *ends_sent = true;
        let mut out = Vec::new();
        send_markers(shared, &mut out, true);
        send_all(shared, &mut out);
    }
    let parts = lock(&shared.partitions);
    let downstream: Vec<&PartitionTask> = parts.values().filter(|t| t.proc.repartitioned).collect();
    downstream.len() == shared.repartition_partitions as usize
        && downstream.iter().all(|t| {
            shared
                .upstream_sources
                .iter()
                .all(|s| t.proc.ended.contains(s))
        })
}

/// Processes one message under the partitions lock; outputs go to `out`
/// (`scratch` is an empty buffer reused between records).
fn process(
    shared: &Shared,
    m: &BorrowedMessage<'_>,
    scratch: &mut Vec<OutMsg>,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    let plan = &*shared.plan;
    let mut parts = lock(&shared.partitions);
    let Some(task) = parts.get_mut(m.topic(), m.partition()) else {
        return Ok(()); // not (or no longer) ours
    };
    if m.offset() < task.next_offset {
        return Ok(()); // before the checkpoint: already handled
    }
    task.last_record = (
        shared.clock.load(std::sync::atomic::Ordering::Relaxed),
        task.proc.chain.watermark(),
    );
    let ts = m.timestamp().to_millis().unwrap_or(0);
    let msgs = scratch;
    let counts = if task.proc.repartitioned {
        match repartition::read(m) {
            None => {
                tracing::warn!(pipeline = %plan.name, topic = m.topic(), offset = m.offset(), "record not written by weir in the repartition topic; ignored");
                StepCounts::default()
            }
            Some(incoming) => {
                if matches!(incoming, Incoming::Reset) {
                    tracing::info!(pipeline = %plan.name, topic = m.topic(), partition = m.partition(), offset = m.offset(), "reset record: upstream partitions start over");
                }
                let original = Original {
                    key: m.key(),
                    payload: m.payload(),
                    timestamp: ts,
                };
                task.proc.downstream(
                    plan,
                    incoming,
                    original,
                    &shared.upstream_sources,
                    msgs,
                    &mut |_| {},
                )
            }
        }
    } else {
        let sm = SourceMessage {
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
            timestamp: ts,
        };
        let headers = || {
            m.headers().map_or_else(Vec::new, |h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
        };
        task.proc.source(plan, sm, headers, msgs, &mut |_| {})
    };
    if let Some(f) = counts.fail {
        // `policy: fail`: stop before this record counts as handled, so the
        // commit stays at it and a restart meets it again.
        drop(parts);
        msgs.clear();
        account(
            shared,
            &StepCounts {
                outcome: counts.outcome,
                stage: counts.stage,
                ..Default::default()
            },
            &[],
        );
        return Err(RuntimeError::RecordFailed {
            pipeline: plan.name.clone(),
            message: f,
        });
    }
    task.next_offset = m.offset() + 1;
    drop(parts);
    account(shared, &counts, msgs);
    out.extend(msgs.drain(..).map(|msg| (msg, ts)));
    Ok(())
}

/// `idle_timeout`: a partition without records for that long advances its
/// watermark by the wall-clock time passed since its last record.
fn advance_idle(shared: &Shared, out: &mut Vec<(OutMsg, i64)>) -> Result<(), RuntimeError> {
    let Some(idle) = shared.plan.idle_timeout else {
        return Ok(());
    };
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut().filter(|t| !t.proc.repartitioned) {
        let (at, wm) = task.last_record;
        let quiet = crate::kafka::sink::now_ms() - at;
        if wm == i64::MIN || quiet < idle {
            continue;
        }
        let mut msgs = Vec::new();
        let counts = task.proc.advance(
            &shared.plan,
            wm.saturating_add(quiet),
            &mut msgs,
            &mut |_| {},
        );
        derived(shared, counts, msgs, out)?;
    }
    Ok(())
}

/// Upstream of a repartition: every source partition whose watermark moved
/// since its last marker sends one to every repartition partition.
/// With `end`, every source partition sends one, marked as the end.
pub(super) fn send_markers(shared: &Shared, out: &mut Vec<(OutMsg, i64)>, end: bool) {
    if shared.plan.repartition.is_none() {
        return;
    }
    let now = crate::kafka::sink::now_ms();
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut().filter(|t| !t.proc.repartitioned) {
        let wm = task.proc.chain.watermark();
        if wm > task.marker_sent || end {
            task.marker_sent = wm;
            for p in 0..shared.repartition_partitions {
                out.push((repartition::marker(&task.proc.source, wm, p, end), now));
            }
        }
    }
}

/// Counts and queues the window results of a step no input record caused
/// (idle timeout, end of input).
///
/// # Errors
/// [`RuntimeError::RecordFailed`] when a result fails in a later stage
/// under `errors.policy: fail`.
fn derived(
    shared: &Shared,
    counts: StepCounts,
    msgs: Vec<OutMsg>,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    if let Some(message) = counts.fail {
        return Err(RuntimeError::RecordFailed {
            pipeline: shared.plan.name.clone(),
            message,
        });
    }
    account(
        shared,
        &StepCounts {
            derived_errors: counts.derived_errors,
            dlq: counts.dlq,
            ..Default::default()
        },
        &msgs,
    );
    let now = crate::kafka::sink::now_ms();
    out.extend(msgs.into_iter().map(|m| (m, now)));
    Ok(())
}

/// End of input (`weir dev`): close every window and route the results.
fn flush_windows(shared: &Shared, out: &mut Vec<(OutMsg, i64)>) -> Result<(), RuntimeError> {
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut() {
        let mut msgs = Vec::new();
        let counts = task.proc.flush(&shared.plan, &mut msgs, &mut |_| {});
        derived(shared, counts, msgs, out)?;
    }
    Ok(())
}

fn account(shared: &Shared, c: &StepCounts, msgs: &[OutMsg]) {
    let k = &shared.counters;
    let at = |r: Option<StageRef>| r.map_or(0, |r| r.index(shared.plan.stages.len()));
    if let Some(o) = c.outcome {
        k.records_in.inc();
        match o {
            Outcome::Out => k.records_out.inc(),
            Outcome::Filtered => k.filtered[at(c.stage)].inc(),
            Outcome::Late => k.late[at(c.stage)].inc(),
            Outcome::Error => k.errors[at(c.stage)].inc(),
        }
    }
    for st in &c.derived_errors {
        k.errors[at(Some(*st))].inc();
    }
    if c.dlq > 0 {
        k.dlq.inc_by(c.dlq);
    }
    for msg in msgs {
        if let Dest::Sink(i) = msg.dest {
            k.sinks[i].inc();
        }
    }
}

/// Enqueues every message; while librdkafka's queue is full, serves
/// delivery callbacks until there is room (backpressure).
pub(super) fn send_all(shared: &Shared, out: &mut Vec<(OutMsg, i64)>) {
    let plan = &*shared.plan;
    for (msg, source_ts) in out.drain(..) {
        let topic = match msg.dest {
            Dest::Sink(i) => plan.sinks[i].topic.as_str(),
            Dest::Dlq => plan.dlq_topic.as_str(),
            Dest::Repartition(_) => plan.repartition_topic().unwrap_or_default(),
        };
        let mut rec = BaseRecord::with_opaque_to(topic, source_ts.max(0) as usize)
            .payload(&msg.payload)
            .timestamp(msg.timestamp);
        if let Dest::Repartition(Some(p)) = msg.dest {
            rec = rec.partition(p);
        }
        if let Some(k) = &msg.key {
            rec = rec.key(k);
        }
        if let Some(h) = msg.headers {
            rec = rec.headers(h);
        }
        let sent = client::send_waiting(&shared.producer, rec, || shared.tick_clock());
        if let Err(e) = sent {
            tracing::error!(pipeline = %plan.name, error = %e, %topic, "cannot enqueue record");
            crate::kafka::sink::fail(
                &shared.failure,
                PipelineFailure::Delivery {
                    topic: topic.to_owned(),
                    error: e.to_string(),
                },
            );
        }
    }
}
