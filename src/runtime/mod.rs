//! The runtime: runs each pipeline as a consumer group member, writes its
//! state to changelogs and checkpoints, restores it, and commits offsets.

mod commit;
pub mod daemon;
mod finish;
pub mod joins;
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
mod table_events;
pub mod tables;

pub use pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
