//! The runtime: runs each pipeline as a consumer group member, writes its
//! state to changelogs and checkpoints, restores it, and commits offsets.

pub mod commit;
pub mod daemon;
pub mod output;
pub mod partitions;
pub mod pipeline;
pub mod processor;
pub mod rebalance;
pub mod repartition;
pub mod supervisor;

pub use pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
