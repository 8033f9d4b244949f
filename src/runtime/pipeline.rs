//! One pipeline as one consumer group member: consume in offset order per
//! partition, run the chain, produce outputs, and every `commit_interval`
//! run the commit sequence of [`super::commit`] (DESIGN.md §3). Starting is
//! [`super::start`], the per-record path [`super::processor`], routing
//! [`super::route`], the end of input [`super::finish`].
//!
//! One task processes every assigned partition of the pipeline, interleaved
//! as librdkafka delivers them (Kafka Streams' default of one stream thread);
//! librdkafka's own threads fetch and produce on the other cores.

use super::finish::{finished, flush_windows};
use super::output::{Original, OutMsg, StepCounts};
use super::processor::SourceMessage;
use super::repartition::{self, Incoming};
use super::route::{account, advance_idle, send_all, send_markers};
use super::shared::{lock, Shared};
use super::start::Start;
use super::tables::TableReader;
use crate::http::Health;
use crate::kafka::sink::PipelineFailure;
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::spec::daemon::KafkaConfig;
use futures::FutureExt as _;
use rdkafka::consumer::CommitMode;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Broker connection.
    pub kafka: KafkaConfig,
    /// Checkpoint and commit period.
    pub commit_interval: Duration,
    /// Bound on the whole shutdown, from the moment it begins: the last
    /// commit and leaving the group.
    pub shutdown_timeout: Duration,
    /// Bound on one commit (output flush, state writes, transaction
    /// commit); a commit not done by then is retried at the next interval.
    pub commit_timeout: Duration,
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
    /// The pipeline joins a second stream, which `weir run` and `weir dev`
    /// do not read yet (`weir test` runs stream-stream joins).
    #[error("pipeline `{pipeline}`: cannot run a stream-stream `join:` yet: `weir run` and `weir dev` do not read a join's second stream in this version (`weir test` runs them; expected a pipeline without `join: {{stream: …}}`)")]
    StreamJoinsUnsupported {
        /// Pipeline name.
        pipeline: String,
    },
    /// A table could not be read (DESIGN.md §7 T1).
    #[error("pipeline `{pipeline}`: {source}")]
    Tables {
        /// Pipeline name.
        pipeline: String,
        /// What failed.
        source: Box<super::tables::TableReadError>,
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
    let (shared, consumer, mut tables) =
        match super::start::start(Arc::clone(&plan), &opts, &metrics, &health, &shutdown).await? {
            Start::Running(shared, consumer, tables) => (shared, consumer, tables),
            Start::Stopped(summary) => return Ok(summary),
        };

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
                shared.restore_pending(&consumer);
                shared.poll_producer();
                if let Err(e) = follow_tables(&shared, tables.as_mut(), false, &mut out) {
                    break Err(e);
                }
                if idle_check.elapsed() >= Duration::from_millis(100) {
                    idle_check = Instant::now();
                    if let Err(e) = advance_idle(&shared, &mut out)
                        .and_then(|()| follow_tables(&shared, tables.as_mut(), true, &mut out))
                    {
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
                table_metrics(&shared);
                match finished(&shared, &opts, &mut ends_sent) {
                    Ok(true) => break Ok(()),
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
            }
            msg = consumer.recv() => {
                // Partitions the rebalance callback handed over (inside
                // `recv`) are restored here, on this pipeline's thread.
                shared.restore_pending(&consumer);
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
                            match finished(&shared, &opts, &mut ends_sent) {
                                Ok(false) => {}
                                done => {
                                    stop = Some(done.map(|_| ()));
                                    break;
                                }
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
                if let Err(e) = follow_tables(&shared, tables.as_mut(), false, &mut out) {
                    break Err(e);
                }
                send_all(&shared, &mut out);
            }
        }
    };
    // From here on, one deadline bounds what is left (the last commit).
    let _ = shared
        .shutdown_deadline
        .set(Instant::now() + opts.shutdown_timeout);
    let result = match result {
        Ok(()) if opts.finish_at.is_some() => flush_windows(&shared, &mut out).map(|()| {
            send_all(&shared, &mut out);
        }),
        r => r,
    };
    // Drain, write state, commit; dropping the consumer then leaves the group.
    shared.commit_state(&consumer, None, CommitMode::Sync);
    table_metrics(&shared);
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

/// Takes the table records the table consumers already hold (at most 4096
/// per call, without waiting) into the tables and the partitions that join
/// them, or with `idle`, marks idle the table partitions at their end for
/// `idle_timeout` (T4); the stream records either releases go to `out`.
fn follow_tables(
    shared: &Shared,
    tables: Option<&mut TableReader>,
    idle: bool,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    let Some(reader) = tables else {
        return Ok(());
    };
    let mut result = Ok(());
    let mut each = |ev| {
        if result.is_ok() {
            result = super::table_events::apply(shared, ev, out);
        }
    };
    if idle {
        reader.idle(&shared.plan, &mut each);
    } else {
        reader.poll(&shared.plan, 4096, &mut each);
    }
    result
}

/// `weir_table_entries`, `weir_join_held_records` and
/// `weir_join_records_total`, once per commit interval.
fn table_metrics(shared: &Shared) {
    let Some(cache) = &shared.tables else {
        return;
    };
    let plan = &*shared.plan;
    let mut held = 0;
    for t in lock(&shared.partitions).values_mut() {
        held += t.proc.held();
        for (i, matched, unmatched) in t.proc.take_join_counts() {
            let stage = crate::operator::StageRef::Stage(i).label(&plan.stages, &plan.sinks);
            for (result, n) in [("matched", matched), ("unmatched", unmatched)] {
                shared
                    .metrics
                    .join_records
                    .with_label_values(&[&plan.name, &stage, result])
                    .inc_by(n);
            }
        }
    }
    shared
        .metrics
        .join_held_records
        .with_label_values(&[&shared.plan.name])
        .set(held as i64);
    let cache = lock(cache);
    for t in &shared.plan.tables {
        shared
            .metrics
            .table_entries
            .with_label_values(&[&shared.plan.name, &t.name])
            .set(cache.entries(&t.name) as i64);
    }
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
