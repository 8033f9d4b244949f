//! Everything that talks to Kafka: client configuration, the consumer with
//! its rebalance hooks, the producer with delivery tracking, topic admin,
//! checkpoints, and the embedded mock cluster for `weir dev` and tests.

pub mod admin;
pub mod changelog;
pub mod checkpoint;
pub mod client;
pub mod embedded;
pub mod offsets;
pub mod reset;
pub mod reset_state;
pub mod sink;
