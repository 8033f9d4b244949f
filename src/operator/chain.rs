//! The per-partition chain of stages and sinks, driven record by record in
//! offset order (DESIGN.md §3): for each record, (1) late check, (2) add to
//! windows, (3) advance the watermark, (4) close and emit the windows the
//! watermark passed. Window results continue through the stages after their
//! window and are routed to every sink whose `when` matches.

use super::filter::Filter;
use super::key_by::KeyBy;
use super::transform::Transform;
use super::window::watermark::Watermark;
use super::window::{AddOutcome, FirstSeen, WindowDef, WindowOperator};
use crate::expr::{CelEnv, CelExpr};
use crate::record::Record;
use cel::Context;
use std::sync::Arc;

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
}

impl Stage {
    /// Label used in metrics, logs and DLQ headers: `<index>:<kind>`.
    pub fn label(index: usize, stage: &Stage) -> String {
        let kind = match stage {
            Stage::Filter(_) => "filter",
            Stage::Transform(_) => "transform",
            Stage::KeyBy(_) => "key_by",
            Stage::Window(_) => "window",
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
    /// Oldest first-seen marker of the windows closed by this record.
    pub closed: Option<FirstSeen>,
    /// The stage that filtered the input record ([`StageRef::Sinks`] when no sink matched).
    pub filtered_by: Option<StageRef>,
}

/// The stages and sinks of one pipeline, instantiated for one partition.
pub struct Chain {
    stages: Arc<Vec<Stage>>,
    windows: Vec<Option<WindowOperator>>,
    sinks: Arc<Vec<Sink>>,
    root: Context<'static, 'static>,
    watermark: Watermark,
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
        Chain {
            stages,
            windows,
            sinks,
            root: env.root(),
            watermark: Watermark::new(max_out_of_orderness),
        }
    }

    /// Resumes from a checkpoint: the watermark as it stood before the
    /// resume offset, and the watermark through which window results were
    /// emitted and acknowledged.
    pub fn restore(&mut self, max_out_of_orderness: i64, watermark: i64, emitted_through: i64) {
        self.watermark = Watermark::restored(max_out_of_orderness, watermark);
        for w in self.windows.iter_mut().flatten() {
            w.set_emitted_through(emitted_through);
        }
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

    /// The oldest first-seen marker over all open windows.
    pub fn oldest_open(&self) -> Option<FirstSeen> {
        self.windows
            .iter()
            .flatten()
            .filter_map(WindowOperator::oldest_open)
            .min()
    }

    /// Processes one input record (its `event_time` already set).
    pub fn process(&mut self, rec: Record) -> StepResult {
        let mut res = StepResult::default();
        let wm_before = self.watermark.current();
        let event_time = rec.time_error.is_none().then_some(rec.event_time);
        let outcome = self.run_from(0, rec, wm_before, true, &mut res);
        res.outcome = Some(outcome);
        if event_time.is_some_and(|t| self.watermark.observe(t)) {
            self.close_windows(self.watermark.current(), &mut res);
        }
        res
    }

    /// Closes every open window (end of input); results go to sinks.
    pub fn flush(&mut self) -> StepResult {
        let mut res = StepResult::default();
        self.close_windows(i64::MAX, &mut res);
        res
    }

    fn close_windows(&mut self, wm: i64, res: &mut StepResult) {
        for i in 0..self.windows.len() {
            let mut out = Vec::new();
            let Some(op) = self.windows[i].as_mut() else {
                continue;
            };
            if let Some(first) = op.close(wm, &mut out) {
                res.closed = Some(res.closed.map_or(first, |c| c.min(first)));
            }
            for r in out {
                self.run_from(i + 1, r, wm, false, res);
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
        for (i, stage) in stages.iter().enumerate().skip(from) {
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
                Stage::Transform(t) => t.apply(&self.root, &mut rec),
                Stage::KeyBy(k) => k.apply(&self.root, &mut rec),
                Stage::Window(_) => {
                    let op = self.windows[i]
                        .as_mut()
                        .expect("a window stage has an operator");
                    match op.add(&self.root, &rec, wm) {
                        Ok(AddOutcome::Added) => return Outcome::Out,
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
