//! Conversions between JSON payload values and CEL values.

use cel::objects::{Key, Map};
use cel::Value as Cel;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// JSON → CEL: numbers become `int` when they are integers in range, else
/// `double`; objects become maps with string keys.
pub fn json_to_cel(v: &Json) -> Cel {
    match v {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(a) => Cel::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Json::Object(o) => {
            let map: HashMap<Key, Cel> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v)))
                .collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A CEL map holding only `fields` of the JSON object `v` (those present).
/// Used when an expression reads nothing of `value` but these fields.
pub fn json_fields_to_cel(v: &Json, fields: &[String]) -> Cel {
    let mut map = HashMap::with_capacity(fields.len());
    if let Json::Object(o) = v {
        for f in fields {
            if let Some(x) = o.get(f) {
                map.insert(Key::String(Arc::new(f.clone())), json_to_cel(x));
            }
        }
    } else {
        return json_to_cel(v);
    }
    Cel::Map(Map { map: Arc::new(map) })
}

/// The error of a CEL value that has no JSON form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a CEL {0} has no JSON form")]
pub struct NotJson(pub &'static str);

/// CEL → JSON. Durations and timestamps become strings; bytes become an
/// array of numbers is avoided: they are an error, as are functions and
/// opaque values.
///
/// # Errors
/// [`NotJson`] for values with no JSON form (bytes, functions, opaque).
pub fn cel_to_json(v: &Cel) -> Result<Json, NotJson> {
    Ok(match v {
        Cel::Null => Json::Null,
        Cel::Bool(b) => Json::Bool(*b),
        Cel::Int(i) => Json::from(*i),
        Cel::UInt(u) => Json::from(*u),
        Cel::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Cel::String(s) => Json::String(s.as_ref().clone()),
        Cel::List(l) => Json::Array(l.iter().map(cel_to_json).collect::<Result<_, _>>()?),
        Cel::Map(m) => {
            let mut o = serde_json::Map::with_capacity(m.map.len());
            let mut entries: Vec<_> = m.map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                let key = match k {
                    Key::String(s) => s.as_ref().clone(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                o.insert(key, cel_to_json(v)?);
            }
            Json::Object(o)
        }
        Cel::Duration(d) => Json::String(format!("{}ms", d.num_milliseconds())),
        Cel::Timestamp(t) => Json::String(t.to_rfc3339()),
        Cel::Bytes(_) => return Err(NotJson("bytes")),
        Cel::Function(..) => return Err(NotJson("function")),
        Cel::Opaque(_) => return Err(NotJson("opaque value")),
        Cel::Struct(_) => return Err(NotJson("struct")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_json_shapes() {
        let v = json!({"a": 1, "b": [1.5, "x", null, true], "c": {"d": -2}});
        assert_eq!(cel_to_json(&json_to_cel(&v)).unwrap(), v);
    }

    #[test]
    fn keeps_only_named_fields() {
        let v = json!({"a": 1, "b": 2, "c": 3});
        let got = cel_to_json(&json_fields_to_cel(&v, &["a".into(), "z".into()])).unwrap();
        assert_eq!(got, json!({"a": 1}));
    }
}
