//! Decoding Kafka messages into [`Record`]s (payload, key, event time) and
//! encoding records back into bytes.

use crate::expr::JsonPath;
use crate::record::{LazyObject, Origin, Record};
use crate::spec::{Format, TimeUnit};
use serde_json::Value;
use std::sync::Arc;

/// Why a message could not be decoded; the record goes to `errors.policy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not valid for the source's format.
    #[error("payload is not valid {format}: {detail}")]
    Payload {
        /// Expected format.
        format: &'static str,
        /// Parser message.
        detail: String,
    },
    /// The key is not valid for `key_format`.
    #[error("key is not valid {format}: {detail}")]
    Key {
        /// Expected format.
        format: &'static str,
        /// Parser message.
        detail: String,
    },
    /// The event-time path found nothing usable.
    #[error("event time at `{path}` is {found} (expected {expected})")]
    EventTime {
        /// The JSONPath.
        path: String,
        /// What was found.
        found: String,
        /// What the unit needs.
        expected: &'static str,
    },
}

/// Where event time comes from.
#[derive(Debug, Clone)]
pub enum EventTime {
    /// The Kafka record timestamp.
    KafkaTimestamp,
    /// A JSONPath into the payload, in a unit.
    Path(JsonPath, TimeUnit),
}

/// Decodes messages for one source.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Payload format.
    pub format: Format,
    /// Key format.
    pub key_format: Format,
    /// Event time source.
    pub event_time: EventTime,
}

/// A raw message, as fetched.
#[derive(Debug, Clone, Copy)]
pub struct RawMessage<'a> {
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Payload bytes (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Kafka timestamp, ms.
    pub timestamp: i64,
}

impl Decoder {
    /// Decodes `msg`; headers are attached by the caller. An unreadable
    /// event time does not fail decoding: it is kept in `time_error` and
    /// becomes a record error if the record reaches a window.
    ///
    /// # Errors
    /// [`DecodeError`] for an undecodable payload or key.
    pub fn decode(&self, msg: RawMessage<'_>, origin: Origin) -> Result<Record, DecodeError> {
        // A JSON object stays undecoded: stages decode the fields they read.
        let lazy = match (self.format, msg.payload) {
            (Format::Json, Some(b)) => LazyObject::parse(b).map(Arc::new),
            _ => None,
        };
        let (value, raw_bytes) = if lazy.is_some() {
            (Value::Null, None)
        } else {
            decode_payload(self.format, msg.payload)
                .map_err(|(format, detail)| DecodeError::Payload { format, detail })?
        };
        let (key, _) = match msg.key {
            None => (Value::Null, None),
            Some(k) => decode_payload(self.key_format, Some(k))
                .map_err(|(format, detail)| DecodeError::Key { format, detail })?,
        };
        let key = if self.key_format == Format::Bytes {
            msg.key.map_or(Value::Null, |k| {
                Value::String(String::from_utf8_lossy(k).into_owned())
            })
        } else {
            key
        };
        let (event_time, time_error) = match &self.event_time {
            EventTime::KafkaTimestamp => (msg.timestamp, None),
            EventTime::Path(p, unit) => match event_time_in(p, *unit, &value, lazy.as_deref()) {
                Ok(t) => (t, None),
                Err(e) => (msg.timestamp, Some(Arc::from(e.to_string()))),
            },
        };
        Ok(Record {
            key,
            value,
            raw_bytes,
            headers: Vec::new(),
            timestamp: msg.timestamp,
            event_time,
            time_error,
            origin,
            lazy,
        })
    }
}

/// [`event_time_at`] in `value`, or in the lazy payload when there is one
/// (decoding only the field a member-name path starts with).
fn event_time_in(
    p: &JsonPath,
    unit: TimeUnit,
    value: &Value,
    lazy: Option<&LazyObject>,
) -> Result<i64, DecodeError> {
    let Some(l) = lazy else {
        return event_time_at(p, unit, value);
    };
    match p.names() {
        Some([first, rest @ ..]) => {
            let top = l.get(first);
            let mut cur = top.as_ref();
            for n in rest {
                cur = cur.and_then(|c| c.as_object()?.get(n));
            }
            event_time_found(p, unit, cur)
        }
        _ => event_time_at(p, unit, l.value()),
    }
}

type Decoded = (Value, Option<Arc<[u8]>>);

fn decode_payload(format: Format, bytes: Option<&[u8]>) -> Result<Decoded, (&'static str, String)> {
    let Some(b) = bytes else {
        return Ok((Value::Null, None));
    };
    match format {
        Format::Json => serde_json::from_slice(b)
            .map(|v| (v, None))
            .map_err(|e| ("JSON", e.to_string())),
        Format::Text => std::str::from_utf8(b)
            .map(|s| (Value::String(s.to_owned()), None))
            .map_err(|e| ("UTF-8 text", e.to_string())),
        Format::Bytes => Ok((Value::Null, Some(Arc::from(b)))),
    }
}

fn event_time_at(p: &JsonPath, unit: TimeUnit, v: &Value) -> Result<i64, DecodeError> {
    event_time_found(p, unit, p.first(v))
}

