//! Window state as the window store hands it to the state layer: one
//! entry per open window, and the changes since the last commit. Their
//! record formats in the changelog are the state layer's
//! ([`crate::state::codec`]).

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
