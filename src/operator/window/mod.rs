//! The `window` stage: per-key tumbling, hopping and session windows with
//! aggregates, closed by the partition watermark (DESIGN.md §3), emitting
//! `final`, `update` or `{every: D}` results.
//!
//! State (`store`) holds each key once, in a table of numeric key ids
//! (`keys`), and the open windows in a slab of numeric slots; a key's
//! windows are a list by start (a record finds its window with one hash of
//! its key; a key's sessions are a sorted range), and an index by close
//! time (`index`) makes closing a pop from the front. Windows that close
//! at one watermark come out by key text and start, sorted at close, off
//! the per-record path. Every change is remembered until
//! [`WindowOperator::take_changes`] hands it to the runtime for the
//! changelog (`changes`); [`WindowOperator::restore`] puts a changelog
//! entry back. Adding a record is in `aligned` and `session`, results
//! in `emit`.

pub mod aggregate;
mod aligned;
pub mod assigner;
mod changes;
mod emit;
mod index;
mod keys;
mod session;
pub mod state;
mod store;
pub mod watermark;

use crate::expr::ExprError;
use crate::record::Record;
use crate::spec::LatePolicy;
use aggregate::{AggSpec, AggState, AggValue};
use assigner::Assigner;
use cel::Context;
pub use state::{ChangeRef, StateChange, WindowEntry, WindowEntryRef};
use std::sync::Arc;
use store::Store;

/// Which windows a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Epoch-aligned tumbling (`advance == size`) or hopping windows.
    Aligned(Assigner),
    /// Session windows (Flink's merging sessions): a record at `t` opens
    /// `[t, t + gap)`; a key's sessions that overlap or touch merge. `gap` in ms.
    Session {
        /// Inactivity gap, ms (> 0).
        gap: i64,
    },
}

/// When a window emits results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// Once, when the window closes.
    Final,
    /// On every change, a full result with the same key and window; nothing
    /// more at close (the last update is the final result).
    Update,
    /// Early results whenever the watermark passes a multiple of this many
    /// ms of event time (epoch-aligned, as Flink's
    /// `ContinuousEventTimeTrigger`) and the window changed since its last
    /// result, then the final result at close.
    Every(i64),
}

/// A compiled window stage.
#[derive(Debug, Clone)]
pub struct WindowDef {
    /// Window assignment.
    pub kind: WindowKind,
    /// How long after its end a window still accepts records, ms.
    pub allowed_lateness: i64,
    /// Aggregates in output order.
    pub aggregates: Vec<AggSpec>,
    /// What happens to late records.
    pub late: LatePolicy,
    /// When results are emitted.
    pub emit: EmitMode,
}

impl WindowDef {
    /// Watermark (ms) at which a window ending (exclusive) at `end` closes.
    fn closes_at(&self, end: i64) -> i64 {
        end.saturating_add(self.allowed_lateness)
    }
}

/// What happened to a record given to [`WindowOperator::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Added to at least one window.
    Added,
    /// Every window it belongs to is closed.
    Late,
}

/// The per-partition instance of a window stage.
#[derive(Debug, Clone)]
pub struct WindowOperator {
    def: Arc<WindowDef>,
    store: Store,
    /// The argument values of the record being added (reused).
    values: Vec<AggValue>,
    /// The slots of the sessions a record merges (reused).
    merging: Vec<u32>,
    /// Results are written straight to JSON bytes ([`emit::writes_bytes`]).
    bytes_results: bool,
}

impl WindowOperator {
    /// An operator with no open windows.
    pub fn new(def: Arc<WindowDef>) -> Self {
        let aligned = matches!(def.kind, WindowKind::Aligned(_));
        WindowOperator {
            store: Store::new(aligned, def.allowed_lateness),
            values: Vec::new(),
            merging: Vec::new(),
            bytes_results: false,
            def,
        }
    }

    /// Has results carry their payload as JSON bytes (`Record::lazy`, in
    /// the exact text the JSON map gives, `Record::value` left null) when
    /// `on` and the aggregate names allow it (none is `key` or `window` or
    /// needs escapes); else (the default) results hold a JSON map in
    /// `Record::value`. Building no map saves most of a result's cost; read
    /// results with `Record::json`.
    pub fn results_as_bytes(&mut self, on: bool) {
        self.bytes_results = on && emit::writes_bytes(&self.def);
    }

    /// The stage definition.
    pub fn def(&self) -> &WindowDef {
        &self.def
    }

    /// Number of open windows.
    pub fn open_windows(&self) -> usize {
        self.store.open()
    }

