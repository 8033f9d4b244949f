//! The runtime: runs each pipeline as a consumer group member, writes its
//! state to changelogs and checkpoints, restores it, and commits offsets.

mod commit;
pub mod daemon;
mod finish;
mod joins;
pub mod output;
pub mod partitions;
pub mod pipeline;
pub mod processor;
mod rebalance;
pub mod repartition;
mod route;
mod shared;
mod start;
pub mod supervisor;

pub use pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
