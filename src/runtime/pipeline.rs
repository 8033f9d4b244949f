//! One pipeline as one consumer group member: consume in offset order per
//! partition, run the chain, produce outputs with delivery tracking, and
//! every `commit_interval` write each partition's checkpoint and commit its
//! offset (DESIGN.md §3, at-least-once).
//!
//! One task processes every assigned partition of the pipeline, interleaved
//! as librdkafka delivers them (Kafka Streams' default of one stream thread);
//! librdkafka's own threads fetch and produce on the other cores.

use super::context::{AckContext, Token, WeirContext};
use super::output::{collect, handle_error, Original, OutMsg, StepCounts};
use super::progress::Progress;
use crate::codec::RawMessage;
use crate::http::Health;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::checkpoint::{self, Checkpoint};
use crate::kafka::client;
use crate::metrics::{Metrics, PipelineCounters};
use crate::operator::chain::{Outcome, RecordError};
use crate::operator::{Chain, StageRef};
use crate::plan::Plan;
use crate::record::Origin;
use crate::spec::daemon::KafkaConfig;
use futures::FutureExt as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    #[error("pipeline `{pipeline}`: delivery failed: {message}")]
    Delivery {
        /// Pipeline name.
        pipeline: String,
        /// librdkafka's message.
        message: String,
    },
}

/// Totals of one run (for `weir dev`'s summary line).
pub use crate::metrics::Totals as Summary;

struct PartitionTask {
    chain: Chain,
    progress: Arc<Mutex<Progress>>,
    next_offset: i64,
    last_checkpoint: Option<Checkpoint>,
}

/// State shared between the processing task and the consumer callbacks.
pub struct Shared {
    plan: Arc<Plan>,
    metrics: Metrics,
    health: Arc<Health>,
    partitions: Mutex<HashMap<(Arc<str>, i32), PartitionTask>>,
    /// Outputs; polled by the processing task (delivery callbacks run there).
    producer: BaseProducer<AckContext>,
    clock: Arc<std::sync::atomic::AtomicI64>,
    checkpoints: FutureProducer,
    reader_config: ClientConfig,
    shutdown_timeout: Duration,
    counters: PipelineCounters,
    /// Set when librdkafka reports every broker down; cleared by the next
    /// fetched record or successful commit.
    brokers_down: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn set_ready(&self, ready: bool) {
        self.health.set(&self.plan.name, ready);
    }

    fn tick_clock(&self) {
        self.clock.store(
            super::context::now_ms(),
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
    fn brokers_up(&self) {
        if self
            .brokers_down
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.set_ready(true);
        }
    }

    /// Assignment: restore each partition from its checkpoint and set the
    /// fetch position to the checkpoint's offset.
    pub(super) fn on_assign(&self, tpl: &mut TopicPartitionList) {
        let cps = match checkpoint::read_all(
            &self.reader_config,
            &self.plan.checkpoint_topic,
            Duration::from_secs(10),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(pipeline = %self.plan.name, error = %e, "checkpoints unreadable; resuming from committed offsets");
                HashMap::new()
            }
        };
        let mut parts = lock(&self.partitions);
        for el in tpl.elements() {
            let (topic, partition) = (el.topic().to_owned(), el.partition());
            let mut chain = Chain::new(
                &self.plan.env,
                Arc::clone(&self.plan.stages),
                Arc::clone(&self.plan.sinks),
                self.plan.max_out_of_orderness,
            );
            let cp = cps.get(&checkpoint::key(&topic, partition)).copied();
            let (progress, next) = match cp {
                Some(cp) => {
                    chain.restore(
                        self.plan.max_out_of_orderness,
                        cp.watermark,
                        cp.emitted_through,
                    );
                    (Progress::new(cp.emitted_through), cp.offset)
                }
                None => (Progress::new(i64::MIN), -1),
            };
            tracing::info!(pipeline = %self.plan.name, %topic, partition, checkpoint = ?cp, "partition assigned");
            parts.insert(
                (Arc::from(topic.as_str()), partition),
                PartitionTask {
                    chain,
                    progress: Arc::new(Mutex::new(progress)),
                    next_offset: next,
                    last_checkpoint: cp,
                },
            );
        }
        drop(parts);
        for el in tpl.clone().elements() {
            let key = checkpoint::key(el.topic(), el.partition());
            if let Some(cp) = cps.get(&key) {
                let _ =
                    tpl.set_partition_offset(el.topic(), el.partition(), Offset::Offset(cp.offset));
            }
        }
    }