    /// Number of distinct keys held: those with an open window or a removal
    /// not yet handed to the changelog, and those idle since the last two
    /// rounds of closing windows.
    pub fn open_keys(&self) -> usize {
        self.store.keys.len()
    }

    /// Estimated bytes held by the open windows (windows, aggregate states,
    /// keys, stored once, and every index).
    pub fn approx_bytes(&self) -> usize {
        self.store.approx_bytes()
    }

    /// Adds `rec` (at event time `rec.event_time`) to its windows, given the
    /// watermark `wm` as it stood before this record. Results of
    /// `emit: update` are appended to `out`.
    ///
    /// # Errors
    /// [`ExprError`] when an aggregate argument fails or has the wrong type;
    /// no window is changed then.
    pub fn add(
        &mut self,
        root: &Context<'static, 'static>,
        rec: &Record,
        wm: i64,
        out: &mut Vec<Record>,
    ) -> Result<AddOutcome, ExprError> {
        if let Some(e) = &rec.time_error {
            return Err(ExprError {
                expr: "event_time".into(),
                message: e.to_string(),
            });
        }
        match self.def.kind {
            WindowKind::Aligned(a) => self.add_aligned(a, root, rec, wm, out),
            WindowKind::Session { gap } => self.add_session(gap, root, rec, wm, out),
        }
    }

    /// The watermark moved from `from` to `to`: closes every window that
    /// closes at or before `to`, oldest first (then by key text and start),
    /// appending its final result to `out` (not under `emit: update`),
    /// then, under `emit: {every: D}`, appends an early result of every open
    /// window that changed since its last result when a multiple of D lies
    /// in `(from, to]`. Returns the number of windows closed.
    pub fn advance(&mut self, from: i64, to: i64, out: &mut Vec<Record>) -> usize {
        let closed = self.close_until(to, out);
        if let EmitMode::Every(d) = self.def.emit {
            if from < to && to.div_euclid(d) != from.div_euclid(d) {
                self.early_results(out);
            }
        }
        closed
    }

    /// Closes every open window (end of input in `weir dev` and `weir test`),
    /// appending final results as [`WindowOperator::advance`] does.
    pub fn flush(&mut self, out: &mut Vec<Record>) -> usize {
        self.close_until(i64::MAX, out)
    }

    fn close_until(&mut self, to: i64, out: &mut Vec<Record>) -> usize {
        let mut closed = 0;
        while let Some(due) = self.store.pop_due(to) {
            closed += due.len();
            for w in due {
                if self.def.emit != EmitMode::Update {
                    out.push(emit::result(
                        &self.def,
                        &self.store.keys,
                        &w,
                        self.bytes_results,
                    ));
                }
                self.store.keys.release(w.key);
            }
        }
        if closed > 0 {
            self.store.keys.sweep();
        }
        closed
    }
}

/// Evaluates the aggregates' arguments for `rec` into `values`.
fn eval_values(
    def: &WindowDef,
    root: &Context<'static, 'static>,
    rec: &Record,
    values: &mut Vec<AggValue>,
) -> Result<(), ExprError> {
    values.clear();
    for a in &def.aggregates {
        values.push(a.arg_value(root, rec)?);
    }
    Ok(())
}

/// Fresh states, one per aggregate.
fn empty_aggs(def: &WindowDef) -> Box<[AggState]> {
    def.aggregates.iter().map(AggState::new).collect()
}

/// Folds one record's `values` (at event time `t`) into `aggs`.
fn fold(
    specs: &[AggSpec],
    aggs: &mut [AggState],
    values: &[AggValue],
    t: i64,
) -> Result<(), ExprError> {
    for ((state, spec), v) in aggs.iter_mut().zip(specs).zip(values) {
        state.try_add(spec, v, t).map_err(|e| agg_error(spec, e))?;
    }
    Ok(())
}

/// Whether `values` fold into `aggs` without error ([`AggState::check`]).
fn check(specs: &[AggSpec], aggs: &[AggState], values: &[AggValue]) -> Result<(), ExprError> {
    for ((state, spec), v) in aggs.iter().zip(specs).zip(values) {
        state.try_check(v).map_err(|e| agg_error(spec, e))?;
    }
    Ok(())
}

/// An aggregate's error as the record error of its argument expression.
fn agg_error(spec: &AggSpec, e: aggregate::AggError) -> ExprError {
    ExprError::new(spec.arg.as_ref().map_or("", |a| a.source()), e.to_string())
}

#[cfg(test)]
mod perf_tests;
#[cfg(test)]
mod tests;
