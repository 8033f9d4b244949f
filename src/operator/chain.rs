//! The per-partition chain of stages and sinks, driven record by record in
//! offset order (DESIGN.md §3): for each record, (1) late check, (2) add to
//! windows, (3) advance the watermark, (4) close and emit the windows the
//! watermark passed. Window results continue through the stages after their
//! window and are routed to every sink whose `when` matches.

use super::filter::Filter;
use super::join::{IntervalJoin, IntervalJoinDef, TableJoin, VersionedTable};
use super::key_by::KeyBy;
use super::transform::Transform;
use super::window::watermark::Watermark;
use super::window::{AddOutcome, ChangeRef, StateChange, WindowDef, WindowEntry, WindowOperator};
use crate::expr::{CelEnv, CelExpr};
use crate::record::Record;
use cel::Context;
use std::sync::Arc;

mod streams;
mod tables;

/// A compiled stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `filter`.
    Filter(Filter),
    /// `transform`.
    Transform(Transform),
    /// `key_by`.
    KeyBy(KeyBy),
    /// `window`.
    Window(Arc<WindowDef>),
    /// `join` against a table (DESIGN.md §7).
    Join(Arc<TableJoin>),
    /// `join` against a second stream (DESIGN.md §7, an interval join).
    StreamJoin(Arc<IntervalJoinDef>),
}

impl Stage {
    /// Label used in metrics, logs and DLQ headers: `<index>:<kind>`.
    pub fn label(index: usize, stage: &Stage) -> String {
        let kind = match stage {
            Stage::Filter(_) => "filter",
            Stage::Transform(_) => "transform",
            Stage::KeyBy(_) => "key_by",
            Stage::Window(_) => "window",
            Stage::Join(_) | Stage::StreamJoin(_) => "join",
        };
        format!("{index}:{kind}")
    }
}

/// Where in a pipeline something happened; cheap to copy on the hot path,
/// turned into a label (`source`, `2:transform`, `sinks`, `sink:<topic>`)
/// only where text is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageRef {
    /// Decoding the source record.
    Source,
    /// The stage at this index.
    Stage(usize),
    /// Routing: the record matched no sink's `when`.
    Sinks,
    /// The sink at this index (its `when` or `key` failed).
    Sink(usize),
}

impl StageRef {
    /// The label of this place in a pipeline with `stages` and `sinks`.
    pub fn label(self, stages: &[Stage], sinks: &[Sink]) -> String {
        match self {
            StageRef::Source => "source".into(),
            StageRef::Stage(i) => Stage::label(i, &stages[i]),
            StageRef::Sinks => "sinks".into(),
            StageRef::Sink(i) => format!("sink:{}", sinks[i].topic),
        }
    }

    /// Every place of a pipeline, in order.
    pub fn all(stages: usize, sinks: usize) -> Vec<StageRef> {
        let mut v = vec![StageRef::Source];
        v.extend((0..stages).map(StageRef::Stage));
        v.push(StageRef::Sinks);
        v.extend((0..sinks).map(StageRef::Sink));
        v
    }

    /// Position of this place in [`StageRef::all`].
    pub fn index(self, stages: usize) -> usize {
        match self {
            StageRef::Source => 0,
            StageRef::Stage(i) => 1 + i,
            StageRef::Sinks => 1 + stages,
            StageRef::Sink(i) => 2 + stages + i,
        }
    }
}

/// A compiled sink.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Topic name.
    pub topic: String,
    /// Routing predicate.
    pub when: Option<CelExpr>,
    /// Output key expression.
    pub key: Option<CelExpr>,
}

/// What became of the input record itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed every stage: routed to a sink or aggregated into a window.
    Out,
    /// Dropped by a filter, or matched no sink's `when`.
    Filtered,
    /// Arrived for windows already closed.
    Late,
    /// Failed in a stage (see `StepResult::errors`).
    Error,
}

/// A record error: where it happened and why. `input` is true when it is
/// the input record's own error (DLQ gets the original bytes), false for a
/// window result failing in a later stage or sink (DLQ gets the result).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// Where it failed.
    pub stage: StageRef,
    /// What went wrong.
    pub message: String,
    /// The record as it was when it failed.
    pub record: Record,
    /// Whether this is the input record's own error.
    pub input: bool,
}

