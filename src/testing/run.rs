//! Runs one `weir test` case with no broker: the runtime's per-record path
//! (`runtime::pipeline`'s `process`) with the Kafka client taken out.
//!
//! Each input topic is one source partition with its own [`Chain`]. With a
//! repartition (a `key_by` before a window), the stages after it run on one
//! more chain standing for the repartition topic: the records cross it as
//! [`repartition::record`] writes them (event time as the Kafka
//! timestamp, headers gone), and after every input record each source
//! partition's watermark crosses as a marker would (the downstream
//! watermark is the minimum over the input topics, as in the runtime).
//! At the end of input every chain is flushed, source partitions first,
//! closing every open window as `weir dev` does.

use super::{Case, InputRecord};
use crate::codec::RawMessage;
use crate::kafka::checkpoint::Upstream;
use crate::operator::chain::{Outcome, RecordError, StageRef, StepResult};
use crate::operator::Chain;
use crate::plan::Plan;
use crate::record::{Origin, Record};
use crate::runtime::output::{collect, handle_error, Dest, Original, OutMsg, StepCounts};
use crate::runtime::repartition;
use crate::spec::{ErrorPolicy, Format};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One record the pipeline produced, to a sink or the DLQ.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Sink or DLQ topic.
    pub topic: String,
    /// Key bytes as produced; `None` for no key.
    pub key: Option<Vec<u8>>,
    /// The payload read back in the pipeline's format: JSON for `json`
    /// (a string when the bytes are not JSON, as in a DLQ copy of a bad
    /// record), the text for `text` and `bytes` (UTF-8, lossy).
    pub value: Value,
    /// Kafka timestamp, ms since the Unix epoch.
    pub timestamp: i64,
}

/// Everything one case produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Sink and DLQ records, in the order weir produces them: input order;
    /// for one record its sinks in file order, then its DLQ records;
    /// window results when the watermark closes them, after the record
    /// that moved it, the rest at the end of input.
    pub outputs: Vec<Output>,
    /// What became of input records that produced nothing of their own,
    /// one line each: filtered (and by which stage), late, failed (and
    /// why, and where it went). Shown with a failed case.
    pub notes: Vec<String>,
    /// Why the pipeline stopped before the end of input (`errors.policy:
    /// fail` met a record error); `None` when it ran to the end.
    pub stopped: Option<String>,
}

/// One source partition: an input topic.
struct Partition {
    /// `topic/0`, as in repartition markers and DLQ headers.
    source: String,
    /// The whole pipeline, or the stages before the repartition.
    chain: Chain,
    /// Case input index of each offset.
    inputs: Vec<usize>,
}

/// The repartition topic, as one partition.
struct Downstream {
    /// The stages after the repartition.
    chain: Chain,
    /// Latest marker and offset per source partition.
    upstream: BTreeMap<String, Upstream>,
    /// Every source partition of the case (`topic/0`).
    sources: Vec<String>,
}

struct Harness<'a> {
    plan: &'a Plan,
    parts: IndexMap<String, Partition>,
    downstream: Option<Downstream>,
    run: Run,
}

/// Runs `case` through `plan` (see the module doc). Never fails: record
/// errors are routed by `errors.policy` and noted; `fail` stops the run
/// ([`Run::stopped`]).
pub fn run(plan: &Plan, case: &Case) -> Run {
    let mut sources: Vec<String> = Vec::new();
    for r in &case.input {
        let s = format!("{}/0", r.topic);
        if !sources.contains(&s) {
            sources.push(s);
        }
    }
    let mut h = Harness {
        plan,
        parts: IndexMap::new(),
        downstream: plan.repartition.as_ref().map(|r| Downstream {
            chain: new_chain(plan).segment(r.after + 1, None),
            upstream: BTreeMap::new(),
            sources,
        }),
        run: Run::default(),
    };
    for (i, rec) in case.input.iter().enumerate() {
        h.input(i, rec);
        if h.run.stopped.is_some() {
            return h.run;
        }
    }
    h.finish();
    h.run
}

fn new_chain(plan: &Plan) -> Chain {
    Chain::new(
        &plan.env,
        Arc::clone(&plan.stages),
        Arc::clone(&plan.sinks),
        plan.max_out_of_orderness,
    )
}

