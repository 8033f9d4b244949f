//! The one per-record path (DESIGN.md §4): one input partition's record →
//! decode → stages → the records to produce, with its counts. `weir run`
//! and `weir dev` call it from the pipeline's consumer loop, `weir test`
//! from its harness with no broker; nothing else decodes, runs stages or
//! crosses the repartition topic. Pure and synchronous: the caller
//! produces the records and keeps the metrics.
//!
//! A partition of a source topic runs the whole pipeline, or with a
//! repartition (a `key_by` before a window), the stages before it, whose
//! records go to the repartition topic ([`repartition::record`]); a
//! partition of the repartition topic runs the stages after it, its
//! watermark the minimum of the upstream partitions' markers.

use super::output::{collect, Dest, Original, OutMsg, StepCounts};
use super::repartition::{self, Incoming};
use crate::codec::RawMessage;
use crate::operator::chain::{Outcome, RecordError, StageRef, StepResult};
use crate::operator::Chain;
use crate::plan::Plan;
use crate::record::{Origin, Record};
use crate::state::Upstream;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod joins;

/// One record of a source partition, as read.
#[derive(Debug, Clone, Copy)]
pub struct SourceMessage<'a> {
    /// Offset in its partition.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Payload bytes.
    pub payload: Option<&'a [u8]>,
    /// Kafka timestamp, ms.
    pub timestamp: i64,
}

impl<'a> SourceMessage<'a> {
    /// The message as read, for the DLQ.
    pub fn original(&self) -> Original<'a> {
        Original {
            key: self.key,
            payload: self.payload,
            timestamp: self.timestamp,
        }
    }

    /// The message for a decoder.
    pub fn raw(&self) -> RawMessage<'a> {
        RawMessage {
            key: self.key,
            payload: self.payload,
            timestamp: self.timestamp,
        }
    }
}

/// What a table record caused ([`PartitionProcessor::table`]).
#[derive(Debug, Default)]
pub struct TableStep {
    /// The table record's own error (it could not be decoded or keyed).
    pub own: Option<StepCounts>,
    /// One count per stream record it released (T4), in release order.
    pub released: Vec<StepCounts>,
    /// Where each released record was read from, as `released`.
    pub origins: Vec<Origin>,
}

/// Sees every step before its records are built (`weir test` notes what
/// was filtered, late or failed); `&mut |_| {}` when nothing is to be seen.
pub type Observer<'a> = &'a mut dyn FnMut(&StepResult);

/// The per-record path of one input partition.
pub struct PartitionProcessor {
    /// The stages this partition runs and their state.
    pub chain: Chain,
    /// `topic/partition`.
    pub source: String,
    topic: Arc<str>,
    partition: i32,
    /// The input is the repartition topic (the downstream segment).
    pub repartitioned: bool,
    /// Downstream: what each upstream partition has sent (markers, offsets).
    pub upstream: BTreeMap<String, Upstream>,
    /// Downstream, end of input: upstream partitions that sent their end marker.
    pub ended: BTreeSet<String>,
    /// Rule T4 of DESIGN.md §7, when this partition's stages join a table
    /// at event time; `None` otherwise.
    joins: Option<super::joins::JoinHold>,
}

impl PartitionProcessor {
    /// The processor of partition `partition` of `topic`: the whole
    /// pipeline, or with a repartition the segment before it (source
    /// topics) or after it (the repartition topic).
    pub fn new(plan: &Plan, topic: &str, partition: i32) -> Self {
        let chain = Chain::new(
            &plan.env,
            Arc::clone(&plan.stages),
            Arc::clone(&plan.sinks),
            plan.max_out_of_orderness,
        )
        // Results straight to JSON bytes: no map built, sinks copy them.
        .results_as_bytes();
        let repartitioned = plan.repartition_topic() == Some(topic);
        let chain = match &plan.repartition {
            None => chain,
            Some(r) if repartitioned => chain.segment(r.after + 1, None),
            Some(r) => chain.segment(0, Some(r.after + 1)),
        }
        .with_tables(plan.tables.iter().map(|t| (t.name.as_str(), t.history)));
        let joins = super::joins::JoinHold::new(plan, &chain);
        PartitionProcessor {
            joins,
            chain,
            source: crate::state::codec::source_key(topic, partition),
            topic: Arc::from(topic),
            partition,
            repartitioned,
            upstream: BTreeMap::new(),
            ended: BTreeSet::new(),
        }
    }

