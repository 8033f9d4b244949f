//! Runs one `weir test` case with no broker, through the runtime's own
//! per-record path ([`PartitionProcessor`]) with the Kafka client taken out.
//!
//! Each input topic is one source partition with its own processor. With a
//! repartition (a `key_by` before a window), the stages after it run on one
//! more processor standing for the repartition topic: the records cross it
//! as [`repartition::record`] writes them and [`repartition::read_out`]
//! reads them back (event time as the Kafka timestamp, the source headers
//! gone), and after every input record its partition's watermark crosses
//! as a marker (the downstream watermark is the minimum over the input
//! topics, as in the runtime).
//! At the end of input every chain is flushed, source partitions first,
//! closing every open window as `weir dev` does.

use super::{Case, InputRecord};
use crate::operator::chain::{Outcome, StageRef, StepResult};
use crate::plan::Plan;
use crate::record::Origin;
use crate::runtime::output::{Dest, Original, OutMsg, StepCounts};
use crate::runtime::processor::{PartitionProcessor, SourceMessage};
use crate::runtime::repartition::{self, Incoming};
use crate::spec::{ErrorPolicy, Format};
use indexmap::IndexMap;
use serde_json::Value;

mod tables;

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
    /// The runtime's per-record path for `topic/0`.
    proc: PartitionProcessor,
    /// Case input index of each offset.
    inputs: Vec<usize>,
}

/// The repartition topic, as one partition.
struct Downstream {
    /// The runtime's per-record path for the stages after the repartition.
    proc: PartitionProcessor,
    /// Every source partition of the case (`topic/0`).
    sources: Vec<String>,
}

/// What a step showed that the notes tell: seen by the processor's
/// observer, turned into lines once the step is done.
enum Seen {
    /// Filtered by this stage (`Sinks` or `None`: matched no sink).
    Filtered(Option<StageRef>),
    /// Late for this window stage; whether it went to the DLQ.
    Late(StageRef, Origin, bool),
    /// A record error: stage, message, the record's origin, whether it is
    /// the input record's own.
    Error(StageRef, String, Origin, bool),
}

fn observer(seen: &mut Vec<Seen>) -> impl FnMut(&StepResult) + '_ {
    move |step: &StepResult| {
        if step.outcome == Some(Outcome::Filtered) {
            seen.push(Seen::Filtered(step.filtered_by));
        }
        if let Some((stage, rec, dlq)) = &step.late {
            seen.push(Seen::Late(*stage, rec.origin.clone(), *dlq));
        }
        for e in &step.errors {
            seen.push(Seen::Error(
                e.stage,
                e.message.clone(),
                e.record.origin.clone(),
                e.input,
            ));
        }
    }
}

struct Harness<'a> {
    plan: &'a Plan,
    parts: IndexMap<String, Partition>,
    downstream: Option<Downstream>,
    run: Run,
    /// The next offset of each table's topic (one partition).
    table_offsets: Vec<i64>,
    /// Case input index of each offset of a stream-stream join's right
    /// stream topics.
    right_inputs: std::collections::HashMap<String, Vec<usize>>,
}

/// Runs `case` through `plan` (see the module doc). Never fails: record
/// errors are routed by `errors.policy` and noted; `fail` stops the run
/// ([`Run::stopped`]).
pub fn run(plan: &Plan, case: &Case) -> Run {
    let is_table =
        |t: &str| plan.tables.iter().any(|d| d.topic == t) || plan.stream_join_of(t).is_some();
    let mut sources: Vec<String> = Vec::new();
    for r in case.input.iter().filter(|r| !is_table(&r.topic)) {
        let s = format!("{}/0", r.topic);
        if !sources.contains(&s) {
            sources.push(s);
        }
    }
    // A case of table records only still reads them through a partition
    // (their own errors are reported through the first one).
    if sources.is_empty() {
        if let Some(first) = plan.topics.first() {
            sources.push(format!("{first}/0"));
        }
    }
    let mut h = Harness {
        plan,
        // Every source partition from the start, in the order its topic
        // first appears: each is to see every table record.
        parts: sources
            .iter()
            .map(|s| {
                let topic = s.strip_suffix("/0").unwrap_or(s).to_owned();
                let proc = PartitionProcessor::new(plan, &topic, 0);
                (
                    topic,
                    Partition {
                        proc,
                        inputs: Vec::new(),
                    },
                )
            })
            .collect(),
        downstream: plan.repartition.as_ref().map(|r| Downstream {
            proc: PartitionProcessor::new(plan, &r.topic, 0),
            sources,
        }),
        run: Run::default(),
        table_offsets: vec![0; plan.tables.len()],
        right_inputs: std::collections::HashMap::new(),
    };
    for (i, rec) in case.input.iter().enumerate() {
        match plan.tables.iter().position(|d| d.topic == rec.topic) {
            Some(t) => h.table(i, t, rec),
            None if plan.stream_join_of(&rec.topic).is_some() => h.stream_right(i, rec),
            None => h.input(i, rec),
        }
        if h.run.stopped.is_some() {
            return h.run;
        }
    }
    h.finish();
    h.run
}

