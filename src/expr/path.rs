//! JSONPath (RFC 9535) paths, compiled once with `jsonpath-rust`.
//!
//! Paths made only of member names (`$.a.b`, `$['a']`) take a fast path that
//! walks the object directly; other paths (wildcards, filters, descendants,
//! indices) go through the crate's query engine, which returns normalized
//! paths (`$['a'][0]`) that [`JsonPath::remove_all`] and
//! [`JsonPath::select_into`] then apply.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::{Map, Value};

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub struct JsonPath {
    source: String,
    query: JpQuery,
    /// Member names when the path is a plain chain of them.
    names: Option<Vec<String>>,
}

/// One step of a normalized path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Name(String),
    Index(usize),
}

impl JsonPath {
    /// Compiles `source`.
    ///
    /// # Errors
    /// A message naming the problem, ending in `(expected …)`.
    pub fn compile(source: &str) -> Result<Self, String> {
        let query = parse_json_path(source).map_err(|e| {
            format!(
                "invalid JSONPath `{source}`: {e} (expected an RFC 9535 path such as $.user.id)"
            )
        })?;
        let names = query
            .segments
            .iter()
            .map(|s| match s {
                Segment::Selector(Selector::Name(n)) => Some(unquote(n)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>();
        Ok(JsonPath {
            source: source.to_owned(),
            query,
            names,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The member names when the path is a plain chain of them (`$.a.b`).
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// The field name when the path is a single top-level member (`$.a`).
    pub fn top_field(&self) -> Option<&str> {
        match self.names.as_deref() {
            Some([n]) => Some(n),
            _ => None,
        }
    }

    /// The first value the path selects in `v`, if any.
    pub fn first<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        if let Some(names) = &self.names {
            let mut cur = v;
            for n in names {
                cur = cur.as_object()?.get(n)?;
            }
            return Some(cur);
        }
        js_path_process(&self.query, v)
            .ok()?
            .into_iter()
            .next()
            .map(|r| r.val())
    }

    /// Removes every node the path selects from `v`.
    pub fn remove_all(&self, v: &mut Value) {
        if let Some(names) = &self.names {
            if let Some((last, parents)) = names.split_last() {
                let mut cur = &mut *v;
                for n in parents {
                    match cur.as_object_mut().and_then(|o| o.get_mut(n)) {
                        Some(next) => cur = next,
                        None => return,
                    }
                }
                if let Some(o) = cur.as_object_mut() {
                    o.shift_remove(last);
                }
            }
            return;
        }
        let mut paths = self.normalized(v);
        // Remove deepest and highest indices first so earlier paths stay valid.
        paths.sort();
        paths.reverse();
        for p in paths {
            remove_at(v, &p);
        }
    }

    /// Copies every node the path selects from `src` into `dst` at the same place.
    pub fn select_into(&self, src: &Value, dst: &mut Value) {
        if let Some(names) = &self.names {
            if let Some(found) = self.first(src) {
                match (names.as_slice(), dst.as_object_mut()) {
                    // `$.field` into an object: the common case, no path walk.
                    ([name], Some(o)) => {
                        o.insert(name.clone(), found.clone());
                    }
                    _ => {
                        let steps: Vec<Step> = names.iter().cloned().map(Step::Name).collect();
                        insert_at(dst, &steps, found.clone());
                    }
                }
            }
            return;
        }
        for p in self.normalized(src) {
            if let Some(found) = get_at(src, &p) {
                insert_at(dst, &p, found.clone());
            }
        }
    }

    fn normalized(&self, v: &Value) -> Vec<Vec<Step>> {
        match js_path_process(&self.query, v) {
            Ok(refs) => refs
                .into_iter()
                .filter_map(|r| parse_normalized(&r.path()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Member names come back from the parser with their quotes when written as
/// `['a']`; strip them.
fn unquote(n: &str) -> String {
    let t = n.trim();
    if t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')))
    {
        t[1..t.len() - 1].to_owned()
    } else {
        t.to_owned()
    }
}

/// Parses a normalized path (RFC 9535 §2.7) such as `$['a'][0]['b']`.
fn parse_normalized(p: &str) -> Option<Vec<Step>> {
    let mut rest = p.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?;
        if let Some(r) = rest.strip_prefix('\'') {
            let mut name = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, esc) = chars.next()?;
                        name.push(esc);
                    }
                    '\'' => break i,
                    _ => name.push(c),
                }
            };
            rest = r[end + 1..].strip_prefix(']')?;
            steps.push(Step::Name(name));
        } else {
            let end = rest.find(']')?;
            steps.push(Step::Index(rest[..end].parse().ok()?));
            rest = &rest[end + 1..];
        }
    }
    Some(steps)
}

fn get_at<'a>(v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(v, |cur, s| match s {
        Step::Name(n) => cur.as_object()?.get(n),
        Step::Index(i) => cur.as_array()?.get(*i),
    })
}

fn remove_at(v: &mut Value, steps: &[Step]) {
    let Some((last, parents)) = steps.split_last() else {
        *v = Value::Null;
        return;
    };
    let mut cur = v;
    for s in parents {
        let next = match s {
            Step::Name(n) => cur.as_object_mut().and_then(|o| o.get_mut(n)),
            Step::Index(i) => cur.as_array_mut().and_then(|a| a.get_mut(*i)),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last, cur) {
        (Step::Name(n), Value::Object(o)) => {
            o.shift_remove(n);
        }
        (Step::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

/// Inserts `val` at `steps`, creating objects and arrays on the way; an
/// array step reuses the element at its index when present, else appends
/// (so sparse selections come out compacted, in order).
fn insert_at(dst: &mut Value, steps: &[Step], val: Value) {
    let Some((last, parents)) = steps.split_last() else {
        *dst = val;
        return;
    };
    let mut cur = dst;
    for (i, s) in parents.iter().enumerate() {
        let next_is_index = matches!(steps[i + 1], Step::Index(_));
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        cur = match s {
            Step::Name(n) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let o = cur.as_object_mut().expect("made an object above");
                o.entry(n.clone()).or_insert_with(fresh)
            }
            Step::Index(i) => {
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let a = cur.as_array_mut().expect("made an array above");
                // Reuse the element at the same index when an earlier path made it.
                if *i >= a.len() {
                    a.push(fresh());
                }
                let at = (*i).min(a.len() - 1);
                &mut a[at]
            }
        };
    }
    match last {
        Step::Name(n) => {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            cur.as_object_mut()
                .expect("made an object above")
                .insert(n.clone(), val);
        }
        Step::Index(_) => {
            if !cur.is_array() {
                *cur = Value::Array(Vec::new());
            }
            cur.as_array_mut().expect("made an array above").push(val);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_on_simple_and_general_paths() {
        let v = json!({"a": {"b": 3}, "items": [{"sku": "x"}, {"sku": "y"}]});
        assert_eq!(
            JsonPath::compile("$.a.b").unwrap().first(&v),
            Some(&json!(3))
        );
        assert_eq!(
            JsonPath::compile("$['a']['b']").unwrap().first(&v),
            Some(&json!(3))
        );
        assert_eq!(
            JsonPath::compile("$.items[1].sku").unwrap().first(&v),
            Some(&json!("y"))
        );
        assert_eq!(JsonPath::compile("$.nope").unwrap().first(&v), None);
    }

    #[test]
    fn select_and_remove() {
        let v = json!({"a": 1, "b": {"c": 2, "d": 3}, "items": [{"sku": "x", "n": 1}, {"sku": "y", "n": 2}]});
        let mut out = json!({});
        for p in ["$.a", "$.b.c", "$.items[*].sku", "$.items[*].n"] {
            JsonPath::compile(p).unwrap().select_into(&v, &mut out);
        }
        assert_eq!(
            out,
            json!({"a": 1, "b": {"c": 2}, "items": [{"sku": "x", "n": 1}, {"sku": "y", "n": 2}]})
        );
        let mut w = v.clone();
        JsonPath::compile("$.b.d").unwrap().remove_all(&mut w);
        JsonPath::compile("$.items[*].n")
            .unwrap()
            .remove_all(&mut w);
        assert_eq!(
            w,
            json!({"a": 1, "b": {"c": 2}, "items": [{"sku": "x"}, {"sku": "y"}]})
        );
    }

    #[test]
    fn invalid_path_is_a_load_error() {
        let e = JsonPath::compile("$.a[").unwrap_err();
        assert!(e.starts_with("invalid JSONPath `$.a[`"), "{e}");
        assert!(
            e.ends_with("(expected an RFC 9535 path such as $.user.id)"),
            "{e}"
        );
    }
}