    /// Revocation: wait for in-flight deliveries, write checkpoints, commit
    /// synchronously, forget the partitions. Open windows are not emitted:
    /// the next owner replays them from the checkpoint.
    pub(super) fn on_revoke(&self, consumer: &BaseConsumer<WeirContext>, tpl: &TopicPartitionList) {
        self.tick_clock();
        let _ = self.producer.flush(self.shutdown_timeout);
        let revoked: Vec<(Arc<str>, i32)> = {
            let parts = lock(&self.partitions);
            tpl.elements()
                .iter()
                .filter_map(|e| {
                    parts
                        .keys()
                        .find(|(t, p)| &**t == e.topic() && *p == e.partition())
                        .cloned()
                })
                .collect()
        };
        let cps = self.due_checkpoints(Some(&revoked), true);
        let written = futures::executor::block_on(self.write_checkpoints(&cps));
        if written {
            self.commit(consumer, &cps, CommitMode::Sync);
        }
        let mut parts = lock(&self.partitions);
        for k in &revoked {
            parts.remove(k);
            tracing::info!(pipeline = %self.plan.name, topic = %k.0, partition = k.1, "partition revoked");
        }
    }

    /// Checkpoints that changed since last written (all of `only` when `force`).
    fn due_checkpoints(
        &self,
        only: Option<&[(Arc<str>, i32)]>,
        force: bool,
    ) -> Vec<((Arc<str>, i32), Checkpoint)> {
        let parts = lock(&self.partitions);
        let mut out = Vec::new();
        let mut open = 0;
        for (k, t) in parts.iter() {
            open += t.chain.open_windows();
            if only.is_some_and(|o| !o.contains(k)) || t.next_offset < 0 {
                continue;
            }
            let cp = lock(&t.progress).checkpoint(
                t.next_offset,
                t.chain.watermark(),
                t.chain.oldest_open(),
            );
            if force || t.last_checkpoint != Some(cp) {
                out.push((k.clone(), cp));
            }
            if t.chain.watermark() > i64::MIN {
                self.metrics
                    .watermark_ms
                    .with_label_values(&[self.plan.name.as_str(), &*k.0, &k.1.to_string()])
                    .set(t.chain.watermark());
            }
        }
        self.metrics
            .windows_open
            .with_label_values(&[&self.plan.name])
            .set(open as i64);
        out
    }

    /// Produces checkpoint records and waits for their acknowledgement.
    async fn write_checkpoints(&self, cps: &[((Arc<str>, i32), Checkpoint)]) -> bool {
        let futures = cps.iter().map(|((t, p), cp)| {
            let key = checkpoint::key(t, *p);
            let payload = serde_json::to_vec(cp).unwrap_or_default();
            async move {
                let rec = FutureRecord::to(&self.plan.checkpoint_topic)
                    .key(&key)
                    .payload(&payload);
                self.checkpoints.send(rec, Duration::from_secs(30)).await
            }
        });
        let results = futures::future::join_all(futures).await;
        let mut ok = true;
        for r in results {
            if let Err((e, _)) = r {
                tracing::error!(pipeline = %self.plan.name, error = %e, "checkpoint write failed; not committing");
                ok = false;
            }
        }
        if ok {
            let mut parts = lock(&self.partitions);
            for (k, cp) in cps {
                if let Some(t) = parts.get_mut(k) {
                    t.last_checkpoint = Some(*cp);
                }
            }
        }
        ok
    }

