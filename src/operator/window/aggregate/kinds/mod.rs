//! The [`Aggregate`] trait and one impl of it per aggregate function:
//! everything about a function (its name, how it is called, the type of its
//! argument, and how its [`AggState`] starts, adds a value, checks one,
//! merges and gives its result) is in its impl, and nowhere else. The
//! `agg_kinds!` table in `aggregate/mod.rs` lists the impls; `numbers.rs`
//! holds the numeric functions, `json.rs` those over any JSON value.

use super::error::AggError;
use super::state::AggState;
use super::value::AggValue;
use super::AggSpec;
use serde_json::Value;

/// How a function takes its argument (see [`AggSpec::arg_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgType {
    /// Any non-null value counts as one (`count(expr)`).
    Counted,
    /// An integer or a float.
    Number,
    /// A finite integer or float.
    FiniteNumber,
    /// A number or a string.
    NumberOrString,
    /// Any JSON value.
    Json,
}

impl ArgType {
    /// What a wrong value was expected to be, for error messages.
    pub(super) fn expects(self) -> &'static str {
        match self {
            ArgType::NumberOrString => "a number or a string",
            ArgType::FiniteNumber => "a finite number",
            ArgType::Counted | ArgType::Number | ArgType::Json => "a number",
        }
    }
}

/// The literal a call takes after its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    /// None: `f(expr)`.
    None,
    /// A positive integer `N` ([`AggSpec::bound`]).
    Bound,
    /// A number `q` in [0, 1] ([`AggSpec::q`]).
    Quantile,
}

/// One aggregate function. [`AggState`]'s methods call the impl of the
/// state's function with a state of that function's variant, so an impl
/// may take the variant for granted (see `expect_state!`).
pub(super) trait Aggregate: Sync {
    /// The name in a call, e.g. `"sum"`.
    fn name(&self) -> &'static str;
    /// How a call is written, for the list of valid calls (`count(),
    /// count(expr)`); [`Aggregate::usage`] by default.
    fn forms(&self) -> &'static str {
        self.usage()
    }
    /// How a call is written, for the `(expected …)` of its errors.
    fn usage(&self) -> &'static str;
    /// The literal after the argument.
    fn param(&self) -> Param {
        Param::None
    }
    /// Whether the argument may be left out (`count()`).
    fn optional_arg(&self) -> bool {
        false
    }
    /// How the argument is converted and type-checked.
    fn arg(&self) -> ArgType;
    /// Whether null values reach [`Aggregate::add`] (else they are skipped).
    fn counts_nulls(&self) -> bool {
        false
    }
    /// The state's name in merge errors; [`Aggregate::name`] by default.
    fn state_label(&self) -> &'static str {
        self.name()
    }
    /// The empty state for `spec`.
    fn new_state(&self, spec: &AggSpec) -> AggState;
    /// Folds in `v` (non-null unless [`Aggregate::counts_nulls`]) of a
    /// record with event time `t` (ms); unchanged on error.
    fn add(&self, s: &mut AggState, spec: &AggSpec, v: &AggValue, t: i64) -> Result<(), AggError>;
    /// Whether adding the non-null `v` would succeed; always by default.
    fn check(&self, _s: &AggState, _v: &AggValue) -> Result<(), AggError> {
        Ok(())
    }
    /// Merges `other` (a state of the same variant, of later records) into
    /// `s`; unchanged on error.
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError>;
    /// The result as JSON.
    fn result(&self, s: &AggState) -> Value;
    /// Bytes the state holds on the heap (estimate); none by default.
    fn heap_bytes(&self, _s: &AggState) -> usize {
        0
    }
}

/// Binds the fields of the variant an impl is called with: `AggState`
/// dispatches by variant, so another one is a bug.
macro_rules! expect_state {
    ($pat:pat = $e:expr) => {
        let $pat = $e else {
            unreachable!("AggState dispatches to the impl of its own variant")
        };
    };
}

mod json;
mod numbers;

pub(super) use json::{Collect, CountDistinct, FIRST, LAST};
pub(super) use numbers::{Avg, Count, Percentile, Sum, MAX, MIN};
