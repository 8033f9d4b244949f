//! The `window` stage: per-key tumbling, hopping and session windows with
//! aggregates, closed by the partition watermark (DESIGN.md §3), emitting
//! `final`, `update` or `{every: D}` results.
//!
//! State is a map by (key, window start) plus an index by closing
//! watermark, so closing is a pop from the front and a key's sessions are a
//! range. Every change is remembered until [`WindowOperator::take_changes`]
//! hands it to the runtime for the changelog; [`WindowOperator::restore`]
//! puts a changelog entry back.

pub mod aggregate;
pub mod assigner;
pub mod state;
pub mod watermark;

use crate::expr::ExprError;
use crate::record::Record;
use crate::spec::LatePolicy;
use aggregate::{AggSpec, AggState, AggValue};
use assigner::Assigner;
use cel::Context;
use serde_json::{Map, Value};
pub use state::{ChangeRef, StateChange, WindowEntry, WindowEntryRef};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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

#[derive(Debug, Clone)]
struct OpenWindow {
    key: Value,
    end: i64,
    aggs: Vec<AggState>,
    /// Changed since its last early result (`emit: {every}`).
    changed: bool,
    /// Changed since the last [`WindowOperator::take_changes`].
    dirty: bool,
    /// Has an entry in the changelog (a removal needs a tombstone).
    persisted: bool,
}

type Id = (String, i64);

/// The per-partition instance of a window stage.
#[derive(Debug, Clone)]
pub struct WindowOperator {
    def: Arc<WindowDef>,
    windows: BTreeMap<Id, OpenWindow>,
    closing: BTreeSet<(i64, String, i64)>,
    /// Windows made dirty since the last `drain_changes` (an upper bound:
    /// a dirty window may have closed since); 0 when none.
    dirty: usize,
    /// Persisted windows removed since the last `take_changes`.
    removed: Vec<Id>,
}

impl WindowOperator {
    /// An operator with no open windows.
    pub fn new(def: Arc<WindowDef>) -> Self {
        WindowOperator {
            def,
            windows: BTreeMap::new(),
            closing: BTreeSet::new(),
            dirty: 0,
            removed: Vec::new(),
        }
    }

    /// The stage definition.
    pub fn def(&self) -> &WindowDef {
        &self.def
    }