impl Harness<'_> {
    /// Feeds input record `index`.
    fn input(&mut self, index: usize, rec: &InputRecord) {
        let plan = self.plan;
        let part = self
            .parts
            .entry(rec.topic.clone())
            .or_insert_with(|| Partition {
                source: format!("{}/0", rec.topic),
                chain: match &plan.repartition {
                    Some(r) => new_chain(plan).segment(0, Some(r.after + 1)),
                    None => new_chain(plan),
                },
                inputs: Vec::new(),
            });
        let origin = Origin {
            topic: Arc::from(rec.topic.as_str()),
            partition: 0,
            offset: part.inputs.len() as i64,
        };
        part.inputs.push(index);
        let original = Original {
            key: rec.key.as_deref(),
            payload: rec.payload.as_deref(),
            timestamp: rec.timestamp,
        };
        if plan.raw_passthrough {
            for topic in plan.sinks.iter().map(|s| s.topic.clone()) {
                self.run.outputs.push(Output {
                    topic,
                    key: rec.key.clone(),
                    value: read_back(plan.sink_format, rec.payload.as_deref().unwrap_or_default()),
                    timestamp: rec.timestamp,
                });
            }
            return;
        }
        let raw = RawMessage {
            key: rec.key.as_deref(),
            payload: rec.payload.as_deref(),
            timestamp: rec.timestamp,
        };
        let decoded = plan.decoder.decode(raw, origin.clone());
        let (mut step, source, wm) = match decoded {
            Ok(r) => {
                let step = part.chain.process(r);
                (step, part.source.clone(), part.chain.watermark())
            }
            Err(e) => {
                let mut r = Record::new(Value::Null, Value::Null);
                r.origin = origin;
                r.timestamp = rec.timestamp;
                let err = RecordError {
                    stage: StageRef::Source,
                    message: e.to_string(),
                    record: r,
                    input: true,
                };
                self.note_error(&err);
                let mut counts = StepCounts::default();
                let mut msgs = Vec::new();
                handle_error(plan, err, original, &mut msgs, &mut counts);
                self.produce(&counts, msgs);
                return;
            }
        };
        let crossing = std::mem::take(&mut step.repartition);
        self.step(step, original, &format!("input[{index}]"));
        if self.run.stopped.is_some() {
            return;
        }
        // The repartition records, then this partition's watermark marker.
        let forward = plan.repartition.as_ref().is_some_and(|r| r.forward_payload);
        for r in crossing {
            let bytes = if forward {
                rec.payload.as_deref()
            } else {
                None
            };
            self.cross(&r, &source, bytes);
            if self.run.stopped.is_some() {
                return;
            }
        }
        if wm > i64::MIN {
            if let Some(ds) = self.downstream.as_mut() {
                repartition::note_marker(&mut ds.upstream, &source, wm);
                let target = repartition::watermark(&ds.sources, &ds.upstream);
                let step = ds.chain.advance_watermark(target);
                self.step(step, NO_ORIGINAL, "");
            }
        }
    }

    /// A record crossing the repartition topic, read back as the runtime's
    /// `repartition::read` does.
    fn cross(&mut self, rec: &Record, source: &str, payload: Option<&[u8]>) {
        let msg = repartition::record(rec, source, payload);
        let decoded = repartition::decode(
            msg.key.as_deref().unwrap_or_default(),
            &msg.payload,
            msg.timestamp,
            rec.time_error.clone(),
            rec.origin.clone(),
        );
        let (Some(r), Some(ds)) = (decoded, self.downstream.as_mut()) else {
            return; // the runtime ignores such a record too (cannot happen: weir wrote it)
        };
        if !repartition::first_time(&mut ds.upstream, source, r.origin.offset) {
            return;
        }
        let step = ds.chain.process(r);
        let original = Original {
            key: msg.key.as_deref(),
            payload: Some(&msg.payload),
            timestamp: msg.timestamp,
        };
        let who = self.who(&rec.origin);
        self.step(step, original, &who);
    }

    /// End of input: flush every source partition, then the repartition's
    /// partition. (No window runs before a repartition: a plan refuses it,
    /// so a flush upstream of it sends nothing across.)
    fn finish(&mut self) {
        for i in 0..self.parts.len() {
            let step = self.parts[i].chain.flush();
            self.step(step, NO_ORIGINAL, "");
            if self.run.stopped.is_some() {
                return;
            }
        }
        if let Some(ds) = self.downstream.as_mut() {
            let step = ds.chain.flush();
            self.step(step, NO_ORIGINAL, "");
        }
    }

    /// Notes, routes and produces the records of one step; `who` names its
    /// input record (`input[3]`) in notes.
    fn step(&mut self, step: StepResult, original: Original<'_>, who: &str) {
        if self.run.stopped.is_some() {
            return;
        }
        if step.outcome == Some(Outcome::Filtered) {
            let by = match step.filtered_by {
                Some(StageRef::Sinks) | None => "matched no sink's `when`".to_owned(),
                Some(s) => format!("filtered by {}", self.label(s)),
            };
            self.run.notes.push(format!("{who}: {by}"));
        }
        if let Some((stage, rec, dlq)) = &step.late {
            let fate = if *dlq {
                format!("sent to {}", self.plan.dlq_topic)
            } else {
                "dropped".to_owned()
            };
            let line = format!(
                "{}: late for {} (its windows had closed); {fate}",
                self.who(&rec.origin),
                self.label(*stage)
            );
            self.run.notes.push(line);
        }
        for e in &step.errors {
            self.note_error(e);
        }
        let mut msgs = Vec::new();
        let counts = collect(self.plan, step, original, &mut msgs);
        self.produce(&counts, msgs);
    }

    /// Produces `msgs`, or stops the run for `errors.policy: fail`.
    fn produce(&mut self, counts: &StepCounts, msgs: Vec<OutMsg>) {
        if let Some(f) = &counts.fail {
            self.run.stopped = Some(format!("the pipeline stopped (errors.policy: fail): {f}"));
            return;
        }
        for m in msgs {
            let topic = match m.dest {
                Dest::Sink(i) => self.plan.sinks[i].topic.clone(),
                Dest::Dlq => self.plan.dlq_topic.clone(),
                Dest::Repartition(_) => continue, // `collect` makes none
            };
            self.run.outputs.push(Output {
                topic,
                key: m.key,
                value: read_back(self.plan.sink_format, &m.payload),
                timestamp: m.timestamp,
            });
        }
    }

    /// Notes a record error; not with `errors.policy: fail`, whose error
    /// is [`Run::stopped`].
    fn note_error(&mut self, e: &RecordError) {
        let fate = match self.plan.error_policy {
            ErrorPolicy::Skip => "skipped (errors.policy: skip)".to_owned(),
            ErrorPolicy::Dlq => format!("sent to {}", self.plan.dlq_topic),
            ErrorPolicy::Fail => return,
        };
        let who = if e.input {
            self.who(&e.record.origin)
        } else {
            "a window result".to_owned()
        };
        let line = format!(
            "{who}: error in {}: {}; {fate}",
            self.label(e.stage),
            e.message
        );
        self.run.notes.push(line);
    }

    /// `input[i]` for a record from source coordinates `o`, `i` being its
    /// index in the case.
    fn who(&self, o: &Origin) -> String {
        self.parts
            .get(&*o.topic)
            .and_then(|p| p.inputs.get(usize::try_from(o.offset).ok()?))
            .map_or_else(|| "a record".to_owned(), |i| format!("input[{i}]"))
    }

    fn label(&self, s: StageRef) -> String {
        s.label(&self.plan.stages, &self.plan.sinks)
    }
}

/// No original message: window results closed by a watermark or a flush.
const NO_ORIGINAL: Original<'static> = Original {
    key: None,
    payload: None,
    timestamp: 0,
};

/// A produced payload read back in the pipeline's format.
fn read_back(format: Format, payload: &[u8]) -> Value {
    match format {
        Format::Json => serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned())),
        Format::Text | Format::Bytes => {
            Value::String(String::from_utf8_lossy(payload).into_owned())
        }
    }
}