    fn commit<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &self,
        consumer: &C,
        cps: &[((Arc<str>, i32), Checkpoint)],
        mode: CommitMode,
    ) {
        if cps.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), cp) in cps {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(cp.offset));
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => self
                .metrics
                .commits
                .with_label_values(&[&self.plan.name])
                .inc(),
            Err(e) => {
                tracing::warn!(pipeline = %self.plan.name, error = %e, "offset commit failed")
            }
        }
    }

    fn delivery_failure(&self) -> Option<String> {
        let parts = lock(&self.partitions);
        parts
            .values()
            .find_map(|t| lock(&t.progress).failure().map(str::to_owned))
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
    ensure_topics(&base, &output_topics(&plan), Duration::from_secs(30))
        .await
        .map_err(|source| RuntimeError::Admin {
            pipeline: name.clone(),
            source,
        })?;

    let clock = Arc::new(std::sync::atomic::AtomicI64::new(super::context::now_ms()));
    let producer: BaseProducer<AckContext> = client::producer(&opts.kafka)
        .create_with_context(AckContext {
            latency: metrics.latency(&plan.name),
            clock: Arc::clone(&clock),
            pipeline: name.clone(),
        })
        .map_err(kerr("create producer"))?;
    let checkpoints: FutureProducer = client::producer(&opts.kafka)
        .create()
        .map_err(kerr("create checkpoint producer"))?;
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        metrics: metrics.clone(),
        health: Arc::clone(&health),
        partitions: Mutex::new(HashMap::new()),
        producer,
        clock,
        checkpoints,
        reader_config: base.clone(),
        shutdown_timeout: opts.shutdown_timeout,
        counters,
        brokers_down: std::sync::atomic::AtomicBool::new(false),
    });
    let mut cfg = client::consumer(&opts.kafka, &plan.group_id, plan.start_from, &plan.consumer);
    cfg.set("statistics.interval.ms", "5000");
    let consumer: StreamConsumer<WeirContext> = cfg
        .create_with_context(WeirContext {
            shared: Arc::downgrade(&shared),
            metrics: metrics.clone(),
            pipeline: name.clone(),
        })
        .map_err(kerr("create consumer"))?;
    match &plan.pattern {
        Some(p) => consumer.subscribe(&[p.as_str()]),
        None => consumer.subscribe(&plan.topics.iter().map(String::as_str).collect::<Vec<_>>()),
    }
    .map_err(kerr("subscribe"))?;
    tracing::info!(pipeline = %name, group = %plan.group_id, "pipeline started");

    let mut tick = tokio::time::interval(opts.commit_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Serves acknowledgements while no record arrives.
    let mut ack_tick = tokio::time::interval(Duration::from_millis(5));
    ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut since_poll = 0u32;
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            _ = ack_tick.tick() => shared.poll_producer(),
            _ = tick.tick() => {
                shared.poll_producer();
                if let Some(m) = shared.delivery_failure() {
                    break Err(RuntimeError::Delivery { pipeline: name.clone(), message: m });
                }
                let cps = shared.due_checkpoints(None, false);
                if shared.write_checkpoints(&cps).await {
                    shared.commit(&consumer, &cps, CommitMode::Async);
                }
                if finished(&shared, &opts) {
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
                            if finished(&shared, &opts) {
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
    if opts.finish_at.is_some() && result.is_ok() {
        flush_windows(&shared, &mut out);
        send_all(&shared, &mut out);
    }
    // Drain, checkpoint, commit; dropping the consumer then leaves the group.
    shared.tick_clock();
    let _ = shared.producer.flush(opts.shutdown_timeout);
    let cps = shared.due_checkpoints(None, false);
    if shared.write_checkpoints(&cps).await {
        shared.commit(&consumer, &cps, CommitMode::Sync);
    }
    if let Some(m) = shared.delivery_failure() {
        return Err(RuntimeError::Delivery {
            pipeline: name,
            message: m,
        });
    }
    health.set(&plan.name, false);
    drop(consumer);
    tracing::info!(pipeline = %name, "pipeline stopped");
    result.map(|()| shared.counters.totals())
}

fn output_topics(plan: &Plan) -> Vec<TopicSpec> {
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
        configs: vec![("cleanup.policy".into(), "compact".into())],
    });
    v
}

fn finished(shared: &Shared, opts: &RunOptions) -> bool {
    let Some(ends) = &opts.finish_at else {
        return false;
    };
    let parts = lock(&shared.partitions);
    ends.iter().all(|((t, p), end)| {
        *end == 0
            || parts
                .iter()
                .any(|((pt, pp), task)| &**pt == t && pp == p && task.next_offset >= *end)
    })
}

/// Processes one message under the partitions lock; outputs go to `out`
/// (`scratch` is an empty buffer reused between records).
fn process(
    shared: &Shared,
    m: &BorrowedMessage<'_>,
    scratch: &mut Vec<OutMsg>,
    out: &mut Vec<(OutMsg, Token)>,
) -> Result<(), RuntimeError> {
    let plan = &*shared.plan;
    let mut parts = lock(&shared.partitions);
    let Some((key, task)) = parts
        .iter_mut()
        .find(|((t, p), _)| &**t == m.topic() && *p == m.partition())
    else {
        return Ok(()); // not (or no longer) ours
    };
    if m.offset() < task.next_offset {
        return Ok(()); // before the checkpoint: already handled
    }
    let ts = m.timestamp().to_millis().unwrap_or(0);
    let original = Original {
        key: m.key(),
        payload: m.payload(),
        timestamp: ts,
    };
    let origin = Origin {
        topic: Arc::clone(&key.0),
        partition: key.1,
        offset: m.offset(),
    };
    let wm_before = task.chain.watermark();
    let msgs = scratch;
    let counts = if plan.raw_passthrough {
        for sink in 0..plan.sinks.len() {
            msgs.push(OutMsg {
                sink: Some(sink),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                timestamp: ts,
                headers: None,
            });
        }
        let c = StepCounts {
            outcome: Some(Outcome::Out),
            ..Default::default()
        };
        (c, None)
    } else {
        match plan.decoder.decode(
            RawMessage {
                key: m.key(),
                payload: m.payload(),
                timestamp: ts,
            },
            origin.clone(),
        ) {
            Ok(mut rec) => {
                if let Some(h) = m.headers() {
                    rec.headers = h
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect();
                }
                let step = task.chain.process(rec);
                let closed = step.closed;
                let c = collect(plan, step, original, msgs);
                (c, closed)
            }
            Err(e) => {
                let mut rec =
                    crate::record::Record::new(serde_json::Value::Null, serde_json::Value::Null);
                rec.origin = origin;
                rec.timestamp = ts;
                let mut c = StepCounts {
                    outcome: Some(Outcome::Error),
                    ..Default::default()
                };
                let err = RecordError {
                    stage: StageRef::Source,
                    message: e.to_string(),
                    record: rec,
                    input: true,
                };
                handle_error(plan, err, original, msgs, &mut c);
                (c, None)
            }
        }
    };
    let (counts, closed) = counts;
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
    lock(&task.progress).record(
        m.offset(),
        msgs.len() as u32,
        wm_before,
        task.chain.watermark(),
        closed,
    );
    let progress = Arc::clone(&task.progress);
    drop(parts);
    account(shared, &counts, msgs);
    out.extend(msgs.drain(..).map(|msg| {
        let token = Token {
            progress: Arc::clone(&progress),
            offset: m.offset(),
            source_timestamp: ts,
        };
        (msg, token)
    }));
    Ok(())
}

/// End of input (`weir dev`): close every window and route the results.
fn flush_windows(shared: &Shared, out: &mut Vec<(OutMsg, Token)>) {
    let plan = &*shared.plan;
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut() {
        let step = task.chain.flush();
        let mut msgs = Vec::new();
        let original = Original {
            key: None,
            payload: None,
            timestamp: 0,
        };
        let counts = collect(plan, step, original, &mut msgs);
        let unit = task.next_offset.max(0);
        lock(&task.progress).record(
            unit,
            msgs.len() as u32,
            task.chain.watermark(),
            i64::MAX,
            None,
        );
        account(
            shared,
            &StepCounts {
                derived_errors: counts.derived_errors,
                dlq: counts.dlq,
                ..Default::default()
            },
            &msgs,
        );
        out.extend(msgs.drain(..).map(|msg| {
            (
                msg,
                Token {
                    progress: Arc::clone(&task.progress),
                    offset: unit,
                    source_timestamp: super::context::now_ms(),
                },
            )
        }));
    }
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
        if let Some(i) = msg.sink {
            k.sinks[i].inc();
        }
    }
}

/// Enqueues every message; while librdkafka's queue is full, serves
/// delivery callbacks until there is room (backpressure).
fn send_all(shared: &Shared, out: &mut Vec<(OutMsg, Token)>) {
    let plan = &*shared.plan;
    for (msg, token) in out.drain(..) {
        let topic = match msg.sink {
            Some(i) => plan.sinks[i].topic.as_str(),
            None => plan.dlq_topic.as_str(),
        };
        let mut rec = BaseRecord::with_opaque_to(topic, Box::new(token))
            .payload(&msg.payload)
            .timestamp(msg.timestamp);
        if let Some(k) = &msg.key {
            rec = rec.key(k);
        }
        if let Some(h) = msg.headers {
            rec = rec.headers(h);
        }
        loop {
            match shared.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    shared.tick_clock();
                    shared.producer.poll(Duration::from_millis(10));
                }
                Err((e, r)) => {
                    tracing::error!(pipeline = %plan.name, error = %e, %topic, "cannot enqueue record");
                    lock(&r.delivery_opaque.progress).fail(e.to_string());
                    break;
                }
            }
        }
    }
}