    /// Number of open windows.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Estimated bytes held by the open windows (keys, bounds, aggregate
    /// states and both indexes).
    pub fn approx_bytes(&self) -> usize {
        self.windows
            .iter()
            .map(|((k, _), w)| {
                2 * (k.len() + 48) + 96 + w.aggs.iter().map(AggState::approx_bytes).sum::<usize>()
            })
            .sum()
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

    fn values(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<Vec<AggValue>, ExprError> {
        self.def
            .aggregates
            .iter()
            .map(|a| a.arg_value(root, rec))
            .collect()
    }

    fn fold(&self, aggs: &mut [AggState], values: &[AggValue], t: i64) -> Result<(), ExprError> {
        fold(&self.def.aggregates, aggs, values, t)
    }

    /// Checks that `values` fold into the window `id` (or a new one).
    fn check(&self, id: &Id, values: &[AggValue]) -> Result<(), ExprError> {
        match self.windows.get(id) {
            Some(w) => check(&self.def.aggregates, &w.aggs, values),
            None => Ok(()),
        }
    }

    fn empty_aggs(&self) -> Vec<AggState> {
        self.def.aggregates.iter().map(AggState::new).collect()
    }

    fn add_aligned(
        &mut self,
        a: Assigner,
        root: &Context<'static, 'static>,
        rec: &Record,
        wm: i64,
        out: &mut Vec<Record>,
    ) -> Result<AddOutcome, ExprError> {
        let t = rec.event_time;
        let def = Arc::clone(&self.def);
        if def.closes_at(a.last_start(t) + a.size) <= wm {
            return Ok(AddOutcome::Late);
        }
        let values = self.values(root, rec)?;
        let mut id = (rec.key.to_string(), 0);
        // A hopping record can be partly late: only windows still open.
        let open = a
            .starts(t)
            .filter(|s| def.closes_at(s + a.size) > wm)
            .collect::<Vec<_>>();
        // A failing record changes no window: with several windows, check
        // them all first; with one (tumbling), check it where it is folded.
        let single = open.len() == 1;
        if !single {
            for s in &open {
                id.1 = *s;
                self.check(&id, &values)?;
            }
        }
        for s in open {
            id.1 = s;
            match self.windows.get_mut(&id) {
                Some(w) => {
                    if single {
                        check(&def.aggregates, &w.aggs, &values)?;
                    }
                    fold(&def.aggregates, &mut w.aggs, &values, t)?;
                    w.changed = true;
                    if !w.dirty {
                        w.dirty = true;
                        self.dirty += 1;
                    }
                    if def.emit == EmitMode::Update {
                        out.push(self.result(s, &self.windows[&id]));
                    }
                }
                None => {
                    let mut aggs = self.empty_aggs();
                    self.fold(&mut aggs, &values, t)?;
                    self.put(id.clone(), &rec.key, s + a.size, aggs, out);
                }
            }
        }
        Ok(AddOutcome::Added)
    }

    fn add_session(
        &mut self,
        gap: i64,
        root: &Context<'static, 'static>,
        rec: &Record,
        wm: i64,
        out: &mut Vec<Record>,
    ) -> Result<AddOutcome, ExprError> {
        let t = rec.event_time;
        let key_text = rec.key.to_string();
        let new_end = t.saturating_add(gap);
        // Open sessions of this key that overlap or touch [t, t + gap).
        let merging: Vec<i64> = self
            .windows
            .range((key_text.clone(), i64::MIN)..=(key_text.clone(), new_end))
            .filter(|(_, w)| w.end >= t)
            .map(|((_, s), _)| *s)
            .collect();
        if merging.is_empty() && self.def.closes_at(new_end) <= wm {
            return Ok(AddOutcome::Late);
        }
        let values = self.values(root, rec)?;
        let (mut start, mut end) = (t, new_end);
        for s in &merging {
            start = start.min(*s);
            end = end.max(self.windows[&(key_text.clone(), *s)].end);
        }
        let mut aggs = match merging.as_slice() {
            [] => self.empty_aggs(),
            [s] => {
                // The common case: the record extends one session.
                let id = (key_text.clone(), *s);
                self.check(&id, &values)?;
                let w = self
                    .windows
                    .get_mut(&id)
                    .expect("a merging session is open");
                std::mem::take(&mut w.aggs)
            }
            [first, rest @ ..] => {
                let mut acc = self.windows[&(key_text.clone(), *first)].aggs.clone();
                for s in rest {
                    let w = &self.windows[&(key_text.clone(), *s)];
                    for ((a, b), spec) in acc.iter_mut().zip(&w.aggs).zip(&self.def.aggregates) {
                        a.merge(spec, b).map_err(|m| agg_error(spec, m))?;
                    }
                }
                acc
            }
        };
        // Checked (one session) or folded into a copy (a merge): a failing
        // record changes no window.
        self.fold(&mut aggs, &values, t)?;
        // The merged session keeps the earliest start: a session that
        // already started there is updated in place, the others go.
        for s in merging {
            if s != start {
                self.remove(&(key_text.clone(), s));
            }
        }
        self.put((key_text, start), &rec.key, end, aggs, out);
        Ok(AddOutcome::Added)
    }

    /// Stores a window's new state, indexing it for closing, marking it
    /// changed, and emitting it under `emit: update`.
    fn put(&mut self, id: Id, key: &Value, end: i64, aggs: Vec<AggState>, out: &mut Vec<Record>) {
        let closes = self.def.closes_at(end);
        match self.windows.get_mut(&id) {
            Some(w) => {
                if w.end != end {
                    self.closing
                        .remove(&(self.def.closes_at(w.end), id.0.clone(), id.1));
                    self.closing.insert((closes, id.0.clone(), id.1));
                    w.end = end;
                }
                w.aggs = aggs;
                w.changed = true;
                if !w.dirty {
                    w.dirty = true;
                    self.dirty += 1;
                }
            }
            None => {
                self.closing.insert((closes, id.0.clone(), id.1));
                self.dirty += 1;
                self.windows.insert(
                    id.clone(),
                    OpenWindow {
                        key: key.clone(),
                        end,
                        aggs,
                        changed: true,
                        dirty: true,
                        persisted: false,
                    },
                );
            }
        }
        if self.def.emit == EmitMode::Update {
            let w = &self.windows[&id];
            out.push(self.result(id.1, w));
        }
    }

    fn remove(&mut self, id: &Id) -> Option<OpenWindow> {
        let w = self.windows.remove(id)?;
        self.closing
            .remove(&(self.def.closes_at(w.end), id.0.clone(), id.1));
        if w.persisted {
            self.removed.push(id.clone());
        }
        Some(w)
    }

    /// The watermark moved from `from` to `to`: closes every window that
    /// closes at or before `to`, oldest first, appending its final result
    /// to `out` (not under `emit: update`), then, under `emit: {every: D}`,
    /// appends an early result of every open window that changed since its
    /// last result when a multiple of D lies in `(from, to]`. Returns the
    /// number of windows closed.
    pub fn advance(&mut self, from: i64, to: i64, out: &mut Vec<Record>) -> usize {
        let mut closed = 0;
        while let Some((closes, k, s)) = self.closing.first().cloned() {
            if closes > to {
                break;
            }
            let id = (k, s);
            if let Some(w) = self.remove(&id) {
                closed += 1;
                if self.def.emit != EmitMode::Update {
                    out.push(self.result(s, &w));
                }
            }
        }
        if let EmitMode::Every(d) = self.def.emit {
            if from < to && to.div_euclid(d) != from.div_euclid(d) {
                let ids: Vec<Id> = self
                    .windows
                    .iter()
                    .filter(|(_, w)| w.changed)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in ids {
                    if let Some(w) = self.windows.get_mut(&id) {
                        w.changed = false;
                        if !w.dirty {
                            w.dirty = true;
                            self.dirty += 1;
                        }
                    }
                    out.push(self.result(id.1, &self.windows[&id]));
                }
            }
        }
        closed
    }

    /// Closes every open window (end of input in `weir dev` and `weir test`),
    /// appending final results as [`WindowOperator::advance`] does.
    pub fn flush(&mut self, out: &mut Vec<Record>) -> usize {
        let closed = self.closing.len();
        while let Some((_, k, s)) = self.closing.pop_first() {
            let id = (k, s);
            if let Some(w) = self.remove(&id) {
                if self.def.emit != EmitMode::Update {
                    out.push(self.result(s, &w));
                }
            }
        }
        closed
    }

    /// Whether [`WindowOperator::drain_changes`] has anything to hand out.
    pub fn has_changes(&self) -> bool {
        self.dirty > 0 || !self.removed.is_empty()
    }

    /// Hands every change since the last call to `f`, borrowed: a removal
    /// for each window that was handed out before and is gone now, then the
    /// state of each changed open window (in key order). Marks those windows
    /// as persisted. Nothing is cloned, so a commit of many windows costs
    /// no second copy of the state.
    pub fn drain_changes(&mut self, mut f: impl FnMut(ChangeRef<'_>)) {
        for id in std::mem::take(&mut self.removed) {
            if !self.windows.contains_key(&id) {
                f(ChangeRef::Remove {
                    key_text: &id.0,
                    start: id.1,
                });
            }
        }
        if std::mem::take(&mut self.dirty) == 0 {
            return;
        }
        for ((key_text, start), w) in self.windows.iter_mut().filter(|(_, w)| w.dirty) {
            w.dirty = false;
            w.persisted = true;
            f(ChangeRef::Put {
                key_text,
                entry: WindowEntryRef {
                    key: &w.key,
                    start: *start,
                    end: w.end,
                    aggs: &w.aggs,
                    changed: w.changed,
                },
            });
        }
    }

    /// [`WindowOperator::drain_changes`], as owned changes.
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        let mut changes = Vec::new();
        self.drain_changes(|c| changes.push(c.to_owned_change()));
        changes
    }

    /// Puts back a window from the changelog (before any record is
    /// processed); it counts as persisted and unchanged.
    pub fn restore(&mut self, e: WindowEntry) {
        let key_text = e.key.to_string();
        let closes = self.def.closes_at(e.end);
        self.closing.insert((closes, key_text.clone(), e.start));
        self.windows.insert(
            (key_text, e.start),
            OpenWindow {
                key: e.key,
                end: e.end,
                aggs: e.aggs,
                changed: e.changed,
                dirty: false,
                persisted: true,
            },
        );
    }

    /// A window that the changelog holds in a newer, unconfirmed version
    /// (written after the checkpoint the state was restored from): the next
    /// [`WindowOperator::take_changes`] must overwrite it, with the restored
    /// state or a removal.
    pub fn mark_unconfirmed(&mut self, key: &Value, start: i64) {
        let id = (key.to_string(), start);
        match self.windows.get_mut(&id) {
            Some(w) => {
                if !w.dirty {
                    w.dirty = true;
                    self.dirty += 1;
                }
            }
            None => self.removed.push(id),
        }
    }

    fn result(&self, start: i64, w: &OpenWindow) -> Record {
        let mut v = Map::with_capacity(2 + w.aggs.len());
        v.insert("key".into(), w.key.clone());
        let mut win = Map::with_capacity(2);
        win.insert("start".into(), Value::from(start));
        win.insert("end".into(), Value::from(w.end));
        v.insert("window".into(), Value::Object(win));
        for (spec, state) in self.def.aggregates.iter().zip(&w.aggs) {
            v.insert(spec.name.clone(), state.result());
        }
        let mut r = Record::new(w.key.clone(), Value::Object(v));
        r.timestamp = w.end - 1;
        r.event_time = w.end - 1;
        r
    }
}

/// Folds one record's `values` (at event time `t`) into `aggs`.
fn fold(
    specs: &[AggSpec],
    aggs: &mut [AggState],
    values: &[AggValue],
    t: i64,
) -> Result<(), ExprError> {
    for ((state, spec), v) in aggs.iter_mut().zip(specs).zip(values) {
        state.add(spec, v, t).map_err(|m| agg_error(spec, m))?;
    }
    Ok(())
}

/// Whether `values` fold into `aggs` without error ([`AggState::check`]).
fn check(specs: &[AggSpec], aggs: &[AggState], values: &[AggValue]) -> Result<(), ExprError> {
    for ((state, spec), v) in aggs.iter().zip(specs).zip(values) {
        state.check(v).map_err(|m| agg_error(spec, m))?;
    }
    Ok(())
}

fn agg_error(spec: &AggSpec, message: String) -> ExprError {
    ExprError {
        expr: spec.arg.as_ref().map_or("", |a| a.source()).to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests;
