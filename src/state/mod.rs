//! The state layer (DESIGN.md §4): the one home of the state protocol.
//!
//! - [`codec`]: topic names, record keys and the versioned record formats
//!   of changelog entries, markers and checkpoints;
//! - [`commit`]: pure, a partition's changed entries and new checkpoint →
//!   the records to write;
//! - [`restore`]: pure, the records read back → each partition's state and
//!   resume position;
//! - [`store`]: the stores operators declare.
//!
//! The runtime sends and reads the records (`runtime/commit`,
//! `runtime/rebalance`, `kafka/changelog`); nothing else knows their shape.

pub mod codec;
pub mod commit;
pub mod restore;
pub mod store;

pub use codec::{Checkpoint, Upstream};
pub use restore::{restore, LogRecord, Restored};
