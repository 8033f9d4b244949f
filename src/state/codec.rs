//! The record formats of the state layer (DESIGN.md §4, "The state
//! layer"): the names of the internal topics, the keys of changelog
//! entries and markers, and the versioned values of entries, markers and
//! checkpoints. Nothing outside `state/` knows these shapes.
//!
//! **Keys** are JSON text, as they always were: an entry's key is
//! `[source, stage, key, start]`, a marker's `["marker", source]`, a
//! checkpoint's `topic/partition`. A key is the identity compaction keeps
//! one record of, so it never changes across format versions (a new key for
//! the same window would leave the old record behind a tombstone that
//! compaction later deletes, and the window would come back).
//!
//! **Values** start with a version byte:
//! - version 1 ([`VERSION`]): byte `0x01`, then, for a window entry, the
//!   MessagePack encoding of [`WindowEntry`] (self-describing: record keys
//!   and aggregate values are any JSON value); for a marker or a
//!   checkpoint, the fixed binary layout of [`encode_checkpoint`];
//! - version 0: the JSON text weir wrote before versions existed (its first
//!   byte is `{`, which no later version uses). It is still read.
//!
//! Every changelog record carries the header [`SEQ_HEADER`]: the number of
//! the state write it belongs to, as decimal text.

use crate::operator::window::{WindowEntry, WindowEntryRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The version byte written first in every value of this format.
pub const VERSION: u8 = 1;

/// Header carrying the state write number (decimal text).
pub const SEQ_HEADER: &str = "weir.seq";

/// One partition's checkpoint (also the payload of a changelog marker).
///
/// A checkpoint says: every record of the input partition before `offset`
/// is fully handled and everything it caused is acknowledged; the
/// partition's watermark then was `watermark`; and its state as of `offset`
/// is in the changelogs, in writes numbered up to `seq`. It is written only
/// after those writes are acknowledged, so it is what confirms them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Next input offset to process.
    pub offset: i64,
    /// Watermark (ms) just before `offset`; `i64::MIN` when none yet.
    pub watermark: i64,
    /// The last changelog write the state at `offset` consists of.
    #[serde(default)]
    pub seq: u64,
    /// After a repartition: per upstream partition (`topic/partition`), the
    /// latest watermark marker and the highest upstream offset seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upstream: BTreeMap<String, Upstream>,
}

/// What a repartition topic's partition has seen of one upstream partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Latest watermark marker, ms.
    pub watermark: i64,
    /// Highest upstream source offset of a record seen; records at or below
    /// it are repeats from an upstream replay and are dropped.
    pub offset: i64,
}

