//! The repartition topic `<group>.<stage>.repartition` (DESIGN.md
//! §3, Keys and partitions): the record format of both sides and the
//! watermark that crosses it.
//!
//! Upstream, each source partition writes its records after the `key_by`
//! keyed by the new key (JSON text, so murmur2 puts a key in one
//! partition), with the event time as the Kafka timestamp and one header
//! `weir.up`: the source offset as 8 bytes big-endian, then the upstream
//! `topic/partition` as text (records of weir before 0.2 carry the two text
//! headers `weir.src` and `weir.offset` instead; both are read); and
//! every 100 ms whose watermark moved, a marker (header `weir.marker`,
//! payload `{"src", "watermark"}`) to every partition. Downstream, a
//! partition's watermark is the minimum over all upstream partitions of
//! their latest marker (as Flink does across channels), and a record whose
//! source offset is not above the highest seen from its upstream partition
//! is a repeat from an upstream replay and is dropped: together with the
//! restored state this keeps results exact in at-least-once mode.

use super::output::{Dest, OutMsg};
use crate::kafka::checkpoint::Upstream;
use crate::record::{Origin, Record};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const UP: &str = "weir.up";
const SRC: &str = "weir.src";
const OFFSET: &str = "weir.offset";
const MARKER: &str = "weir.marker";
const TIME_ERROR: &str = "weir.time_error";

/// The repartition record of `rec`, which came from `source`
/// (`topic/partition`); `payload`: the source bytes, when the value is
/// unchanged JSON (else the value is serialized).
pub fn record(rec: &Record, source: &str, payload: Option<&[u8]>) -> OutMsg {
    let mut up = Vec::with_capacity(8 + source.len());
    up.extend_from_slice(&rec.origin.offset.to_be_bytes());
    up.extend_from_slice(source.as_bytes());
    let mut headers = OwnedHeaders::new_with_capacity(2).insert(Header {
        key: UP,
        value: Some(&up),
    });
    if let Some(e) = &rec.time_error {
        headers = headers.insert(Header {
            key: TIME_ERROR,
            value: Some(&**e),
        });
    }
    OutMsg {
        dest: Dest::Repartition(None),
        key: Some(rec.key.to_string().into_bytes()),
        payload: match payload {
            Some(p) => p.to_vec(),
            None => crate::codec::json_bytes(rec),
        },
        timestamp: if rec.time_error.is_some() {
            rec.timestamp
        } else {
            rec.event_time
        },
        headers: Some(headers),
    }
}

/// A watermark marker from `source` for repartition partition `partition`;
/// `end` marks the end of the input in `weir dev` (the downstream partition
/// knows it has seen everything once every source sent one).
pub fn marker(source: &str, watermark: i64, partition: i32, end: bool) -> OutMsg {
    let mut payload = serde_json::json!({"src": source, "watermark": watermark});
    if end {
        payload["end"] = Value::Bool(true);
    }
    OutMsg {
        dest: Dest::Repartition(Some(partition)),
        key: None,
        payload: payload.to_string().into_bytes(),
        timestamp: 0,
        headers: Some(OwnedHeaders::new_with_capacity(1).insert(Header {
            key: MARKER,
            value: Some("1"),
        })),
    }
}

/// A message read from the repartition topic; `'a` borrows the message.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A watermark marker: (upstream `topic/partition`, watermark ms, end of input).
    Marker(String, i64, bool),
    /// A record, with its upstream `topic/partition`.
    Record(Box<Record>, &'a str),
    /// Written by `weir reset-offsets`: the upstream partitions start over,
    /// so what was seen of them no longer holds.
    Reset,
}

/// Reads a repartition message; `None` for one weir did not write.
pub fn read<'a>(m: &'a BorrowedMessage<'_>) -> Option<Incoming<'a>> {
    let headers = m.headers()?;
    let ts = m.timestamp().to_millis().unwrap_or(0);
    read_parts(
        m.key(),
        m.payload(),
        ts,
        headers.iter().map(|h| (h.key, h.value)),
    )
}

