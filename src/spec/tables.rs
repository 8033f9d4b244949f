//! The pipeline file's `tables:` and `join:` stage types (DESIGN.md §7),
//! deserialised with serde like the rest of [`super::pipeline`].

use super::duration::DurationMs;
use super::pipeline::{EventTimeSpec, Format, WatermarkSpec};
use serde::Deserialize;

/// A table materialized from a topic, by key (DESIGN.md §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The topic the table is read from (usually compacted); it is the
    /// table's own changelog.
    pub topic: String,
    /// Payload format.
    #[serde(default)]
    pub format: Format,
    /// Key format.
    #[serde(default = "text_format")]
    pub key_format: Format,
    /// CEL over the table record giving its key; the record key when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// Version time of a table record; the Kafka record timestamp when absent.
    #[serde(default)]
    pub event_time: Option<EventTimeSpec>,
    /// Every instance reads every partition (reference data); else the
    /// table is co-partitioned with the stream.
    #[serde(default)]
    pub global: bool,
    /// The table's watermark (rule T4): its bound, and after how long an
    /// idle table at its end stops holding stream records back.
    #[serde(default)]
    pub watermark: WatermarkSpec,
    /// Versions kept behind the stream's watermark (rule T2); `0s` keeps
    /// the newest version only. Default: the join's allowed lateness (0).
    #[serde(default)]
    pub history: Option<DurationMs>,
}

fn text_format() -> Format {
    Format::Text
}

/// A `join:` stage: against a table (`table:`) or a second stream
/// (`stream:`), exactly one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// The name of a table under `tables:`.
    #[serde(default)]
    pub table: Option<String>,
    /// A second stream, for a windowed stream-stream (interval) join.
    #[serde(default)]
    pub stream: Option<StreamJoinSpec>,
    /// CEL over the stream record: the lookup key.
    pub on: String,
    /// `inner`, `left`, or (stream-stream only) `outer`.
    #[serde(default, rename = "type")]
    pub kind: JoinKind,
    /// Which table version a record is joined with (table joins only).
    #[serde(default)]
    pub time: JoinTime,
    /// Stream-stream only: the largest |t_left − t_right| that joins.
    #[serde(default)]
    pub within: Option<DurationMs>,
    /// Stream-stream only: how far behind the join's watermark a record is
    /// still joined (default 0).
    #[serde(default)]
    pub allowed_lateness: Option<DurationMs>,
    /// The top-level field the joined value goes into (`null` when unmatched).
    pub into: String,
}

/// The other side of a stream-stream join.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamJoinSpec {
    /// Topic names.
    pub topics: Vec<String>,
    /// Payload format.
    #[serde(default)]
    pub format: Format,
    /// Event time; the Kafka record timestamp when absent.
    #[serde(default)]
    pub event_time: Option<EventTimeSpec>,
    /// CEL over this stream's record giving its join key.
    pub key: String,
}

/// The join type.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// Only matched records go on.
    #[default]
    Inner,
    /// Unmatched records go on with `null` in `into`.
    Left,
    /// Stream-stream: unmatched records of both sides go on.
    Outer,
}

/// Which table version a stream record is joined with.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JoinTime {
    /// The version valid at the record's event time (rule T2).
    #[default]
    Event,
    /// The newest version read so far.
    Latest,
}
