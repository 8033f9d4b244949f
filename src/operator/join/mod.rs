//! Joins (DESIGN.md §7), the pure core; the stream-stream (interval) join
//! is [`IntervalJoin`]. Stream–table joins: a table's versions by
//! key ([`VersionedTable`], T2/T3, with Flink's event-time temporal join
//! retention), the hold that keeps stream records until the table's
//! watermark reaches them ([`Hold`], [`TableWatermark`], T4), and the join
//! stage itself ([`TableJoin`]). No I/O, no clocks: the runtime reads the
//! table topic, feeds versions and watermarks in, and routes the outcomes.
//!
//! A record's way through, for `time: event`:
//! 1. a table record → [`table_key`], [`table_value`] →
//!    [`VersionedTable::insert`] and [`TableWatermark::observe`], then
//!    [`Hold::advance`] with [`TableWatermark::watermark`];
//! 2. a stream record → [`Hold::offer`]; each record released →
//!    [`TableJoin::apply`];
//! 3. as the stream's watermark moves → [`VersionedTable::expire`] with the
//!    stream's watermark minus `history`.

mod hold;
mod interval;
mod table;
mod versions;

pub use hold::{Hold, TableWatermark};
pub use interval::{IntervalJoin, IntervalJoinDef, IntervalOutcome, IntervalType};
pub use table::{table_key, table_value, JoinError, JoinOutcome, JoinTime, JoinType, TableJoin};
pub use versions::{Lookup, VersionedTable};

#[cfg(test)]
mod tests;
