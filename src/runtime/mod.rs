//! The runtime: runs each pipeline as a consumer group member, tracks
//! delivery progress, writes checkpoints and commits offsets.

pub mod context;
pub mod daemon;
pub mod output;
pub mod pipeline;
pub mod progress;

pub use pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
