//! The record that flows through a pipeline's stages.

use serde_json::Value;
use std::sync::Arc;

/// Where a record came from: the coordinates of its source record. Records
/// derived from it (transformed, keyed, routed to sinks) keep the same origin
/// so their acknowledgement can release the source offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Decoded key; `Null` when the record has none.
    pub key: Value,
    /// Decoded payload (`Null` for `format: bytes`, see `raw_bytes`).
    pub value: Value,
    /// The payload for `format: bytes`, passed through unchanged.
    pub raw_bytes: Option<Arc<[u8]>>,
    /// Kafka headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Kafka timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Event time, ms since the Unix epoch (meaningless when `time_error` is set).
    pub event_time: i64,
    /// Why the event time could not be read. Such a record is an error only
    /// when it reaches a window; a filter before may drop it first, and it
    /// does not move the watermark.
    pub time_error: Option<Arc<str>>,
    /// Source coordinates.
    pub origin: Origin,
}

impl Record {
    /// A record with `key` and `value`, time 0 and no origin; for tests and
    /// for building outputs.
    pub fn new(key: Value, value: Value) -> Self {
        Record {
            key,
            value,
            raw_bytes: None,
            headers: Vec::new(),
            timestamp: 0,
            event_time: 0,
            time_error: None,
            origin: Origin::default(),
        }
    }
}
