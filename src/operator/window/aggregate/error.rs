//! [`AggError`]: why a value could not be added to, or a state merged into,
//! an aggregate's state. The messages end in `(expected …)`; the window
//! stage reports them as the [`crate::expr::ExprError`] of the aggregate's
//! argument, a record error.

use thiserror::Error;

/// Why [`super::AggState`]'s add, check or merge failed; the state is
/// unchanged then.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AggError {
    /// The value's type does not suit the function: `got` is the value
    /// (JSON text, or the float for a non-finite one), `expected` what the
    /// function takes ("a number", "a number or a string", "a finite
    /// number").
    #[error("gave {got} (expected {expected})")]
    WrongType {
        /// The value given.
        got: String,
        /// What the function takes.
        expected: &'static str,
    },
    /// `min`/`max` met a number and a string.
    #[error("cannot compare a number with a string (expected values of one type)")]
    Incomparable,
    /// The running sum of a `percentile` sketch would leave the float range
    /// (it is written to the changelog, where JSON has no infinity).
    #[error("the sum of percentile values leaves the float range (expected values of magnitude well below 1e308)")]
    SumOutOfRange,
    /// Two `percentile` sketches of different configurations (the crate's
    /// message).
    #[error("cannot merge percentile sketches: {0} (expected sketches of one accuracy)")]
    SketchMerge(String),
    /// A merge of states of two different aggregates (their labels, e.g.
    /// `count` and `min/max`).
    #[error(
        "cannot merge a {ours} state with a {theirs} state (expected states of one aggregate)"
    )]
    Mismatch {
        /// The label of the state merged into.
        ours: &'static str,
        /// The label of the state merged in.
        theirs: &'static str,
    },
}
