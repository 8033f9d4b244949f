//! `transform`: reshape the payload with select, rename, set and drop, in
//! that order (DESIGN.md §2). A lazy payload is spliced into new bytes
//! when the transform allows it (`splice`), else decoded into a map.

use crate::expr::{CelExpr, ExprError, JsonPath};
use crate::record::{decode_raw, Record};
use cel::Context;
use serde_json::{Map, Value};

/// A compiled transform stage.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    /// Paths to keep; empty keeps everything.
    pub select: Vec<JsonPath>,
    /// Top-level renames, applied in order.
    pub rename: Vec<(String, String)>,
    /// Top-level fields set from expressions, in order; each sees the ones before.
    pub set: Vec<(String, CelExpr)>,
    /// Paths to remove.
    pub drop: Vec<JsonPath>,
}

impl Transform {
    /// Applies the transform to `rec.value`.
    ///
    /// # Errors
    /// [`ExprError`] when a `set` expression fails, or when `rename`/`set`
    /// meet a payload that is not a JSON object.
    pub fn apply(
        &self,
        root: &Context<'static, 'static>,
        rec: &mut Record,
    ) -> Result<(), ExprError> {
        if rec.raw_bytes.is_none() && self.splices() {
            if let Some(l) = rec.lazy.take() {
                return self.apply_spliced(root, rec, l);
            }
        }
        let selected = rec.lazy.is_some() && self.decode_lazy(rec);
        if !self.select.is_empty() && !selected {
            let mut out = Value::Object(Map::new());
            for p in &self.select {
                p.select_into(&rec.value, &mut out);
            }
            rec.value = out;
        }
        if (!self.rename.is_empty() || !self.set.is_empty()) && !rec.value.is_object() {
            return Err(ExprError {
                expr: "transform".into(),
                message: "payload is not a JSON object (expected an object for rename/set)".into(),
            });
        }
        for (from, to) in &self.rename {
            if let Some(o) = rec.value.as_object_mut() {
                if let Some(v) = o.shift_remove(from) {
                    o.insert(to.clone(), v);
                }
            }
        }
        for (field, expr) in &self.set {
            let j = expr.eval_json(root, rec)?;
            if let Some(o) = rec.value.as_object_mut() {
                o.insert(field.clone(), j);
            }
        }
        for p in &self.drop {
            p.remove_all(&mut rec.value);
        }
        Ok(())
    }

    /// Turns a lazy payload into `rec.value`. When `select` names only
    /// top-level fields, that is the selection itself, decoding just the
    /// selected fields (what `select_into` would copy, in the same order);
    /// Otherwise the whole payload is decoded. True when the selection is done.
    fn decode_lazy(&self, rec: &mut Record) -> bool {
        let simple = !self.select.is_empty() && self.select.iter().all(|p| p.top_field().is_some());
        if !simple {
            rec.materialize();
            return false;
        }
        let Some(l) = rec.lazy.take() else {
            return false;
        };
        let mut out = Map::with_capacity(self.select.len() + self.set.len());
        for name in self.select.iter().filter_map(JsonPath::top_field) {
            if let Some(raw) = l.raw(name) {
                out.insert(name.to_owned(), decode_raw(raw));
            }
        }
        rec.value = Value::Object(out);
        true
    }
}

mod splice;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CelEnv;
    use serde_json::json;

    #[test]
    fn applies_select_rename_set_drop_in_order() {
        let env = CelEnv::new();
        let t = Transform {
            select: ["$.user_id", "$.page", "$.price"]
                .iter()
                .map(|p| JsonPath::compile(p).unwrap())
                .collect(),
            rename: vec![("user_id".into(), "user".into())],
            set: vec![
                (
                    "section".into(),
                    env.compile("value.page.split('/')[1]").unwrap(),
                ),
                (
                    "cents".into(),
                    env.compile("int(value.price * 100.0)").unwrap(),
                ),
                (
                    "who".into(),
                    env.compile("value.user + ':' + value.section").unwrap(),
                ),
            ],
            drop: vec![JsonPath::compile("$.price").unwrap()],
        };
        let mut r = Record::new(
            json!(null),
            json!({"status": 200, "page": "/product/1", "user_id": "u1", "price": 1.5}),
        );
        t.apply(&env.root(), &mut r).unwrap();
        assert_eq!(
            serde_json::to_string(&r.value).unwrap(),
            r#"{"page":"/product/1","user":"u1","section":"product","cents":150,"who":"u1:product"}"#
        );
    }

    #[test]
    fn set_error_is_a_record_error() {
        let env = CelEnv::new();
        let t = Transform {
            set: vec![("d".into(), env.compile("value.a * 2").unwrap())],
            ..Default::default()
        };
        let mut r = Record::new(json!(null), json!({"a": "x"}));
        let e = t.apply(&env.root(), &mut r).unwrap_err();
        assert_eq!(e.expr, "value.a * 2");
    }
}
