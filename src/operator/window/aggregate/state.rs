//! [`AggState`]: the running state of one aggregate in one window, and its
//! serde form, which is the window changelog's format (read back on
//! restore: its variants, their order and fields must not change; add new
//! ones at the end). Its methods dispatch to the function's `impl
//! Aggregate` in `kinds/`.

use super::error::AggError;
use super::kinds::{self, Aggregate};
use super::sketch::Sketch;
use super::value::{float_text, is_null, AggValue, Stamped};
use super::{AggKind, AggSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::mem::{discriminant, size_of};

/// Running state of one aggregate in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggState {
    /// Count so far.
    Count(i64),
    /// Sum so far: integer while every value was, else float; `None` before any value.
    Sum(Option<AggValue>),
    /// Extreme so far (min or max, as the spec says).
    Extreme(Option<AggValue>),
    /// Sum and count of values.
    Avg(#[serde(with = "float_text")] f64, i64),
    /// Canonical JSON texts of the distinct values.
    Distinct(BTreeSet<String>),
    /// Earliest value so far.
    First(Option<Stamped>),
    /// Latest value so far.
    Last(Option<Stamped>),
    /// The `bound` earliest values, sorted by event time (ties in order added).
    Collect {
        /// At most this many values are kept.
        bound: usize,
        /// The values.
        items: Vec<Stamped>,
    },
    /// Sketch of the values (`None` before any) and the quantile asked for.
    Percentile {
        /// Quantile in [0, 1].
        q: f64,
        /// Sketch of the values so far.
        sketch: Option<Box<Sketch>>,
    },
}

impl AggState {
    /// The empty state for `spec`. A `collect` spec without a bound keeps
    /// every value; a `percentile` spec without a quantile gives the median
    /// ([`super::parse_aggregate`] always sets both).
    pub fn new(spec: &AggSpec) -> Self {
        spec.kind.imp().new_state(spec)
    }

    /// The implementation of this state's function. The state says which,
    /// but for `Extreme`, shared by min and max: `kind` decides it then
    /// (`max` unless it is `min`; either for what does not depend on it).
    fn imp(&self, kind: Option<AggKind>) -> &'static dyn Aggregate {
        match self {
            AggState::Count(_) => &kinds::Count,
            AggState::Sum(_) => &kinds::Sum,
            AggState::Extreme(_) if kind == Some(AggKind::Min) => &kinds::MIN,
            AggState::Extreme(_) => &kinds::MAX,
            AggState::Avg(..) => &kinds::Avg,
            AggState::Distinct(_) => &kinds::CountDistinct,
            AggState::First(_) => &kinds::FIRST,
            AggState::Last(_) => &kinds::LAST,
            AggState::Collect { .. } => &kinds::Collect,
            AggState::Percentile { .. } => &kinds::Percentile,
        }
    }

    /// Folds in the argument value `v` of a record with event time
    /// `event_time` (ms). `count()` (a spec without argument) counts every
    /// record; the other aggregates ignore a null `v`.
    ///
    /// # Errors
    /// [`AggError::WrongType`] when the value's type does not suit the
    /// function or a percentile value is not finite,
    /// [`AggError::Incomparable`] when min/max meet values of different
    /// types (number vs string), [`AggError::SumOutOfRange`] when a
    /// percentile's running sum leaves the float range; the state is
    /// unchanged then.
    pub fn try_add(
        &mut self,
        spec: &AggSpec,
        v: &AggValue,
        event_time: i64,
    ) -> Result<(), AggError> {
        let imp = self.imp(Some(spec.kind));
        if is_null(v) && !imp.counts_nulls() {
            return Ok(());
        }
        imp.add(self, spec, v, event_time)
    }

    /// [`AggState::try_add`] with the error as its message (the form the
    /// window stage takes).
    ///
    /// # Errors
    /// The message of [`AggState::try_add`]'s [`AggError`], ending in
    /// `(expected …)`.
    pub fn add(&mut self, spec: &AggSpec, v: &AggValue, event_time: i64) -> Result<(), String> {
        self.try_add(spec, v, event_time).map_err(|e| e.to_string())
    }

    /// Whether [`AggState::try_add`] of `v` would succeed, without changing
    /// the state: a window stage checks every aggregate of every window a
    /// record belongs to first, so a failing record changes no window.
    ///
    /// # Errors
    /// The error [`AggState::try_add`] would give.
    pub fn try_check(&self, v: &AggValue) -> Result<(), AggError> {
        if is_null(v) {
            return Ok(());
        }
        self.imp(None).check(self, v)
    }

    /// [`AggState::try_check`] with the error as its message.
    ///
    /// # Errors
    /// The message [`AggState::add`] would give.
    pub fn check(&self, v: &AggValue) -> Result<(), String> {
        self.try_check(v).map_err(|e| e.to_string())
    }

    /// Merges `other`, a state of the same aggregate `spec` whose records
    /// came after this state's, into this one: the result is that of adding
    /// this state's records and then `other`'s to one state (see the module
    /// doc for the exceptions of float rounding). On equal event times,
    /// `first` keeps this state's value, `last` takes `other`'s and
    /// `collect` puts this state's values first.
    ///
    /// # Errors
    /// [`AggError::Mismatch`] when the states are of different aggregates,
    /// [`AggError::Incomparable`] when min/max states hold a number and a
    /// string, [`AggError::SketchMerge`] or [`AggError::SumOutOfRange`] when
    /// percentile sketches differ in configuration or their summed values
    /// leave the float range; the state is unchanged then.
    pub fn try_merge(&mut self, spec: &AggSpec, other: &AggState) -> Result<(), AggError> {
        if discriminant(self) != discriminant(other) {
            return Err(AggError::Mismatch {
                ours: self.label(),
                theirs: other.label(),
            });
        }
        self.imp(Some(spec.kind)).merge(self, other)
    }

    /// [`AggState::try_merge`] with the error as its message (the form the
    /// window stage takes).
    ///
    /// # Errors
    /// The message of [`AggState::try_merge`]'s [`AggError`], ending in
    /// `(expected …)`.
    pub fn merge(&mut self, spec: &AggSpec, other: &AggState) -> Result<(), String> {
        self.try_merge(spec, other).map_err(|e| e.to_string())
    }

    /// The result as JSON; null for an aggregate over no values (0 for
    /// `count` and `count_distinct`). `collect` gives a list, `percentile`
    /// a float.
    pub fn result(&self) -> Value {
        self.imp(None).result(self)
    }

    /// Estimated memory of the state in bytes: its inline size plus what it
    /// holds on the heap (strings, JSON values, lists, sketch bins). An
    /// estimate for the `weir_state_bytes` metric, not an exact count of
    /// allocator use.
    pub fn approx_bytes(&self) -> usize {
        size_of::<Self>() + self.imp(None).heap_bytes(self)
    }

    /// The state's name in error messages (`count`, `min/max`, …).
    fn label(&self) -> &'static str {
        self.imp(None).state_label()
    }
}

#[cfg(test)]
mod tests;
