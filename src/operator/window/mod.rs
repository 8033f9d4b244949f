//! The `window` stage: per-key tumbling and hopping windows with aggregates,
//! closed by the partition watermark (DESIGN.md §3).
//!
//! State is an ordered map by (window start, key), so closing is a pop from
//! the front. Each open window remembers the offset of its first record and
//! the watermark just before it: the runtime's checkpoint resumes from the
//! oldest such pair, and on replay [`WindowOperator::set_emitted_through`]
//! makes the operator skip windows whose results were already emitted and
//! acknowledged, so a replay never emits a partial window.

pub mod aggregate;
pub mod assigner;
pub mod watermark;

use crate::expr::ExprError;
use crate::record::Record;
use crate::spec::LatePolicy;
use aggregate::{AggKind, AggSpec, AggState};
use assigner::Assigner;
use cel::Context;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A compiled window stage.
#[derive(Debug, Clone)]
pub struct WindowDef {
    /// Window assignment.
    pub assigner: Assigner,
    /// How long after its end a window still accepts records, ms.
    pub allowed_lateness: i64,
    /// Aggregates in output order.
    pub aggregates: Vec<AggSpec>,
    /// What happens to late records.
    pub late: LatePolicy,
}

impl WindowDef {
    /// Watermark at which the window starting at `start` closes.
    fn closes_at(&self, start: i64) -> i64 {
        start
            .saturating_add(self.assigner.size)
            .saturating_add(self.allowed_lateness)
    }
}

/// What happened to a record given to [`WindowOperator::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Added to at least one window (or skipped as already emitted on replay).
    Added,
    /// Every window it belongs to is closed.
    Late,
}

/// Progress marker of an open window: the offset of its first record and
/// the watermark just before that record was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FirstSeen {
    /// Source offset of the window's first record.
    pub offset: i64,
    /// Watermark (ms) just before that record.
    pub watermark: i64,
}

#[derive(Debug, Clone)]
struct OpenWindow {
    key: Value,
    aggs: Vec<AggState>,
    first: FirstSeen,
}

/// The per-partition instance of a window stage.
#[derive(Debug, Clone)]
pub struct WindowOperator {
    def: Arc<WindowDef>,
    windows: BTreeMap<(i64, String), OpenWindow>,
    emitted_through: i64,
}

impl WindowOperator {
    /// An operator with no open windows.
    pub fn new(def: Arc<WindowDef>) -> Self {
        WindowOperator {
            def,
            windows: BTreeMap::new(),
            emitted_through: i64::MIN,
        }
    }

    /// The stage definition.
    pub fn def(&self) -> &WindowDef {
        &self.def
    }

    /// On replay after a restart: windows that close at or before watermark
    /// `wm` were emitted and acknowledged in the first run; records for them
    /// are skipped instead of being aggregated into partial results.
    pub fn set_emitted_through(&mut self, wm: i64) {
        self.emitted_through = wm;
    }

    /// Number of open windows.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// The oldest [`FirstSeen`] among open windows.
    pub fn oldest_open(&self) -> Option<FirstSeen> {
        self.windows.values().map(|w| w.first).min()
    }

    /// Adds `rec` (at event time `rec.event_time`) to its windows, given the
    /// watermark `wm` as it stood before this record.
    ///
    /// # Errors
    /// [`ExprError`] when an aggregate argument fails or has the wrong type;
    /// no window is changed then.
    pub fn add(
        &mut self,
        root: &Context<'static, 'static>,
        rec: &Record,
        wm: i64,
    ) -> Result<AddOutcome, ExprError> {
        if let Some(e) = &rec.time_error {
            return Err(ExprError {
                expr: "event_time".into(),
                message: e.to_string(),
            });
        }
        let def = &*self.def;
        let t = rec.event_time;
        if def.closes_at(def.assigner.last_start(t)) <= wm {
            return Ok(AddOutcome::Late);
        }
        let values = def
            .aggregates
            .iter()
            .map(|a| a.arg_value(root, rec))
            .collect::<Result<Vec<_>, _>>()?;
        let key_text = rec.key.to_string();
        // Check min/max type compatibility before touching any window.
        let mut updates = Vec::new();
        for start in def.assigner.starts(t) {
            let closes = def.closes_at(start);
            if closes <= wm || closes <= self.emitted_through {
                continue; // closed (a hopping record can be partly late) or already emitted
            }
            let w = self
                .windows
                .entry((start, key_text.clone()))
                .or_insert_with(|| OpenWindow {
                    key: rec.key.clone(),
                    aggs: def
                        .aggregates
                        .iter()
                        .map(|a| AggState::new(a.kind))
                        .collect(),
                    first: FirstSeen {
                        offset: rec.origin.offset,
                        watermark: wm,
                    },
                });
            let mut next = w.aggs.clone();
            for ((state, spec), v) in next.iter_mut().zip(&def.aggregates).zip(&values) {
                let counts_record = spec.kind == AggKind::Count && spec.arg.is_none();
                state
                    .add(spec.kind, v, counts_record)
                    .map_err(|m| ExprError {
                        expr: spec.arg.as_ref().map_or("", |a| a.source()).to_owned(),
                        message: m,
                    })?;
            }
            updates.push((start, next));
        }
        for (start, next) in updates {
            if let Some(w) = self.windows.get_mut(&(start, key_text.clone())) {
                w.aggs = next;
            }
        }
        Ok(AddOutcome::Added)
    }

    /// Closes every window that closes at or before watermark `wm`, oldest
    /// first, appending one result record each to `out`. Returns the oldest
    /// [`FirstSeen`] among the closed windows.
    pub fn close(&mut self, wm: i64, out: &mut Vec<Record>) -> Option<FirstSeen> {
        let mut oldest: Option<FirstSeen> = None;
        while let Some(entry) = self.windows.first_entry() {
            let start = entry.key().0;
            if self.def.closes_at(start) > wm {
                break;
            }
            let w = entry.remove();
            oldest = Some(oldest.map_or(w.first, |o| o.min(w.first)));
            out.push(self.result(start, w));
        }
        oldest
    }

    /// Closes every open window (end of input in `weir dev` and `weir test`).
    pub fn flush(&mut self, out: &mut Vec<Record>) -> Option<FirstSeen> {
        self.close(i64::MAX, out)
    }

    fn result(&self, start: i64, w: OpenWindow) -> Record {
        let end = start + self.def.assigner.size;
        let mut v = Map::with_capacity(2 + w.aggs.len());
        v.insert("key".into(), w.key.clone());
        let mut win = Map::with_capacity(2);
        win.insert("start".into(), Value::from(start));
        win.insert("end".into(), Value::from(end));
        v.insert("window".into(), Value::Object(win));
        for (spec, state) in self.def.aggregates.iter().zip(&w.aggs) {
            v.insert(spec.name.clone(), state.result());
        }
        let mut r = Record::new(w.key, Value::Object(v));
        r.timestamp = end - 1;
        r.event_time = end - 1;
        r
    }
}

#[cfg(test)]
mod tests;
