//! Window state as it travels through the changelog topic
//! `weir.<pipeline>.<stage>.changelog` (DESIGN.md §3, State): one entry per
//! open window, keyed by source partition, stage, key and window start;
//! a removed window is a tombstone (null payload) under the same key.

use super::aggregate::AggState;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One open window: its key, bounds and aggregate states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowEntry {
    /// The record key the window belongs to.
    pub key: Value,
    /// Window start, ms of event time (inclusive).
    pub start: i64,
    /// Window end, ms of event time (exclusive).
    pub end: i64,
    /// One state per aggregate, in the stage's order.
    pub aggs: Vec<AggState>,
    /// Changed since its last early result (`emit: {every}`).
    pub changed: bool,
}

/// A window's state as [`WindowEntry`] serialises it, borrowed from the
/// open window: the commit writes it without cloning the aggregates.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WindowEntryRef<'a> {
    /// The record key the window belongs to.
    pub key: &'a Value,
    /// Window start, ms of event time (inclusive).
    pub start: i64,
    /// Window end, ms of event time (exclusive).
    pub end: i64,
    /// One state per aggregate, in the stage's order.
    pub aggs: &'a [AggState],
    /// Changed since its last early result (`emit: {every}`).
    pub changed: bool,
}

impl WindowEntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(&self) -> WindowEntry {
        WindowEntry {
            key: self.key.clone(),
            start: self.start,
            end: self.end,
            aggs: self.aggs.to_vec(),
            changed: self.changed,
        }
    }
}

/// A change handed out by `drain_changes`, borrowing the window state.
#[derive(Debug, Clone, Copy)]
pub enum ChangeRef<'a> {
    /// The window's current state; `key_text` is the key's JSON text.
    Put {
        /// The key as JSON text.
        key_text: &'a str,
        /// The state.
        entry: WindowEntryRef<'a>,
    },
    /// The window is gone.
    Remove {
        /// The key as JSON text.
        key_text: &'a str,
        /// Window start, ms.
        start: i64,
    },
}

impl ChangeRef<'_> {
    /// An owned copy.
    pub fn to_owned_change(&self) -> StateChange {
        match self {
            ChangeRef::Put { entry, .. } => StateChange::Put(entry.to_entry()),
            ChangeRef::Remove { key_text, start } => StateChange::Remove {
                key: (*key_text).to_owned(),
                start: *start,
            },
        }
    }
}

/// A change of one window since the last changelog write.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// The window's current state.
    Put(WindowEntry),
    /// The window is gone (closed or merged into another session).
    Remove {
        /// The key as JSON text.
        key: String,
        /// Window start, ms.
        start: i64,
    },
}

/// The changelog record key of a window: the JSON array
/// `[source, stage, key, start]`, where `source` is `topic/partition` of the
/// stage's input partition and `stage` the stage index. `key_text` must be
/// the key's JSON text.
pub fn entry_key(source: &str, stage: usize, key_text: &str, start: i64) -> String {
    format!(
        "[{},{stage},{key_text},{start}]",
        Value::String(source.to_owned())
    )
}

/// Parses a key made by [`entry_key`] into `(source, stage, key, start)`;
/// `None` for anything else (such as a marker).
pub fn parse_entry_key(bytes: &[u8]) -> Option<(String, usize, Value, i64)> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let a = v.as_array().filter(|a| a.len() == 4)?;
    Some((
        a[0].as_str()?.to_owned(),
        usize::try_from(a[1].as_u64()?).ok()?,
        a[2].clone(),
        a[3].as_i64()?,
    ))
}

/// The changelog record key of a partition's marker: `["marker", source]`.
pub fn marker_key(source: &str) -> String {
    format!("[\"marker\",{}]", Value::String(source.to_owned()))
}

/// The source of a key made by [`marker_key`]; `None` for anything else.
pub fn parse_marker_key(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    match v.as_array()?.as_slice() {
        [Value::String(m), Value::String(source)] if m == "marker" => Some(source.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_keys_round_trip_any_key() {
        for key in [json!("JFK"), json!(7), json!(null), json!({"a": [1, "]"]})] {
            let k = entry_key("in/3", 1, &key.to_string(), -5);
            assert_eq!(
                parse_entry_key(k.as_bytes()),
                Some(("in/3".to_owned(), 1, key.clone(), -5))
            );
        }
        assert_eq!(parse_entry_key(marker_key("in/3").as_bytes()), None);
        assert_eq!(
            parse_marker_key(marker_key("in/3").as_bytes()),
            Some("in/3".into())
        );
        assert_eq!(
            parse_marker_key(entry_key("in/3", 1, "7", 0).as_bytes()),
            None
        );
        assert_eq!(marker_key("in/3"), r#"["marker","in/3"]"#);
    }

    #[test]
    fn a_borrowed_entry_serialises_as_the_owned_one() {
        let owned = WindowEntry {
            key: json!({"page": "/p/1"}),
            start: 60_000,
            end: 120_000,
            aggs: vec![AggState::Count(3), AggState::Avg(1.5, 2)],
            changed: true,
        };
        let borrowed = WindowEntryRef {
            key: &owned.key,
            start: owned.start,
            end: owned.end,
            aggs: &owned.aggs,
            changed: owned.changed,
        };
        let text = serde_json::to_string(&borrowed).unwrap();
        assert_eq!(text, serde_json::to_string(&owned).unwrap());
        assert_eq!(serde_json::from_str::<WindowEntry>(&text).unwrap(), owned);
        assert_eq!(borrowed.to_entry(), owned);
    }
}
