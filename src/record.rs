//! The record that flows through a pipeline's stages, and [`LazyObject`]:
//! a JSON object payload kept as its bytes with an index of its top-level
//! fields, so that stages parse only the fields they read; and
//! [`ObjectWriter`], which writes such an object straight to bytes.

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
///
/// A JSON object payload may stay undecoded: then [`Record::lazy`] holds its
/// bytes and field index, and [`Record::value`] (the field) is `Null` until
/// [`Record::materialize`]. Read the payload with [`Record::json`], which
/// works for both forms.
#[derive(Debug, Clone)]
pub struct Record {
    /// Decoded key; `Null` when the record has none.
    pub key: Value,
    /// Decoded payload (`Null` for `format: bytes`, see `raw_bytes`; `Null`
    /// while `lazy` holds it).
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
    /// The JSON object payload, not yet decoded (see the type's doc).
    pub lazy: Option<Arc<LazyObject>>,
}

impl PartialEq for Record {
    /// Equal when every field is, comparing payloads by their JSON value
    /// whichever form they are in.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.json() == other.json()
            && self.raw_bytes == other.raw_bytes
            && self.headers == other.headers
            && self.timestamp == other.timestamp
            && self.event_time == other.event_time
            && self.time_error == other.time_error
            && self.origin == other.origin
    }
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
            lazy: None,
        }
    }

    /// The payload as JSON, decoding a lazy payload once (and keeping the
    /// result) when it is first asked for whole.
    pub fn json(&self) -> &Value {
        match &self.lazy {
            Some(l) => l.value(),
            None => &self.value,
        }
    }

    /// Decodes a lazy payload into [`Record::value`]; a no-op otherwise.
    pub fn materialize(&mut self) {
        if let Some(l) = self.lazy.take() {
            self.value = match Arc::try_unwrap(l) {
                Ok(l) => l.into_value(),
                Err(shared) => shared.value().clone(),
            };
        }
    }
}

mod lazy;
mod writer;
pub use lazy::{decode_raw, plain_int, LazyObject, RawFields};
pub use writer::{plain_name, write_value, ObjectWriter};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_what_serde_json_reads_the_same() {
        for ok in [
            r#"{"a": 1, "b": "x\n", "c": [1, {"d": null}], "e": -2.5e3, "f": true}"#,
            r#" {} "#,
            r#"{"u":"é","n":{"x":{"y":[]}}}"#,
        ] {
            let l = LazyObject::parse(ok.as_bytes()).expect(ok);
            let whole: Value = serde_json::from_str(ok).unwrap();
            let o = whole.as_object().unwrap();
            let got: Vec<(String, Value)> = l
                .fields()
                .map(|(k, v)| (k.to_owned(), decode_raw(v)))
                .collect();
            let want: Vec<(String, Value)> =
                o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(got, want, "{ok}");
            assert_eq!(l.value(), &whole);
        }
    }

    #[test]
    fn leaves_the_unusual_to_serde_json() {
        for odd in [
            "[1]",
            "{oops",
            r#"{"a": 1,}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"a\"b": 1}"#,
            r#"{"a": "\u00e9"}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1e999}"#,
            r#"{"a": 1} x"#,
            "{\"a\": \"\t\"}",
            r#"{"a": tru}"#,
            r#"{"a": 1."#,
        ] {
            assert!(LazyObject::parse(odd.as_bytes()).is_none(), "{odd}");
        }
        assert!(LazyObject::parse(b"{\"a\": \"\xff\"}").is_none());
    }

    #[test]
    fn records_compare_by_json_value() {
        let b = br#"{"a": 1}"#;
        let mut lazy = Record::new(Value::Null, Value::Null);
        lazy.lazy = Some(Arc::new(LazyObject::parse(b).unwrap()));
        let eager = Record::new(Value::Null, serde_json::json!({"a": 1}));
        assert_eq!(lazy, eager);
        lazy.materialize();
        assert!(lazy.lazy.is_none());
        assert_eq!(lazy.value, eager.value);
    }
}