fn event_time_found(
    p: &JsonPath,
    unit: TimeUnit,
    found: Option<&Value>,
) -> Result<i64, DecodeError> {
    let expected = match unit {
        TimeUnit::Rfc3339 => "an RFC 3339 timestamp string",
        _ => "a number",
    };
    let err = |found: String| DecodeError::EventTime {
        path: p.source().to_owned(),
        found,
        expected,
    };
    let found = found.ok_or_else(|| err("missing".into()))?;
    match (unit, found) {
        (TimeUnit::Rfc3339, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| err(format!("`{s}`"))),
        (TimeUnit::Rfc3339, other) => Err(err(other.to_string())),
        (_, Value::Number(n)) => {
            let scale = |f: f64| -> i64 {
                match unit {
                    TimeUnit::S => (f * 1_000.0).floor() as i64,
                    TimeUnit::Us => (f / 1_000.0).floor() as i64,
                    TimeUnit::Ns => (f / 1_000_000.0).floor() as i64,
                    _ => f.floor() as i64,
                }
            };
            Ok(match (unit, n.as_i64()) {
                (TimeUnit::Ms, Some(i)) => i,
                (TimeUnit::S, Some(i)) => i.saturating_mul(1_000),
                (TimeUnit::Us, Some(i)) => i.div_euclid(1_000),
                (TimeUnit::Ns, Some(i)) => i.div_euclid(1_000_000),
                _ => scale(n.as_f64().unwrap_or(0.0)),
            })
        }
        (_, other) => Err(err(if other.is_null() {
            "null".into()
        } else {
            other.to_string()
        })),
    }
}

/// The JSON text of [`Record::json`] (as `serde_json::to_vec` writes it):
/// the bytes of a lazy payload written by weir itself (a spliced
/// transform, a window result) are copied, not decoded and written again.
pub fn json_bytes(rec: &Record) -> Vec<u8> {
    match rec.lazy.as_ref().and_then(|l| l.canonical_bytes()) {
        Some(b) => b.to_vec(),
        None => serde_json::to_vec(rec.json()).unwrap_or_default(),
    }
}

/// Encodes a record's payload for a sink: JSON for `json`; the string itself
/// (or JSON for non-strings) for `text`; the original bytes for `bytes`.
pub fn encode_value(rec: &Record, format: Format) -> Vec<u8> {
    if rec.lazy.is_some() {
        return json_bytes(rec);
    }
    if let Some(b) = &rec.raw_bytes {
        if format == Format::Bytes || rec.value.is_null() {
            return b.to_vec();
        }
    }
    match (&rec.value, format) {
        (Value::String(s), Format::Text) => s.as_bytes().to_vec(),
        (v, _) => serde_json::to_vec(v).unwrap_or_default(),
    }
}

/// Encodes a key: none for null, the text of a string, JSON otherwise.
pub fn encode_key(key: &Value) -> Option<Vec<u8>> {
    match key {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(serde_json::to_vec(other).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(et: EventTime) -> Decoder {
        Decoder {
            format: Format::Json,
            key_format: Format::Text,
            event_time: et,
        }
    }

    fn msg(payload: &str) -> RawMessage<'_> {
        RawMessage {
            key: Some(b"k"),
            payload: Some(payload.as_bytes()),
            timestamp: 42,
        }
    }

    #[test]
    fn event_time_units() {
        let p = |u| dec(EventTime::Path(JsonPath::compile("$.t").unwrap(), u));
        let o = Origin::default;
        assert_eq!(
            p(TimeUnit::Ms)
                .decode(msg(r#"{"t": 1500}"#), o())
                .unwrap()
                .event_time,
            1500
        );
        assert_eq!(
            p(TimeUnit::S)
                .decode(msg(r#"{"t": 1.5}"#), o())
                .unwrap()
                .event_time,
            1500
        );
        assert_eq!(
            p(TimeUnit::Us)
                .decode(msg(r#"{"t": 1500000}"#), o())
                .unwrap()
                .event_time,
            1500
        );
        assert_eq!(
            p(TimeUnit::Rfc3339)
                .decode(msg(r#"{"t": "1970-01-01T00:00:01.5Z"}"#), o())
                .unwrap()
                .event_time,
            1500
        );
        assert_eq!(
            dec(EventTime::KafkaTimestamp)
                .decode(msg("{}"), o())
                .unwrap()
                .event_time,
            42
        );
        assert_eq!(
            p(TimeUnit::Ms)
                .decode(msg(r#"{"t": null}"#), o())
                .unwrap()
                .time_error
                .as_deref(),
            Some("event time at `$.t` is null (expected a number)")
        );
    }

    #[test]
    fn bad_json_is_a_decode_error() {
        let e = dec(EventTime::KafkaTimestamp)
            .decode(msg("{oops"), Origin::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("payload is not valid JSON: key must be a string"),
            "{e}"
        );
    }

    #[test]
    fn encodes_keys_and_values() {
        let r = Record::new(Value::String("JFK".into()), serde_json::json!({"a": 1}));
        assert_eq!(encode_key(&r.key), Some(b"JFK".to_vec()));
        assert_eq!(encode_value(&r, Format::Json), br#"{"a":1}"#.to_vec());
        assert_eq!(encode_key(&Value::Null), None);
    }

    #[test]
    fn json_bytes_copy_canonical_payloads_only() {
        let mut w = crate::record::ObjectWriter::with_capacity(16, 1);
        w.value("a", &serde_json::json!(1.5));
        let mut r = Record::new(Value::Null, Value::Null);
        r.lazy = Some(Arc::new(w.finish()));
        assert_eq!(json_bytes(&r), br#"{"a":1.5}"#.to_vec());
        r.lazy = Some(Arc::new(LazyObject::parse(br#"{ "a" : 1.50 }"#).unwrap()));
        assert_eq!(json_bytes(&r), br#"{"a":1.5}"#.to_vec());
        assert_eq!(encode_value(&r, Format::Text), br#"{"a":1.5}"#.to_vec());
        let mut bytes = Record::new(Value::Null, Value::Null);
        bytes.raw_bytes = Some(Arc::from(&b"\x00"[..]));
        assert_eq!(json_bytes(&bytes), b"null".to_vec());
    }
}