/// Everything one input record caused.
#[derive(Debug, Default)]
pub struct StepResult {
    /// The input record's fate; `None` only for [`Chain::flush`].
    pub outcome: Option<Outcome>,
    /// Records for sinks: (sink index, record).
    pub emits: Vec<(usize, Record)>,
    /// The input record when late (for the DLQ when `late: dlq`): its window stage, the record, and whether it goes to the DLQ.
    pub late: Option<(StageRef, Record, bool)>,
    /// Record errors.
    pub errors: Vec<RecordError>,
    /// Records for the repartition topic (the chain is the upstream segment
    /// of a repartitioned pipeline), keyed by their new key.
    pub repartition: Vec<Record>,
    /// The stage that filtered the input record ([`StageRef::Sinks`] when no sink matched).
    pub filtered_by: Option<StageRef>,
}

/// The stages and sinks of one pipeline (or of one segment of it, when a
/// repartition topic splits it), instantiated for one input partition.
pub struct Chain {
    stages: Arc<Vec<Stage>>,
    windows: Vec<Option<WindowOperator>>,
    sinks: Arc<Vec<Sink>>,
    root: Context<'static, 'static>,
    watermark: Watermark,
    /// First stage this chain runs.
    from: usize,
    /// Stage index where the segment ends in the repartition topic; `None`
    /// when it ends in the sinks.
    until: Option<usize>,
    /// The versions of every table a join stage reads, by table name, with
    /// the table's `history` in ms.
    tables: Vec<(String, VersionedTable, i64)>,
    /// The state of each stream-stream join stage, by stage index.
    intervals: Vec<Option<IntervalJoin>>,
    /// Per stage index: records a join stage matched and did not match
    /// since [`Chain::take_join_counts`] last ran.
    join_counts: Vec<[u64; 2]>,
}

impl Chain {
    /// A fresh chain; `max_out_of_orderness` in ms.
    pub fn new(
        env: &CelEnv,
        stages: Arc<Vec<Stage>>,
        sinks: Arc<Vec<Sink>>,
        max_out_of_orderness: i64,
    ) -> Self {
        let windows = stages
            .iter()
            .map(|s| match s {
                Stage::Window(d) => Some(WindowOperator::new(Arc::clone(d))),
                _ => None,
            })
            .collect();
        let intervals = stages
            .iter()
            .map(|s| match s {
                Stage::StreamJoin(d) => Some(IntervalJoin::new(Arc::clone(d))),
                _ => None,
            })
            .collect();
        Chain {
            intervals,
            stages,
            windows,
            sinks,
            root: env.root(),
            watermark: Watermark::new(max_out_of_orderness),
            from: 0,
            until: None,
            tables: Vec::new(),
            join_counts: Vec::new(),
        }
    }

    /// Has every window stage give results as JSON bytes
    /// ([`WindowOperator::results_as_bytes`]): a result's payload is then in
    /// `Record::lazy`, read through `Record::json`, and a sink copies its
    /// bytes instead of serialising a map.
    pub fn results_as_bytes(mut self) -> Self {
        for op in self.windows.iter_mut().flatten() {
            op.results_as_bytes(true);
        }
        self
    }

    /// Limits the chain to a segment: it runs stages `from..` and, with
    /// `until = Some(i)`, stops before stage `i`, handing records to the
    /// repartition topic instead of the sinks. A segment starting after a
    /// repartition (`from > 0`) takes its watermark from
    /// [`Chain::advance_watermark`] only.
    pub fn segment(mut self, from: usize, until: Option<usize>) -> Self {
        self.from = from;
        self.until = until;
        self
    }

    /// Resumes from a checkpoint: the watermark (ms) the restored state
    /// reflects.
    pub fn restore_watermark(&mut self, max_out_of_orderness: i64, watermark: i64) {
        self.watermark = Watermark::restored(max_out_of_orderness, watermark);
    }