impl Harness<'_> {
    /// Feeds input record `index`.
    fn input(&mut self, index: usize, rec: &InputRecord) {
        let plan = self.plan;
        let part = self
            .parts
            .entry(rec.topic.clone())
            .or_insert_with(|| Partition {
                proc: PartitionProcessor::new(plan, &rec.topic, 0),
                inputs: Vec::new(),
            });
        let m = SourceMessage {
            offset: part.inputs.len() as i64,
            key: rec.key.as_deref(),
            payload: rec.payload.as_deref(),
            timestamp: rec.timestamp,
        };
        part.inputs.push(index);
        let (mut out, mut seen) = (Vec::new(), Vec::new());
        let counts = part
            .proc
            .source(plan, m, Vec::new, &mut out, &mut observer(&mut seen));
        let (source, wm) = (part.proc.source.clone(), part.proc.chain.watermark());
        self.stepped(index, &source, wm, &counts, out, seen);
    }

    /// Notes and produces what input record `index` caused on source
    /// partition `source` (watermark `wm` after it), then sends across
    /// the repartition topic what crosses it.
    fn stepped(
        &mut self,
        index: usize,
        source: &str,
        wm: i64,
        counts: &StepCounts,
        out: Vec<OutMsg>,
        seen: Vec<Seen>,
    ) {
        let (crossing, out): (Vec<OutMsg>, Vec<OutMsg>) = out
            .into_iter()
            .partition(|m| matches!(m.dest, Dest::Repartition(_)));
        self.notes(seen, &format!("input[{index}]"));
        self.produce(counts, out);
        if self.run.stopped.is_some() {
            return;
        }
        self.send_across(source, wm, crossing);
    }

    /// Feeds input record `index`, a record of a stream-stream join's right
    /// stream, to the join stage of the first source partition (a case's
    /// left records are those of its source topic; the runtime would
    /// co-partition both sides by key).
    fn stream_right(&mut self, index: usize, rec: &InputRecord) {
        let plan = self.plan;
        let Some(def) = plan.stream_join_of(&rec.topic) else {
            return;
        };
        let inputs = self.right_inputs.entry(rec.topic.clone()).or_default();
        let m = SourceMessage {
            offset: inputs.len() as i64,
            key: rec.key.as_deref(),
            payload: rec.payload.as_deref(),
            timestamp: rec.timestamp,
        };
        inputs.push(index);
        let Some(part) = self.parts.get_index_mut(0).map(|(_, p)| p) else {
            return;
        };
        let (mut out, mut seen) = (Vec::new(), Vec::new());
        let counts = part.proc.stream_right(
            plan,
            def,
            &rec.topic,
            0,
            m,
            &mut out,
            &mut observer(&mut seen),
        );
        let (source, wm) = (part.proc.source.clone(), part.proc.chain.watermark());
        self.stepped(index, &source, wm, &counts, out, seen);
    }

    /// The repartition records of source partition `source`, then its
    /// watermark marker (`wm`), read back as the runtime reads them.
    fn send_across(&mut self, source: &str, wm: i64, crossing: Vec<OutMsg>) {
        for msg in crossing {
            self.cross(&msg);
            if self.run.stopped.is_some() {
                return;
            }
        }
        if wm > i64::MIN && self.downstream.is_some() {
            self.cross(&repartition::marker(source, wm, 0, false));
        }
    }

    /// A message crossing the repartition topic.
    fn cross(&mut self, msg: &OutMsg) {
        let (Some(incoming), Some(ds)) = (repartition::read_out(msg), self.downstream.as_mut())
        else {
            return; // the runtime ignores such a record too (cannot happen: weir wrote it)
        };
        let who = match &incoming {
            Incoming::Record(r, _) => Some(r.origin.clone()),
            _ => None,
        };
        let original = Original {
            key: msg.key.as_deref(),
            payload: Some(&msg.payload),
            timestamp: msg.timestamp,
        };
        let (mut out, mut seen) = (Vec::new(), Vec::new());
        let counts = ds.proc.downstream(
            self.plan,
            incoming,
            original,
            &ds.sources,
            &mut out,
            &mut observer(&mut seen),
        );
        let who = who.map_or_else(String::new, |o| self.who(&o));
        self.notes(seen, &who);
        self.produce(&counts, out);
    }

    /// End of input: flush every source partition, then the repartition's
    /// partition. (No window runs before a repartition: a plan refuses it,
    /// so a flush upstream of it sends nothing across.)
    fn finish(&mut self) {
        self.tables_idle();
        if self.run.stopped.is_some() {
            return;
        }
        for i in 0..self.parts.len() {
            let (mut out, mut seen) = (Vec::new(), Vec::new());
            let counts = self.parts[i]
                .proc
                .flush(self.plan, &mut out, &mut observer(&mut seen));
            self.notes(seen, "");
            self.produce(&counts, out);
            if self.run.stopped.is_some() {
                return;
            }
        }
        if let Some(ds) = self.downstream.as_mut() {
            let (mut out, mut seen) = (Vec::new(), Vec::new());
            let counts = ds.proc.flush(self.plan, &mut out, &mut observer(&mut seen));
            self.notes(seen, "");
            self.produce(&counts, out);
        }
    }

    /// Notes what a step showed; `who` names its input record (`input[3]`).
    fn notes(&mut self, seen: Vec<Seen>, who: &str) {
        if self.run.stopped.is_some() {
            return;
        }
        for s in seen {
            let line = match s {
                Seen::Filtered(by) => {
                    let by = match by {
                        Some(StageRef::Sinks) | None => "matched no sink's `when`".to_owned(),
                        Some(s) => format!("filtered by {}", self.label(s)),
                    };
                    format!("{who}: {by}")
                }
                Seen::Late(stage, origin, dlq) => {
                    let fate = if dlq {
                        format!("sent to {}", self.plan.dlq_topic)
                    } else {
                        "dropped".to_owned()
                    };
                    let why = match stage {
                        StageRef::Stage(i)
                            if matches!(
                                self.plan.stages[i],
                                crate::operator::Stage::StreamJoin(_)
                            ) =>
                        {
                            "older than the join's watermark"
                        }
                        _ => "its windows had closed",
                    };
                    format!(
                        "{}: late for {} ({why}); {fate}",
                        self.who(&origin),
                        self.label(stage)
                    )
                }
                Seen::Error(stage, message, origin, input) => {
                    let fate = match self.plan.error_policy {
                        ErrorPolicy::Skip => "skipped (errors.policy: skip)".to_owned(),
                        ErrorPolicy::Dlq => format!("sent to {}", self.plan.dlq_topic),
                        ErrorPolicy::Fail => continue,
                    };
                    let who = if input {
                        self.who(&origin)
                    } else {
                        "a window result".to_owned()
                    };
                    format!("{who}: error in {}: {message}; {fate}", self.label(stage))
                }
            };
            self.run.notes.push(line);
        }
    }

    /// Produces `msgs`, or stops the run for `errors.policy: fail`.
    fn produce(&mut self, counts: &StepCounts, msgs: Vec<OutMsg>) {
        if self.run.stopped.is_some() {
            return;
        }
        if let Some(f) = &counts.fail {
            self.run.stopped = Some(format!("the pipeline stopped (errors.policy: fail): {f}"));
            return;
        }
        for m in msgs {
            let topic = match m.dest {
                Dest::Sink(i) => self.plan.sinks[i].topic.clone(),
                Dest::Dlq => self.plan.dlq_topic.clone(),
                Dest::Repartition(_) => continue,
            };
            self.run.outputs.push(Output {
                topic,
                key: m.key,
                value: read_back(self.plan.sink_format, &m.payload),
                timestamp: m.timestamp,
            });
        }
    }

    /// `input[i]` for a record from source coordinates `o`, `i` being its
    /// index in the case.
    fn who(&self, o: &Origin) -> String {
        self.parts
            .get(&*o.topic)
            .map(|p| &p.inputs)
            .or_else(|| self.right_inputs.get(&*o.topic))
            .and_then(|inputs| inputs.get(usize::try_from(o.offset).ok()?))
            .map_or_else(|| "a record".to_owned(), |i| format!("input[{i}]"))
    }

    fn label(&self, s: StageRef) -> String {
        s.label(&self.plan.stages, &self.plan.sinks)
    }
}

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
