//! [`ObjectWriter`]: writes a JSON object straight to bytes, in the exact
//! text `serde_json` gives the same object (compact, fields in the order
//! written), and hands it over as a [`LazyObject`] whose field index is
//! known from the writing, so that nothing is parsed again and a sink
//! copies the bytes as they are.

use super::lazy::LazyObject;
use serde_json::Value;
use std::ops::Range;

/// Builds one JSON object's bytes and field index. Every value written must
/// be canonical JSON text: what `serde_json::to_vec` gives for its value
/// (as [`ObjectWriter::value`] writes, and as the JSON text of a key in a
/// window's key table is).
#[derive(Debug)]
pub struct ObjectWriter {
    buf: Vec<u8>,
    fields: Vec<(Range<u32>, Range<u32>)>,
}

/// Whether `name` can be a field of an [`ObjectWriter`]: serde_json writes
/// it without escapes (no quote, backslash or control character), so the
/// field index can compare it with the bytes as they are.
pub fn plain_name(name: &str) -> bool {
    name.bytes().all(|c| c != b'"' && c != b'\\' && c >= 0x20)
}

impl ObjectWriter {
    /// An empty object, with room for about `bytes` bytes and `fields`
    /// fields.
    pub fn with_capacity(bytes: usize, fields: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes);
        buf.push(b'{');
        ObjectWriter {
            buf,
            fields: Vec::with_capacity(fields),
        }
    }

    /// Adds the field `name` (a [`plain_name`], not written before), its
    /// value written by `write` into the buffer: canonical JSON text.
    pub fn field(&mut self, name: &str, write: impl FnOnce(&mut Vec<u8>)) {
        debug_assert!(plain_name(name), "{name:?} needs escapes");
        if self.fields.is_empty() {
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(b",\"");
        }
        let k = self.buf.len() as u32;
        self.buf.extend_from_slice(name.as_bytes());
        let k = k..self.buf.len() as u32;
        self.buf.extend_from_slice(b"\":");
        let v = self.buf.len() as u32;
        write(&mut self.buf);
        self.fields.push((k, v..self.buf.len() as u32));
    }

    /// [`ObjectWriter::field`] with canonical JSON text `raw`.
    pub fn raw(&mut self, name: &str, raw: &[u8]) {
        self.field(name, |b| b.extend_from_slice(raw));
    }

    /// [`ObjectWriter::field`] with the JSON text of `v`.
    pub fn value(&mut self, name: &str, v: &Value) {
        self.field(name, |b| write_value(b, v));
    }

    /// The object, as a lazy payload whose bytes are canonical.
    pub fn finish(mut self) -> LazyObject {
        self.buf.push(b'}');
        LazyObject::from_canonical(self.buf, self.fields)
    }
}

/// Appends the compact JSON text of `v` (as `serde_json::to_vec`).
pub fn write_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::Number(n) if n.is_i64() => write_int(buf, n.as_i64().unwrap_or_default()),
        // Writing JSON into a Vec cannot fail (no I/O error, and a Value
        // has only string keys).
        other => serde_json::to_writer(&mut *buf, other).unwrap_or_default(),
    }
}

/// Appends the decimal text of `i` (as serde_json writes an integer).
pub fn write_int(buf: &mut Vec<u8>, i: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = i.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_serde_json_writes() {
        let mut w = ObjectWriter::with_capacity(16, 4);
        w.raw("key", br#""/p/1""#);
        w.value("window", &json!({"start": 0, "end": 60000}));
        w.value("n", &json!(3));
        w.value("x", &json!(1.5));
        w.value("s", &json!("a\"é\n"));
        w.value("none", &Value::Null);
        w.value("é", &json!([true, false]));
        let l = w.finish();
        let want = json!({"key": "/p/1", "window": {"start": 0, "end": 60000}, "n": 3,
            "x": 1.5, "s": "a\"é\n", "none": null, "é": [true, false]});
        assert_eq!(
            l.canonical_bytes(),
            Some(&serde_json::to_vec(&want).unwrap()[..])
        );
        assert_eq!(l.value(), &want);
        assert_eq!(l.raw("x"), Some(&b"1.5"[..]));
        assert_eq!(l.raw("é"), Some(&b"[true,false]"[..]));
        let names: Vec<&str> = l.fields().map(|(k, _)| k).collect();
        assert_eq!(names, ["key", "window", "n", "x", "s", "none", "é"]);
        let empty = ObjectWriter::with_capacity(2, 0).finish();
        assert_eq!(empty.canonical_bytes(), Some(&b"{}"[..]));
    }

    #[test]
    fn integers_as_serde_json_writes_them() {
        for i in [0, 7, -7, 10, 1_767_225_600_000, i64::MAX, i64::MIN, -1] {
            let mut b = Vec::new();
            write_value(&mut b, &json!(i));
            assert_eq!(b, serde_json::to_vec(&i).unwrap(), "{i}");
        }
        let mut b = Vec::new();
        write_value(&mut b, &json!(u64::MAX));
        assert_eq!(b, b"18446744073709551615");
    }

    #[test]
    fn plain_names_need_no_escapes() {
        assert!(plain_name("views") && plain_name("é x") && plain_name(""));
        assert!(!plain_name("a\"b") && !plain_name("a\\b") && !plain_name("a\nb"));
    }
}