    /// Puts back one window of the window stage at `stage` from the changelog.
    pub fn restore_window(&mut self, stage: usize, entry: WindowEntry) {
        if let Some(Some(op)) = self.windows.get_mut(stage) {
            op.restore(entry);
        }
    }

    /// See [`WindowOperator::mark_unconfirmed`].
    pub fn mark_unconfirmed(&mut self, stage: usize, key: &serde_json::Value, start: i64) {
        if let Some(Some(op)) = self.windows.get_mut(stage) {
            op.mark_unconfirmed(key, start);
        }
    }

    /// Every window change since the last call, by stage index.
    pub fn take_changes(&mut self) -> Vec<(usize, StateChange)> {
        let mut v = Vec::new();
        self.drain_changes(|i, c| v.push((i, c.to_owned_change())));
        v
    }

    /// Whether any window stage has changes to write.
    pub fn has_changes(&self) -> bool {
        self.windows
            .iter()
            .flatten()
            .any(WindowOperator::has_changes)
    }

    /// Hands every window stage's changes to `f` with the stage index,
    /// borrowed ([`WindowOperator::drain_changes`]).
    pub fn drain_changes(&mut self, mut f: impl FnMut(usize, ChangeRef<'_>)) {
        for (i, op) in self.windows.iter_mut().enumerate() {
            if let Some(op) = op {
                op.drain_changes(|c| f(i, c));
            }
        }
    }

    /// Indexes of the window stages this chain runs.
    pub fn window_stages(&self) -> Vec<usize> {
        let end = self.until.unwrap_or(self.stages.len());
        (self.from..end)
            .filter(|i| self.windows[*i].is_some())
            .collect()
    }

    /// Estimated bytes of window state.
    pub fn state_bytes(&self) -> usize {
        self.windows
            .iter()
            .flatten()
            .map(WindowOperator::approx_bytes)
            .sum()
    }

    /// Current watermark, ms (`i64::MIN` before the first event).
    pub fn watermark(&self) -> i64 {
        self.watermark.current()
    }

    /// Open windows over all window stages.
    pub fn open_windows(&self) -> usize {
        self.windows
            .iter()
            .flatten()
            .map(WindowOperator::open_windows)
            .sum()
    }

    /// Processes one input record (its `event_time` already set).
    pub fn process(&mut self, rec: Record) -> StepResult {
        let mut res = StepResult::default();
        let wm_before = self.watermark.current();
        let event_time = rec.time_error.is_none().then_some(rec.event_time);
        let outcome = self.run_from(self.from, rec, wm_before, true, &mut res);
        res.outcome = Some(outcome);
        // After a repartition (`from > 0`) the watermark comes from the
        // markers ([`Chain::advance_watermark`]), not from event times.
        if self.from == 0 && event_time.is_some_and(|t| self.watermark.observe(t)) {
            self.close_windows(wm_before, self.watermark.current(), &mut res);
        }
        res
    }

    /// Moves the watermark to `wm` ms if that is later (idle timeout, or
    /// the minimum over the upstream partitions' markers after a
    /// repartition), closing and firing windows as a record would.
    pub fn advance_watermark(&mut self, wm: i64) -> StepResult {
        let mut res = StepResult::default();
        let before = self.watermark.current();
        if wm > before {
            self.watermark = Watermark::restored(self.watermark.bound(), wm);
            self.close_windows(before, wm, &mut res);
        }
        res
    }

    /// Closes every open window and empties every stream-stream join (end
    /// of input), in stage order; results go to sinks.
    pub fn flush(&mut self) -> StepResult {
        let mut res = StepResult::default();
        for i in 0..self.windows.len() {
            let mut out = Vec::new();
            if let Some(op) = self.windows[i].as_mut() {
                op.flush(&mut out);
            } else if let Some(j) = self.intervals[i].as_mut() {
                j.flush(&mut out);
            }
            for r in out {
                self.run_from(i + 1, r, i64::MAX, false, &mut res);
            }
        }
        res
    }

    /// The watermark moved from `from` to `to`: windows close and
    /// stream-stream joins let go of what it passed, in stage order.
    fn close_windows(&mut self, from: i64, to: i64, res: &mut StepResult) {
        for i in 0..self.windows.len() {
            let mut out = Vec::new();
            if let Some(op) = self.windows[i].as_mut() {
                op.advance(from, to, &mut out);
            } else if let Some(j) = self.intervals[i].as_mut() {
                j.advance(to, &mut out);
            }
            for r in out {
                self.run_from(i + 1, r, to, false, res);
            }
        }
    }

    fn run_from(
        &mut self,
        from: usize,
        mut rec: Record,
        wm: i64,
        input: bool,
        res: &mut StepResult,
    ) -> Outcome {
        let stages = Arc::clone(&self.stages);
        let end = self.until.unwrap_or(stages.len());
        for (i, stage) in stages.iter().enumerate().take(end).skip(from) {
            let step = match stage {
                Stage::Filter(f) => match f.keep(&self.root, &rec) {
                    Ok(true) => Ok(()),
                    Ok(false) => {
                        if input {
                            res.filtered_by = Some(StageRef::Stage(i));
                        }
                        return Outcome::Filtered;
                    }
                    Err(e) => Err(e),
                },
                Stage::Join(j) => match self.join(i, j, &mut rec, input, res) {
                    Ok(true) => Ok(()),
                    Ok(false) => return Outcome::Filtered,
                    Err(e) => Err(e),
                },
                Stage::StreamJoin(_) => {
                    return self.stream_join_left(i, rec, wm, input, res);
                }
                Stage::Transform(t) => t.apply(&self.root, &mut rec),
                Stage::KeyBy(k) => k.apply(&self.root, &mut rec),
                Stage::Window(_) => {
                    let op = self.windows[i]
                        .as_mut()
                        .expect("a window stage has an operator");
                    let mut updates = Vec::new();
                    match op.add(&self.root, &rec, wm, &mut updates) {
                        Ok(AddOutcome::Added) => {
                            for r in updates {
                                self.run_from(i + 1, r, wm, false, res);
                            }
                            return Outcome::Out;
                        }
                        Ok(AddOutcome::Late) => {
                            let dlq = op.def().late == crate::spec::LatePolicy::Dlq;
                            res.late = Some((StageRef::Stage(i), rec, dlq));
                            return Outcome::Late;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = step {
                res.errors.push(RecordError {
                    stage: StageRef::Stage(i),
                    message: e.to_string(),
                    record: rec,
                    input,
                });
                return Outcome::Error;
            }
        }
        if self.until.is_some() {
            res.repartition.push(rec);
            return Outcome::Out;
        }
        self.route(rec, input, res)
    }

    /// Evaluates every sink's `when` and `key` first (all or nothing: a
    /// failing sink expression routes the record nowhere), then hands the
    /// record to the matching sinks, cloning it only for all but the last.
    fn route(&mut self, mut rec: Record, input: bool, res: &mut StepResult) -> Outcome {
        let mut matches: Vec<(usize, Option<serde_json::Value>)> =
            Vec::with_capacity(self.sinks.len());
        for (i, sink) in self.sinks.iter().enumerate() {
            let decided = match &sink.when {
                None => Ok(true),
                Some(w) => w.eval_bool(&self.root, &rec),
            }
            .and_then(|yes| match (&sink.key, yes) {
                (_, false) => Ok(None),
                (None, true) => Ok(Some(None)),
                (Some(k), true) => k.eval_json(&self.root, &rec).map(|j| Some(Some(j))),
            });
            match decided {
                Ok(Some(key)) => matches.push((i, key)),
                Ok(None) => {}
                Err(e) => {
                    res.errors.push(RecordError {
                        stage: StageRef::Sink(i),
                        message: e.to_string(),
                        record: rec,
                        input,
                    });
                    return Outcome::Error;
                }
            }
        }
        let Some((last, last_key)) = matches.pop() else {
            if input {
                res.filtered_by = Some(StageRef::Sinks);
            }
            return Outcome::Filtered;
        };
        for (i, key) in matches {
            let mut out = rec.clone();
            if let Some(k) = key {
                out.key = k;
            }
            res.emits.push((i, out));
        }
        if let Some(k) = last_key {
            rec.key = k;
        }
        res.emits.push((last, rec));
        Outcome::Out
    }
}
