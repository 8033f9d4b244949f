//! weir: a Kafka-native stream processor.
//!
//! # Layout (data flows top to bottom)
//! - [`spec`]: pipeline and daemon config types, `${VAR}` interpolation,
//!   located errors.
//! - [`plan`]: compiles a spec into an executable plan (CEL, JSONPath,
//!   windows, sinks); every check that needs no broker.
//! - [`expr`]: CEL and JSONPath wrappers.
//! - [`record`], [`codec`]: the record and its decoding/encoding.
//! - [`operator`]: pure, synchronous stages and the per-partition chain.
//! - [`kafka`]: consumer, producer, topics, the embedded mock cluster.
//! - [`state`]: the state layer: stores, the changelog and checkpoint
//!   record formats, commit and restore (pure).
//! - [`runtime`]: partition tasks, offsets and checkpoints, the daemon.
//! - [`metrics`], [`http`]: Prometheus registry and the HTTP endpoint.
//! - [`testing`]: `weir test`'s harness: pipeline test cases with no broker.
//! - [`cli`]: one module per subcommand.

#![warn(missing_docs)]

pub mod cli;
pub mod codec;
pub mod expr;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod operator;
pub mod plan;
pub mod record;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod testing;