/// A value that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No bytes at all.
    #[error("empty value")]
    Empty,
    /// A version byte this build does not know (written by a newer weir).
    #[error("unknown format version {0} (this weir reads versions 0 and 1)")]
    UnknownVersion(u8),
    /// The value ends before its layout does.
    #[error("truncated value: {0}")]
    Truncated(&'static str),
    /// A version-0 (JSON) value that does not parse.
    #[error("version 0 (JSON): {0}")]
    Json(#[from] serde_json::Error),
    /// A version-1 entry that does not decode.
    #[error("version 1 (MessagePack): {0}")]
    MessagePack(#[from] rmp_serde::decode::Error),
}

/// The changelog topic of store `store` of the pipeline run by consumer
/// group `group`: `<group>.<store>.changelog` (internal topics are scoped
/// by the group id, DESIGN.md §3).
pub fn changelog_topic(group: &str, store: &str) -> String {
    format!("{group}.{store}.changelog")
}

/// The store name of the window stage at index `stage`: its index, so the
/// changelog topic is `<group>.<stage>.changelog`, as before stores had names.
pub fn window_store(stage: usize) -> String {
    stage.to_string()
}

/// The checkpoint record key of an input partition: `topic/partition`
/// (also the `source` part of changelog keys).
pub fn source_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The value of the [`SEQ_HEADER`] header of write `seq`.
pub fn seq_text(seq: u64) -> String {
    seq.to_string()
}

/// Parses a [`SEQ_HEADER`] value; `None` when it is not a decimal number.
pub fn parse_seq(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The changelog record key of a window: the JSON array
/// `[source, stage, key, start]`, where `source` is `topic/partition` of the
/// stage's input partition and `stage` the stage index. `key_text` must be
/// the key's JSON text.
pub fn entry_key(source: &str, stage: usize, key_text: &str, start: i64) -> String {
    let mut out = String::with_capacity(source.len() + key_text.len() + 32);
    write_entry_key(&mut out, source, stage, key_text, start);
    out
}

/// [`entry_key`] into `out` (cleared first): no allocation per entry.
pub fn write_entry_key(out: &mut String, source: &str, stage: usize, key_text: &str, start: i64) {
    use std::fmt::Write as _;
    out.clear();
    out.push('[');
    push_json_string(out, source);
    let _ = write!(out, ",{stage},{key_text},{start}]");
}

fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

/// An entry key made by [`entry_key`], parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryKey {
    /// `topic/partition` of the input partition.
    pub source: String,
    /// Stage index.
    pub stage: usize,
    /// The record key.
    pub key: Value,
    /// Window start, ms.
    pub start: i64,
}

/// Parses a key made by [`entry_key`]; `None` for anything else (such as
/// a marker).
pub fn parse_entry_key(bytes: &[u8]) -> Option<EntryKey> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let mut a = match v {
        Value::Array(a) if a.len() == 4 => a,
        _ => return None,
    };
    let start = a[3].as_i64()?;
    let stage = usize::try_from(a[1].as_u64()?).ok()?;
    let key = a[2].take();
    let Value::String(source) = a[0].take() else {
        return None;
    };
    Some(EntryKey {
        source,
        stage,
        key,
        start,
    })
}

/// The `source` of an entry key made by [`entry_key`], read without
/// parsing the rest of the key (borrowed when it needs no unescaping);
/// `None` for anything else.
pub fn entry_source(bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let rest = bytes.strip_prefix(b"[\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] == b'"' && rest.get(end + 1) == Some(&b',') {
        return std::str::from_utf8(&rest[..end]).ok().map(Into::into);
    }
    parse_entry_key(bytes).map(|k| k.source.into())
}

/// The changelog record key of a partition's marker: `["marker", source]`.
pub fn marker_key(source: &str) -> String {
    let mut out = String::from("[\"marker\",");
    push_json_string(&mut out, source);
    out.push(']');
    out
}

/// The source of a key made by [`marker_key`]; `None` for anything else.
pub fn parse_marker_key(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"[\"marker\",") {
        return None;
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    match v.as_array()?.as_slice() {
        [Value::String(m), Value::String(source)] if m == "marker" => Some(source.clone()),
        _ => None,
    }
}

/// Encodes a window entry (version 1) into `out` (cleared first).
pub fn encode_entry(entry: &WindowEntryRef<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    // Writing to a Vec cannot fail; every field of an entry serialises.
    let _ = rmp_serde::encode::write(out, entry);
}

/// Decodes a window entry of any version.
///
/// # Errors
/// [`CodecError`] for an empty value, an unknown version, or bytes that do
/// not decode.
pub fn decode_entry(bytes: &[u8]) -> Result<WindowEntry, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&VERSION) => Ok(rmp_serde::from_slice(&bytes[1..])?),
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        Some(v) => Err(CodecError::UnknownVersion(*v)),
    }
}

/// Encodes a checkpoint (or marker), version 1: the version byte, then
/// `offset` (i64), `watermark` (i64), `seq` (u64), the number of upstream
/// partitions (u32), and per upstream partition the length of its name
/// (u16), the name (UTF-8), its watermark (i64) and offset (i64); integers
/// little-endian.
pub fn encode_checkpoint(cp: &Checkpoint) -> Vec<u8> {
    let names: usize = cp.upstream.keys().map(|k| k.len() + 18).sum();
    let mut out = Vec::with_capacity(29 + names);
    out.push(VERSION);
    out.extend_from_slice(&cp.offset.to_le_bytes());
    out.extend_from_slice(&cp.watermark.to_le_bytes());
    out.extend_from_slice(&cp.seq.to_le_bytes());
    out.extend_from_slice(&(cp.upstream.len() as u32).to_le_bytes());
    for (name, u) in &cp.upstream {
        let n = name.len().min(u16::MAX as usize);
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&name.as_bytes()[..n]);
        out.extend_from_slice(&u.watermark.to_le_bytes());
        out.extend_from_slice(&u.offset.to_le_bytes());
    }
    out
}

/// Decodes a checkpoint (or marker) of any version.
///
/// # Errors
/// [`CodecError`] for an empty value, an unknown version, or bytes that do
/// not decode.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Checkpoint, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&VERSION) => {
            let mut r = Reader(&bytes[1..]);
            let offset = r.i64("offset")?;
            let watermark = r.i64("watermark")?;
            let seq = r.i64("seq")? as u64;
            let n = u32::from_le_bytes(r.take(4, "upstream count")?.try_into().unwrap_or_default());
            let mut upstream = BTreeMap::new();
            for _ in 0..n {
                let len =
                    u16::from_le_bytes(r.take(2, "name length")?.try_into().unwrap_or_default());
                let name = String::from_utf8_lossy(r.take(len as usize, "name")?).into_owned();
                let watermark = r.i64("upstream watermark")?;
                let offset = r.i64("upstream offset")?;
                upstream.insert(name, Upstream { watermark, offset });
            }
            Ok(Checkpoint {
                offset,
                watermark,
                seq,
                upstream,
            })
        }
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        Some(v) => Err(CodecError::UnknownVersion(*v)),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests;
