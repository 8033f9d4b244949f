//! Routing what the processor produced: counting it in the pipeline's
//! metrics and enqueueing it to the output producer (with backpressure),
//! the repartition markers, idle timeouts.

use super::output::{Dest, OutMsg, StepCounts};
use super::pipeline::RuntimeError;
use super::repartition;
use super::shared::{lock, Shared};
use crate::kafka::client;
use crate::kafka::sink::PipelineFailure;
use crate::operator::chain::Outcome;
use crate::operator::StageRef;
use rdkafka::producer::BaseRecord;

/// `idle_timeout`: a partition without records for that long advances its
/// watermark by the wall-clock time passed since its last record.
pub(super) fn advance_idle(
    shared: &Shared,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
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
pub(super) fn derived(
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

pub(super) fn account(shared: &Shared, c: &StepCounts, msgs: &[OutMsg]) {
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
