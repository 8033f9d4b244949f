//! [`LazyObject`]: a JSON object payload kept as its bytes with an index
//! of its top-level fields (a single validating scan), so that stages parse
//! only the fields they read; anything the scan is not sure of is left to
//! `serde_json`.

use serde_json::Value;
use std::ops::Range;
use std::sync::OnceLock;

mod scan;
#[cfg(test)]
use scan::skip_plain;
use scan::Scanner;

/// A JSON object read by the raw JSON text of its top-level fields, as
/// the native expression evaluator reads payloads (`expr::native`): a
/// [`LazyObject`], or the fields of a transform's output being built.
/// Each text is valid JSON as [`LazyObject::parse`] accepts it.
pub trait RawFields {
    /// The raw JSON text of the top-level field `name`, if present.
    fn raw(&self, name: &str) -> Option<&[u8]>;

    /// Whether the top-level field `name` is present.
    fn contains(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

impl RawFields for LazyObject {
    fn raw(&self, name: &str) -> Option<&[u8]> {
        LazyObject::raw(self, name)
    }
}

/// A JSON object payload as its bytes and the byte ranges of its top-level
/// fields, in order. Built only for payloads that `serde_json` would read
/// as the same object ([`LazyObject::parse`] is conservative: anything
/// unusual is left to `serde_json`), so decoding a field on its own gives
/// what decoding the whole payload would.
#[derive(Debug)]
pub struct LazyObject {
    /// A `Vec`, not a box: an object written by weir keeps its buffer
    /// as written (no shrinking copy).
    bytes: Vec<u8>,
    /// (key, value) byte ranges; keys have no escapes and are unique.
    fields: Vec<(Range<u32>, Range<u32>)>,
    whole: OnceLock<Value>,
    /// The bytes are what `serde_json::to_vec` gives for the value.
    canonical: bool,
}

impl LazyObject {
    /// Indexes `bytes` when they are a JSON object that needs no decoding to
    /// index: valid UTF-8, keys without escapes and unique, strings without
    /// `\u` escapes, numbers in range, nesting within limits. `None`
    /// otherwise (decode it with `serde_json`, which also gives the exact
    /// error for invalid JSON).
    pub fn parse(bytes: &[u8]) -> Option<LazyObject> {
        // UTF-8 is checked where it can occur: outside strings the scanner
        // accepts ASCII only, and a string with a non-ASCII byte is checked
        // whole ([`Scanner::string`]).
        if bytes.len() >= u32::MAX as usize {
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
                    .any(|(r, _)| same_key(&bytes[r.start as usize..r.end as usize], k))
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
            bytes: bytes.to_vec(),
            fields,
            whole: OnceLock::new(),
            canonical: false,
        })
    }

    /// An object from `bytes` that are canonical JSON (what
    /// `serde_json::to_vec` gives for their value) and the byte ranges of
    /// its fields (unique keys without escapes): what
    /// [`super::ObjectWriter`] writes.
    pub(super) fn from_canonical(bytes: Vec<u8>, fields: Vec<(Range<u32>, Range<u32>)>) -> Self {
        LazyObject {
            bytes,
            fields,
            whole: OnceLock::new(),
            canonical: true,
        }
    }

    /// The bytes when they are exactly what `serde_json::to_vec` gives for
    /// the value (so a sink can copy them), else `None`.
    pub fn canonical_bytes(&self) -> Option<&[u8]> {
        self.canonical.then_some(&*self.bytes)
    }

    /// Number of top-level fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the object has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
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
            .find(|(k, _)| same_key(&b[k.start as usize..k.end as usize], name.as_bytes()))
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
        self.whole.get_or_init(|| self.decode())
    }

    /// The whole payload, decoded.
    pub fn into_value(mut self) -> Value {
        match self.whole.take() {
            Some(v) => v,
            None => self.decode(),
        }
    }

    /// Decodes field by field from the index: the keys are unique and each
    /// field's text valid, so this is the object serde_json reads from the
    /// whole text, without scanning it again.
    fn decode(&self) -> Value {
        let mut m = serde_json::Map::with_capacity(self.fields.len());
        for (k, v) in self.fields() {
            m.insert(k.to_owned(), decode_raw(v));
        }
        Value::Object(m)
    }
}

