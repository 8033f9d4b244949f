//! A transform of a lazy payload that never decodes it: the output object
//! is spliced from the source's raw field texts and the `set` results, and
//! written straight to bytes ([`ObjectWriter`]) in the exact text the JSON
//! map path gives (`serde_json` with `preserve_order`: select in its
//! order, rename moves a field to the end, `set` replaces in place or
//! appends, drop removes). Used when every path of `select` and `drop` is
//! a top-level member and every new name needs no escapes; anything else
//! takes the map path.

use super::Transform;
use crate::expr::{ExprError, JsonPath};
use crate::record::{
    decode_raw, plain_int, plain_name, LazyObject, ObjectWriter, RawFields, Record,
};
use cel::Context;
use serde_json::{Map, Value};
use std::ops::Range;
use std::sync::Arc;

/// Where a field's JSON text is.
#[derive(Debug, Clone)]
enum Text<'a> {
    /// In the source payload, as it was written there.
    Source(&'a [u8]),
    /// In [`Fields::own`], canonical (a `set` result).
    Own(Range<usize>),
}

/// The output object being built: fields in order, by name.
struct Fields<'a> {
    list: Vec<(&'a str, Text<'a>)>,
    own: Vec<u8>,
}

impl<'a> Fields<'a> {
    fn position(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|(n, _)| *n == name)
    }

    fn text(&self, t: &Text<'a>) -> &[u8] {
        match t {
            Text::Source(b) => b,
            Text::Own(r) => &self.own[r.clone()],
        }
    }

    /// As `IndexMap::insert`: replaces in place, else appends.
    fn insert(&mut self, name: &'a str, t: Text<'a>) {
        match self.position(name) {
            Some(i) => self.list[i].1 = t,
            None => self.list.push((name, t)),
        }
    }

    /// As `IndexMap::shift_remove`.
    fn remove(&mut self, name: &str) -> Option<Text<'a>> {
        self.position(name).map(|i| self.list.remove(i).1)
    }

    /// The object as a JSON map (for the CEL program, and for a record
    /// error's record).
    fn to_value(&self) -> Value {
        let mut m = Map::with_capacity(self.list.len());
        for (n, t) in &self.list {
            m.insert((*n).to_owned(), decode_raw(self.text(t)));
        }
        Value::Object(m)
    }
}

impl RawFields for Fields<'_> {
    fn raw(&self, name: &str) -> Option<&[u8]> {
        self.position(name).map(|i| self.text(&self.list[i].1))
    }
}

/// Whether `raw` (a field text [`LazyObject::parse`] accepted) is already
/// what `serde_json` writes for its value: a string whose escapes are the
/// ones serde_json writes, a plain integer, `true`, `false`, `null`.
/// Floats, nested values and the rest are written again from their value.
fn canonical(raw: &[u8]) -> bool {
    match raw.first() {
        Some(b'"') => {
            let mut escaped = false;
            for &c in &raw[1..raw.len() - 1] {
                if escaped {
                    if !matches!(c, b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') {
                        return false;
                    }
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                }
            }
            true
        }
        Some(b't' | b'f' | b'n') => true,
        _ => plain_int(raw).is_some(),
    }
}

impl Transform {
    /// Whether [`Transform::apply_spliced`] applies to this transform.
    pub(super) fn splices(&self) -> bool {
        self.select.iter().all(|p| p.top_field().is_some())
            && self.drop.iter().all(|p| p.top_field().is_some())
            && self.rename.iter().all(|(_, to)| plain_name(to))
            && self.set.iter().all(|(name, _)| plain_name(name))
    }

    /// The transform of the lazy payload `l` of `rec` (taken out of it),
    /// written to `rec.lazy` as canonical bytes. On a `set` error, `rec.value`
    /// holds the object as it was then, as the map path leaves it.
    ///
    /// # Errors
    /// [`ExprError`] when a `set` expression fails.
    pub(super) fn apply_spliced(
        &self,
        root: &Context<'static, 'static>,
        rec: &mut Record,
        l: Arc<LazyObject>,
    ) -> Result<(), ExprError> {
        let mut f = Fields {
            list: Vec::with_capacity(l.len().max(self.select.len()) + self.set.len()),
            own: Vec::new(),
        };
        if self.select.is_empty() {
            f.list
                .extend(l.fields().map(|(n, raw)| (n, Text::Source(raw))));
        } else {
            for name in self.select.iter().filter_map(JsonPath::top_field) {
                if let Some(raw) = l.raw(name) {
                    f.insert(name, Text::Source(raw));
                }
            }
        }
        for (from, to) in &self.rename {
            if let Some(t) = f.remove(from) {
                f.insert(to, t);
            }
        }
        for (name, expr) in &self.set {
            let j = match expr.eval_json_native_in(&f) {
                Some(j) => j,
                None => {
                    rec.value = f.to_value();
                    let j = expr.eval_json(root, rec);
                    rec.value = Value::Null;
                    match j {
                        Ok(j) => j,
                        Err(e) => {
                            rec.value = f.to_value();
                            return Err(e);
                        }
                    }
                }
            };
            let start = f.own.len();
            crate::record::write_value(&mut f.own, &j);
            f.insert(name, Text::Own(start..f.own.len()));
        }
        for name in self.drop.iter().filter_map(JsonPath::top_field) {
            f.remove(name);
        }
        let mut o = ObjectWriter::with_capacity(l.bytes().len() + f.own.len(), f.list.len());
        for (name, t) in &f.list {
            match t {
                Text::Source(raw) if !canonical(raw) => {
                    o.value(name, &decode_raw(raw));
                }
                t => o.raw(name, f.text(t)),
            }
        }
        rec.lazy = Some(Arc::new(o.finish()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts_are_what_serde_json_writes() {
        for raw in [
            r#""a""#,
            r#""a\"b\\c\n\t\r\b\f""#,
            r#""é""#,
            "true",
            "false",
            "null",
            "0",
            "-5",
            "123456789012345678",
        ] {
            assert!(canonical(raw.as_bytes()), "{raw}");
            let v: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), raw);
        }
        for raw in [
            r#""a\/b""#,
            "1.5",
            "-0",
            "1e2",
            "[1]",
            "{}",
            "12345678901234567890",
        ] {
            assert!(!canonical(raw.as_bytes()), "{raw}");
        }
    }
}

/// The spliced transform agrees with the map path byte for byte.
#[cfg(test)]
mod agreement {
    use crate::codec::encode_value;
    use crate::expr::{CelEnv, JsonPath};
    use crate::operator::transform::Transform;
    use crate::record::{LazyObject, Record};
    use crate::spec::Format;
    use serde_json::Value;
    use std::sync::Arc;