/// [`read`] of a record as [`record`] or [`marker`] made it, before it is
/// produced (`weir test` crosses the repartition topic with no broker).
pub fn read_out(m: &OutMsg) -> Option<Incoming<'_>> {
    let headers = m.headers.as_ref()?;
    read_parts(
        m.key.as_deref(),
        Some(&m.payload),
        m.timestamp,
        headers.iter().map(|h| (h.key, h.value)),
    )
}

/// [`read`] of a message given by its parts: key, payload, Kafka
/// timestamp (ms) and headers.
fn read_parts<'a>(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    ts: i64,
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Option<Incoming<'a>> {
    let (mut marker, mut up, mut src, mut offset, mut time_error) = (false, None, None, None, None);
    for (k, v) in headers {
        match k {
            UP => up = v,
            MARKER => marker = true,
            crate::kafka::reset_state::RESET_HEADER => return Some(Incoming::Reset),
            SRC => src = v,
            OFFSET => offset = v,
            TIME_ERROR => time_error = v,
            _ => {}
        }
    }
    if marker {
        let v: Value = serde_json::from_slice(payload?).ok()?;
        return Some(Incoming::Marker(
            v["src"].as_str()?.to_owned(),
            v["watermark"].as_i64()?,
            v["end"].as_bool().unwrap_or(false),
        ));
    }
    let (src, offset) = match up {
        Some(up) if up.len() > 8 => {
            let (offset, src) = up.split_at(8);
            let offset = i64::from_be_bytes(offset.try_into().ok()?);
            (std::str::from_utf8(src).ok()?, offset)
        }
        Some(_) => return None,
        None => (
            std::str::from_utf8(src?).ok()?,
            std::str::from_utf8(offset?).ok()?.parse().ok()?,
        ),
    };
    let (topic, partition) = src.rsplit_once('/')?;
    let origin = Origin {
        topic: topic_arc(topic),
        partition: partition.parse().ok()?,
        offset,
    };
    let time_error = time_error.map(|e| Arc::from(String::from_utf8_lossy(e).as_ref()));
    let rec = decode(key?, payload?, ts, time_error, origin)?;
    Some(Incoming::Record(Box::new(rec), src))
}

/// The upstream topic's name as an `Arc`, shared by every record of the
/// topic (a pipeline reads a handful of topics; one allocation each per
/// thread instead of one per record).
fn topic_arc(topic: &str) -> Arc<str> {
    thread_local! {
        static TOPICS: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    TOPICS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(a) = t.iter().find(|a| &***a == topic) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(topic);
        if t.len() < 64 {
            t.push(Arc::clone(&a));
        }
        a
    })
}

/// The record a repartition message carries: key and payload are JSON,
/// the Kafka timestamp `ts` is its event time; `origin` and `time_error`
/// come from its headers. `None` when key or payload is not JSON.
pub fn decode(
    key: &[u8],
    payload: &[u8],
    ts: i64,
    time_error: Option<Arc<str>>,
    origin: Origin,
) -> Option<Record> {
    let mut rec = Record::new(serde_json::from_slice(key).ok()?, Value::Null);
    // An object stays undecoded, as at the source: the stages after the
    // repartition decode the fields they read.
    match crate::record::LazyObject::parse(payload) {
        Some(l) => rec.lazy = Some(Arc::new(l)),
        None => rec.value = serde_json::from_slice(payload).ok()?,
    }
    rec.timestamp = ts;
    rec.event_time = ts;
    rec.time_error = time_error;
    rec.origin = origin;
    Some(rec)
}

/// The downstream watermark: the minimum over `sources` (every upstream
/// partition) of their latest marker; `i64::MIN` while one has sent none.
pub fn watermark(sources: &[String], seen: &BTreeMap<String, Upstream>) -> i64 {
    sources
        .iter()
        .map(|s| seen.get(s).map_or(i64::MIN, |u| u.watermark))
        .min()
        .unwrap_or(i64::MIN)
}