/// Decodes one field's raw JSON text (checked by [`LazyObject::parse`]).
pub fn decode_raw(raw: &[u8]) -> Value {
    if let Some(i) = plain_int(raw) {
        return Value::from(i);
    }
    match raw.first() {
        Some(b'"') if !raw.contains(&b'\\') => Value::String(
            std::str::from_utf8(&raw[1..raw.len() - 1])
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => serde_json::from_slice(raw).expect("a LazyObject field is valid JSON"),
    }
}

/// Whether two keys are equal; their lengths and first bytes are
/// compared before the rest (most keys differ there), which a slice
/// comparison does with a call.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

/// The value of `raw` when it is a plain JSON integer of at most 18
/// digits (so it fits an `i64`), as serde_json reads it; `None` for
/// anything else, `-0` included (serde_json reads it as the float -0.0).
pub fn plain_int(raw: &[u8]) -> Option<i64> {
    let (neg, digits) = match raw {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, raw),
    };
    if digits.is_empty() || digits.len() > 18 || (neg && digits == b"0") {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time skip finds what a byte loop finds, wherever the
    /// byte is and whatever precedes it.
    #[test]
    fn skip_plain_finds_the_first_special_byte() {
        let naive = |b: &[u8], i: usize| {
            (i..b.len())
                .find(|&j| matches!(b[j], b'"' | b'\\' | 0..=0x1f | 0x80..=0xff))
                .unwrap_or(b.len())
        };
        let specials = [b'"', b'\\', 0x00, 0x1f, 0x80, 0xc3, 0xff];
        let fillers = [b'a', b' ', 0x21, 0x7f, b'!', b'#', b'[', b']'];
        for len in 0..40 {
            for &f in &fillers {
                let mut b = vec![f; len];
                assert_eq!(skip_plain(&b, 0), naive(&b, 0));
                for at in 0..len {
                    for &s in &specials {
                        b[at] = s;
                        // A second special after the first, and borrow-prone
                        // bytes (0x01, 0x21, 0x5d) before it.
                        if at + 3 < len {
                            b[at + 3] = b'"';
                        }
                        if at > 0 {
                            b[at - 1] = [0x01, 0x21, 0x5d][at % 3];
                        }
                        for start in [0, at / 2, at] {
                            assert_eq!(
                                skip_plain(&b, start),
                                naive(&b, start),
                                "{b:?} from {start}"
                            );
                        }
                        b = vec![f; len];
                    }
                }
            }
        }
    }

    #[test]
    fn plain_integers_decode_as_serde_json_reads_them() {
        for text in [
            "0",
            "-1",
            "7",
            "42",
            "-0",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
            "1.5",
            "1e3",
            "-",
            "",
            "--1",
        ] {
            let want = serde_json::from_str::<Value>(text).ok();
            let fast = plain_int(text.as_bytes()).map(Value::from);
            if let Some(f) = &fast {
                assert_eq!(Some(f), want.as_ref(), "{text}");
            }
            if let Some(w) = want {
                assert_eq!(decode_raw(text.as_bytes()), w, "{text}");
            }
        }
        assert_eq!(plain_int(b"-0"), None);
        assert_eq!(plain_int(b"1234567890123456789"), None, "19 digits");
        assert_eq!(plain_int(b"-42"), Some(-42));
    }

    #[test]
    fn checks_utf8_inside_strings_only() {
        assert!(LazyObject::parse("{\"a\": \"é😀x\", \"é\": 1}".as_bytes()).is_some());
        assert!(LazyObject::parse(b"{\"a\": \"\xc3\"}").is_none());
        assert!(LazyObject::parse(b"{\"a\xff\": 1}").is_none());
        assert!(LazyObject::parse(b"{\"a\": 1}\xc3\xa9").is_none());
        assert!(LazyObject::parse(b"{\"a\":\xc3\xa9 1}").is_none());
        let long = format!("{{\"a\": \"{}é{}\\n\"}}", "x".repeat(21), "y".repeat(9));
        let l = LazyObject::parse(long.as_bytes()).unwrap();
        assert_eq!(l.value(), &serde_json::from_str::<Value>(&long).unwrap());
    }

    /// Nested arrays and objects: what the scanner accepts is what
    /// serde_json reads, with the same value; anything malformed (a
    /// trailing comma, a missing colon, an unclosed level) or nested past
    /// the depth limit is left to serde_json.
    #[test]
    fn nested_values_are_accepted_exactly_when_valid() {
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        for ok in [
            "[]",
            "{}",
            "[1, [2, {\"b\": [true, null]}], \"x\"]",
            "{\"b\": {\"c\": {}}, \"d\": [[], {}]}",
            " [ 1 ,2 ] ",
        ] {
            let text = format!("{{\"a\": {ok}}}");
            let l = LazyObject::parse(text.as_bytes()).unwrap_or_else(|| panic!("{ok}"));
            assert_eq!(l.value(), &serde_json::from_str::<Value>(&text).unwrap());
        }
        for bad in [
            "[1,]",
            "[1 2]",
            "{\"b\" 1}",
            "{\"b\": 1,}",
            "[1",
            "{\"b\": [}",
            "{1: 2}",
            &deep,
        ] {
            let text = format!("{{\"a\": {bad}}}");
            assert!(LazyObject::parse(text.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn numbers_in_range_only() {
        let nines = "9".repeat(300);
        let long = format!("{}.5", &nines[..290]);
        for ok in ["1.5", "-0.25", "1e300", "1.0E+2", &long] {
            let text = format!("{{\"a\": {ok}}}");
            assert!(LazyObject::parse(text.as_bytes()).is_some(), "{ok}");
        }
        for odd in [
            "1e301",
            "-2e300",
            "1e999",
            &format!("{nines}0"),
            &format!("1.{nines}"),
        ] {
            let text = format!("{{\"a\": {odd}}}");
            assert!(LazyObject::parse(text.as_bytes()).is_none(), "{odd}");
        }
    }
}