    fn paths(ps: &[&str]) -> Vec<JsonPath> {
        ps.iter().map(|p| JsonPath::compile(p).unwrap()).collect()
    }

    #[test]
    fn splices_what_the_map_path_gives() {
        let env = CelEnv::new();
        let root = env.root();
        let sets = |pairs: &[(&str, &str)]| -> Vec<(String, crate::expr::CelExpr)> {
            pairs
                .iter()
                .map(|(n, e)| ((*n).to_owned(), env.compile(e).unwrap()))
                .collect()
        };
        let transforms = [
            Transform {
                select: paths(&["$.id", "$.user", "$.page", "$.ts", "$.price"]),
                set: sets(&[("cents", "int(value.price * 100.0)")]),
                drop: paths(&["$.price"]),
                ..Default::default()
            },
            Transform {
                select: paths(&["$.b", "$.a", "$.b", "$.missing", "$.n"]),
                rename: vec![("a".into(), "z".into()), ("b".into(), "b".into())],
                set: sets(&[
                    ("a", "value.z + '!'"),
                    ("z", "1.5"),
                    ("w", "value.n"),
                    ("s", "value.b.split('/')"),
                ]),
                ..Default::default()
            },
            Transform {
                rename: vec![("a".into(), "n".into())],
                set: sets(&[("k", "has(value.x)"), ("e", "value.x * 2")]),
                drop: paths(&["$.b", "$.nope"]),
                ..Default::default()
            },
            Transform {
                drop: paths(&["$.a"]),
                ..Default::default()
            },
        ];
        let payloads = [
            r#"{"id": 1, "user": "u\"1", "page": "/p\/1", "ts": 17, "price": 12.5, "ua": "x"}"#,
            r#"{"a":"x","b":"/é/2","n":{"deep":[1, 2.50,-0]},"x":3,"price":-0}"#,
            r#"{"b": 1.0e2, "a": true, "x": "three", "n": null}"#,
            r#"{}"#,
            r#"{"x": 18446744073709551615, "a": [ ], "price": 7}"#,
        ];
        for (ti, t) in transforms.iter().enumerate() {
            assert!(t.splices(), "transform {ti}");
            for p in payloads {
                let whole: Value = serde_json::from_str(p).unwrap();
                let mut eager = Record::new(Value::Null, whole);
                let mut lazy = Record::new(Value::Null, Value::Null);
                lazy.lazy = Some(Arc::new(LazyObject::parse(p.as_bytes()).unwrap()));
                let want = t.apply(&root, &mut eager);
                let got = t.apply(&root, &mut lazy);
                assert_eq!(got, want, "transform {ti} on {p}");
                if want.is_ok() {
                    assert_eq!(
                        String::from_utf8(encode_value(&lazy, Format::Json)).unwrap(),
                        serde_json::to_string(&eager.value).unwrap(),
                        "transform {ti} on {p}"
                    );
                    let l = lazy.lazy.as_ref().unwrap();
                    assert!(l.canonical_bytes().is_some());
                    assert_eq!(l.value(), &eager.value);
                } else {
                    assert_eq!(lazy.json(), &eager.value, "transform {ti} on {p}");
                }
            }
        }
    }

    #[test]
    fn other_paths_take_the_map_path() {
        for t in [
            Transform {
                select: paths(&["$.a.b"]),
                ..Default::default()
            },
            Transform {
                drop: paths(&["$.items[*]"]),
                ..Default::default()
            },
            Transform {
                rename: vec![("a".into(), "q\"".into())],
                ..Default::default()
            },
        ] {
            assert!(!t.splices());
        }
    }
}