/// Notes a record from `src` at upstream `offset`; false when it is a
/// repeat (not above the highest offset seen from `src`).
pub fn first_time(seen: &mut BTreeMap<String, Upstream>, src: &str, offset: i64) -> bool {
    let u = match seen.get_mut(src) {
        Some(u) => u,
        None => seen.entry(src.to_owned()).or_insert(Upstream {
            watermark: i64::MIN,
            offset: -1,
        }),
    };
    if offset <= u.offset {
        return false;
    }
    u.offset = offset;
    true
}

/// Notes a marker; markers of a replayed upstream may go back in time, the
/// latest watermark of a source never does.
pub fn note_marker(seen: &mut BTreeMap<String, Upstream>, src: &str, wm: i64) {
    let u = seen.entry(src.to_owned()).or_insert(Upstream {
        watermark: i64::MIN,
        offset: -1,
    });
    u.watermark = u.watermark.max(wm);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut rec = Record::new(
            serde_json::json!("/product/7"),
            serde_json::json!({"price": 1.5}),
        );
        rec.event_time = 1_000;
        rec.origin = Origin {
            topic: Arc::from("page-views"),
            partition: 3,
            offset: 4_294_967_301,
        };
        rec
    }

    #[test]
    fn a_record_crosses_with_its_upstream_and_offset_in_one_header() {
        let out = record(&sample(), "page-views/3", None);
        let headers: Vec<_> = out
            .headers
            .as_ref()
            .unwrap()
            .iter()
            .map(|h| (h.key.to_owned(), h.value.unwrap().to_vec()))
            .collect();
        let mut up = 4_294_967_301i64.to_be_bytes().to_vec();
        up.extend_from_slice(b"page-views/3");
        assert_eq!(headers, vec![(UP.to_owned(), up)]);
        let Some(Incoming::Record(rec, src)) = read_out(&out) else {
            panic!("not a record");
        };
        assert_eq!(src, "page-views/3");
        assert_eq!(rec.origin, sample().origin);
        assert_eq!(rec.event_time, 1_000);
        assert_eq!(rec.key, serde_json::json!("/product/7"));
        assert_eq!(rec.json(), &serde_json::json!({"price": 1.5}));
    }

    #[test]
    fn records_of_the_two_text_headers_are_still_read() {
        let h = [
            (SRC, Some(&b"page-views/3"[..])),
            (OFFSET, Some(&b"42"[..])),
        ];
        let Some(Incoming::Record(rec, src)) =
            read_parts(Some(b"\"k\""), Some(b"{\"a\":1}"), 5, h.into_iter())
        else {
            panic!("not a record");
        };
        assert_eq!(
            (src, rec.origin.offset, rec.origin.partition),
            ("page-views/3", 42, 3)
        );
        assert_eq!(&*rec.origin.topic, "page-views");
    }

    #[test]
    fn a_truncated_upstream_header_is_not_a_record() {
        let h = [(UP, Some(&[0u8, 0, 0, 0, 0, 0, 0, 1][..]))];
        assert!(read_parts(Some(b"\"k\""), Some(b"{}"), 5, h.into_iter()).is_none());
    }

    #[test]
    fn downstream_watermark_is_the_minimum_and_repeats_are_dropped() {
        let sources = vec!["in/0".to_owned(), "in/1".to_owned()];
        let mut seen = BTreeMap::new();
        note_marker(&mut seen, "in/0", 500);
        assert_eq!(
            watermark(&sources, &seen),
            i64::MIN,
            "in/1 sent nothing yet"
        );
        note_marker(&mut seen, "in/1", 300);
        note_marker(&mut seen, "in/1", 200); // a replay goes back
        assert_eq!(watermark(&sources, &seen), 300);
        assert!(first_time(&mut seen, "in/0", 7));
        assert!(!first_time(&mut seen, "in/0", 7));
        assert!(!first_time(&mut seen, "in/0", 3));
        assert!(first_time(&mut seen, "in/0", 8));
        assert_eq!(
            seen["in/0"],
            Upstream {
                watermark: 500,
                offset: 8
            }
        );
    }
}