    /// A source record: decoded in the plan's format (headers from
    /// `headers`, read only when it decodes), run through the stages;
    /// sink, DLQ and repartition records are appended to `out`. A record
    /// sent across the repartition topic has no outcome here (it is
    /// counted downstream, where its fate is decided).
    pub fn source(
        &mut self,
        plan: &Plan,
        m: SourceMessage<'_>,
        headers: impl FnOnce() -> Vec<(String, Vec<u8>)>,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> StepCounts {
        let original = m.original();
        if plan.raw_passthrough {
            for sink in 0..plan.sinks.len() {
                out.push(OutMsg {
                    dest: Dest::Sink(sink),
                    key: m.key.map(<[u8]>::to_vec),
                    payload: m.payload.map(<[u8]>::to_vec).unwrap_or_default(),
                    timestamp: m.timestamp,
                    headers: None,
                });
            }
            return StepCounts {
                outcome: Some(Outcome::Out),
                ..Default::default()
            };
        }
        let origin = Origin {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            offset: m.offset,
        };
        let mut step = match plan.decoder.decode(m.raw(), origin.clone()) {
            Ok(mut rec) => {
                rec.headers = headers();
                match self.joins.as_mut() {
                    None => self.chain.process(rec),
                    Some(j) => match j.offer(rec, original) {
                        Some(rec) => {
                            let step = self.chain.process(rec);
                            self.chain.expire_tables(j.expiry_base(&self.chain));
                            step
                        }
                        // Held (T4): counted when its fate is decided.
                        None => return StepCounts::default(),
                    },
                }
            }
            Err(e) => undecodable(StageRef::Source, e.to_string(), origin, m.timestamp),
        };
        observe(&step);
        if step.repartition.is_empty() {
            return collect(plan, step, original, out);
        }
        let raw = plan
            .repartition
            .as_ref()
            .filter(|r| r.forward_payload)
            .and(m.payload);
        for r in step.repartition.drain(..) {
            out.push(repartition::record(&r, &self.source, raw));
        }
        let mut c = collect(plan, step, original, out);
        c.outcome = None;
        c
    }

    /// A message of the repartition topic ([`repartition::read`]): a record
    /// runs the stages after the repartition (once: a repeat from an
    /// upstream replay is dropped); a marker moves the watermark to the
    /// minimum over `sources`, every upstream partition; a reset forgets
    /// what was seen upstream. `original` is the message as read.
    pub fn downstream(
        &mut self,
        plan: &Plan,
        incoming: Incoming,
        original: Original<'_>,
        sources: &[String],
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> StepCounts {
        let step = match incoming {
            Incoming::Marker(src, wm, end) => {
                repartition::note_marker(&mut self.upstream, &src, wm);
                if end {
                    self.ended.insert(src);
                }
                let target = repartition::watermark(sources, &self.upstream);
                self.chain.advance_watermark(target)
            }
            Incoming::Reset => {
                self.upstream.clear();
                return StepCounts::default();
            }
            Incoming::Record(rec, src) => {
                if !repartition::first_time(&mut self.upstream, src, rec.origin.offset) {
                    return StepCounts::default(); // a repeat from an upstream replay
                }
                self.chain.process(*rec)
            }
        };
        observe(&step);
        collect(plan, step, original, out)
    }

    /// Moves the watermark to `wm` (idle timeout): the windows it closes
    /// are routed into `out`.
    pub fn advance(
        &mut self,
        plan: &Plan,
        wm: i64,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> StepCounts {
        let step = self.chain.advance_watermark(wm);
        derived(plan, step, out, observe)
    }

    /// End of input: closes every window; the results are routed into `out`.
    pub fn flush(
        &mut self,
        plan: &Plan,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> StepCounts {
        let step = self.chain.flush();
        derived(plan, step, out, observe)
    }
}

/// The step of an input record that could not be decoded: an error of
/// `stage` with `message`, the record empty but for its coordinates.
fn undecodable(stage: StageRef, message: String, origin: Origin, timestamp: i64) -> StepResult {
    let mut rec = Record::new(Value::Null, Value::Null);
    rec.origin = origin;
    rec.timestamp = timestamp;
    StepResult {
        outcome: Some(Outcome::Error),
        errors: vec![RecordError {
            stage,
            message,
            record: rec,
            input: true,
        }],
        ..Default::default()
    }
}

/// The records of a step no input record caused (window results).
fn derived(
    plan: &Plan,
    step: StepResult,
    out: &mut Vec<OutMsg>,
    observe: Observer<'_>,
) -> StepCounts {
    observe(&step);
    collect(plan, step, NO_ORIGINAL, out)
}

/// No original message: window results closed by a watermark or a flush.
pub const NO_ORIGINAL: Original<'static> = Original {
    key: None,
    payload: None,
    timestamp: 0,
};
