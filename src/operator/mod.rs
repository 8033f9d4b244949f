//! Operators: pure, synchronous stages (record in → zero or more records
//! out), with no I/O, channels or clocks, so that the runtime, `weir dev`
//! and `weir test` run the very same code.

pub mod chain;
pub mod filter;
pub mod join;
pub mod key_by;
pub mod transform;
pub mod window;

pub use chain::{Chain, Outcome, Sink, Stage, StageRef, StepResult};
