//! [`LazyObject`]: a JSON object payload kept as its bytes with an index
//! of its top-level fields (a single validating scan), so that stages parse
//! only the fields they read; anything the scan is not sure of is left to
//! `serde_json`.

use serde_json::Value;
use std::ops::Range;
use std::sync::OnceLock;

/// Nesting deeper than this is left to `serde_json` (its limit is 128).
const MAX_DEPTH: usize = 100;

/// A JSON object payload as its bytes and the byte ranges of its top-level
/// fields, in order. Built only for payloads that `serde_json` would read
/// as the same object ([`LazyObject::parse`] is conservative: anything
/// unusual is left to `serde_json`), so decoding a field on its own gives
/// what decoding the whole payload would.
#[derive(Debug)]
pub struct LazyObject {
    bytes: Box<[u8]>,
    /// (key, value) byte ranges; keys have no escapes and are unique.
    fields: Vec<(Range<u32>, Range<u32>)>,
    whole: OnceLock<Value>,
}

impl LazyObject {
    /// Indexes `bytes` when they are a JSON object that needs no decoding to
    /// index: valid UTF-8, keys without escapes and unique, strings without
    /// `\u` escapes, numbers in range, nesting within limits. `None`
    /// otherwise (decode it with `serde_json`, which also gives the exact
    /// error for invalid JSON).
    pub fn parse(bytes: &[u8]) -> Option<LazyObject> {
        if bytes.len() >= u32::MAX as usize || std::str::from_utf8(bytes).is_err() {
            return None;
        }
        let mut s = Scanner { b: bytes, i: 0 };
        s.ws();
        if s.peek()? != b'{' {
            return None;
        }
        s.i += 1;
        let mut fields: Vec<(Range<u32>, Range<u32>)> = Vec::with_capacity(8);
        s.ws();
        if s.peek()? == b'}' {
            s.i += 1;
        } else {
            loop {
                s.ws();
                let key = s.string(true)?;
                let k = &bytes[key.start + 1..key.end - 1];
                if fields
                    .iter()
                    .any(|(r, _)| &bytes[r.start as usize..r.end as usize] == k)
                {
                    return None;
                }
                s.ws();
                if s.peek()? != b':' {
                    return None;
                }
                s.i += 1;
                s.ws();
                let start = s.i;
                s.value(1)?;
                fields.push((
                    (key.start + 1) as u32..(key.end - 1) as u32,
                    start as u32..s.i as u32,
                ));
                s.ws();
                match s.peek()? {
                    b',' => s.i += 1,
                    b'}' => {
                        s.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        s.ws();
        if s.i != bytes.len() {
            return None;
        }
        Some(LazyObject {
            bytes: bytes.into(),
            fields,
            whole: OnceLock::new(),
        })
    }

    /// The payload bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw JSON text of the top-level field `name`, if present.
    pub fn raw(&self, name: &str) -> Option<&[u8]> {
        let b = &*self.bytes;
        self.fields
            .iter()
            .find(|(k, _)| &b[k.start as usize..k.end as usize] == name.as_bytes())
            .map(|(_, v)| &b[v.start as usize..v.end as usize])
    }

    /// Whether the top-level field `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// Top-level fields in order: (name, raw JSON text).
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let b = &*self.bytes;
        self.fields.iter().map(move |(k, v)| {
            (
                // Checked UTF-8 in `parse`; key ranges sit between quotes.
                std::str::from_utf8(&b[k.start as usize..k.end as usize]).unwrap_or_default(),
                &b[v.start as usize..v.end as usize],
            )
        })
    }

    /// The top-level field `name`, decoded.
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some(Value::Object(o)) = self.whole.get() {
            return o.get(name).cloned();
        }
        self.raw(name).map(decode_raw)
    }

    /// The whole payload, decoded once.
    pub fn value(&self) -> &Value {
        self.whole.get_or_init(|| {
            serde_json::from_slice(&self.bytes).expect("a LazyObject is valid JSON")
        })
    }

    /// The whole payload, decoded.
    pub fn into_value(self) -> Value {
        match self.whole.into_inner() {
            Some(v) => v,
            None => serde_json::from_slice(&self.bytes).expect("a LazyObject is valid JSON"),
        }
    }
}

/// Decodes one field's raw JSON text (checked by [`LazyObject::parse`]).
pub fn decode_raw(raw: &[u8]) -> Value {
    match raw.first() {
        Some(b'"') if !raw.contains(&b'\\') => Value::String(
            std::str::from_utf8(&raw[1..raw.len() - 1])
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => serde_json::from_slice(raw).expect("a LazyObject field is valid JSON"),
    }
}

/// A validating scanner over JSON text; every method returns `None` for
/// anything it does not accept.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A string starting at the quote; its range, quotes included. `key`
    /// refuses any escape, values refuse `\u`.
    fn string(&mut self, key: bool) -> Option<Range<usize>> {
        let start = self.i;
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        loop {
            // Skip plain bytes in one go; stop at a quote, escape or control.
            let rest = self.b.get(self.i..)?;
            self.i += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(rest.len());
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(start..self.i);
                }
                b'\\' if !key => {
                    match self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        _ => return None,
                    }
                    self.i += 2;
                }
                c if c < 0x20 || c == b'\\' => return None,
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - s
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.b[int_start] == b'0') || n > 300 {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if float {
            // Out of range is an error for serde_json: leave it the case.
            let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
            let f: f64 = text.parse().ok()?;
            if !f.is_finite() || f.abs() > 1e300 || self.i - start > 300 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(false).map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string(false)?;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}
