//! CEL (the Common Expression Language, <https://github.com/google/cel-spec>)
//! expressions, compiled once at load with the `cel` crate.
//!
//! The crate has no type checker, so load time checks syntax and that every
//! referenced variable and function exists; type errors and missing fields
//! surface per record as [`ExprError`] and go through `errors.policy`.
//!
//! Per record, a child scope of one root [`cel::Context`] gets only the
//! variables the expression reads, and of `value` only the top-level fields
//! it selects when it reads nothing else of it (a full conversion of a
//! 20-field record per evaluation would dominate the cost).

use super::convert::{json_fields_to_cel, json_to_cel};
pub use super::error::{ExprError, ExprErrorKind};
use super::native::{Native, NativeValue};
use crate::record::{LazyObject, RawFields, Record};
use cel::common::ast::Expr;
use cel::{Context, Env, IdedExpr, Program, Value as Cel};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The variables an expression may read (DESIGN.md §2).
pub const VARIABLES: [&str; 8] = [
    "value",
    "key",
    "headers",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "event_time",
];

/// The shared CEL environment: the standard library plus cel-go's `strings`,
/// `math` and `lists` extensions.
#[derive(Clone)]
pub struct CelEnv {
    env: Arc<Env>,
}

impl Default for CelEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl CelEnv {
    /// Builds the environment.
    ///
    /// # Panics
    /// Only if the crate's own extensions conflict with its standard library,
    /// which would be a bug in the crate version pinned in Cargo.toml.
    pub fn new() -> Self {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .expect("cel strings extension registers");
        env.add_extension(cel::extensions::math)
            .expect("cel math extension registers");
        env.add_extension(cel::extensions::lists)
            .expect("cel lists extension registers");
        CelEnv { env: Arc::new(env) }
    }

    /// A root context to evaluate expressions in; build one per task and reuse it.
    pub fn root(&self) -> Context<'static, 'static> {
        Context::with_env(Arc::clone(&self.env))
    }

    /// Compiles `source`.
    ///
    /// # Errors
    /// A message for a syntax error or a reference to an unknown variable or
    /// function, ending in `(expected …)`.
    pub fn compile(&self, source: &str) -> Result<CelExpr, String> {
        let program = self.env.compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("ERROR: ")
                .trim_start_matches("<input>:")
                .to_owned();
            format!("CEL syntax error at {first} (expected a CEL expression)")
        })?;
        let mut uses = Uses::default();
        walk(program.expression(), &mut Vec::new(), &mut uses, false);
        for v in &uses.variables {
            if !VARIABLES.contains(&v.as_str()) {
                return Err(format!(
                    "unknown variable `{v}` (expected one of {})",
                    VARIABLES.join(", ")
                ));
            }
        }
        for f in &uses.functions {
            if !self.knows_function(f) {
                return Err(format!(
                    "unknown function `{f}` (expected a CEL standard function or one of the strings, math, lists extensions)"
                ));
            }
        }
        let value = if !uses.variables.contains("value") {
            ValueUse::None
        } else if uses.value_whole {
            ValueUse::Whole
        } else {
            let names: Vec<String> = uses.value_fields.into_iter().collect();
            ValueUse::Fields {
                qualified: (!uses.value_needs_map)
                    .then(|| names.iter().map(|f| format!("value.{f}")).collect()),
                names,
            }
        };
        let native = uses
            .variables
            .iter()
            .all(|v| v == "value")
            .then(|| Native::compile(program.expression()))
            .flatten()
            .map(Arc::new);
        Ok(CelExpr {
            source: source.to_owned(),
            program: Arc::new(program),
            value,
            vars: uses.variables.into_iter().collect(),
            native,
        })
    }

    /// True when `name` has a global or member overload in this environment.
    /// The crate offers no lookup by name, so probe with an empty call: an
    /// unknown name fails as an undeclared reference, a known one with no
    /// matching overload.
    fn knows_function(&self, name: &str) -> bool {
        if name.starts_with('_') || name.contains('@') || name.starts_with('!') {
            return true; // operators and macro internals
        }
        let ctx = self.root();
        ["", "null."].iter().any(|prefix| {
            let probe = format!("{prefix}{name}()");
            match self.env.compile(&probe) {
                Ok(p) => !matches!(
                    p.execute(&ctx),
                    Err(cel::ExecutionError::UndeclaredReference(ref r)) if r.as_str() == name
                ),
                Err(_) => true,
            }
        })
    }
}

#[derive(Default)]
struct Uses {
    variables: BTreeSet<String>,
    functions: BTreeSet<String>,
    value_fields: BTreeSet<String>,
    value_whole: bool,
    /// `has(value.f)` or `value["f"]`: the fields must come as a map.
    value_needs_map: bool,
}

/// Collects free variables (comprehension variables are bound), function
/// names, and which top-level fields of `value` are selected.
fn walk(e: &IdedExpr, bound: &mut Vec<String>, uses: &mut Uses, selected: bool) {
    match &e.expr {
        Expr::Ident(name) => {
            if !bound.iter().any(|b| b == name) && !name.starts_with('@') {
                uses.variables.insert(name.clone());
                if name == "value" && !selected {
                    uses.value_whole = true;
                }
            }
        }
        Expr::Select(s) => {
            if let Expr::Ident(name) = &s.operand.expr {
                if name == "value" && !bound.iter().any(|b| b == name) {
                    uses.variables.insert(name.clone());
                    uses.value_fields.insert(s.field.clone());
                    uses.value_needs_map |= s.test;
                    return;
                }
            }
            walk(&s.operand, bound, uses, false);
        }
        Expr::Call(c) => {
            uses.functions.insert(c.func_name.clone());
            // `value["field"]` with a literal string reads just that field.
            if c.func_name == "_[_]" && c.args.len() == 2 {
                if let (Expr::Ident(n), Expr::Literal(cel::common::ast::LiteralValue::String(f))) =
                    (&c.args[0].expr, &c.args[1].expr)
                {
                    if n == "value" && !bound.iter().any(|b| b == n) {
                        uses.variables.insert(n.clone());
                        uses.value_fields.insert(f.inner().to_string());
                        uses.value_needs_map = true;
                        return;
                    }
                }
            }
            if let Some(t) = &c.target {
                walk(t, bound, uses, false);
            }
            for a in &c.args {
                walk(a, bound, uses, false);
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound, uses, false);
            walk(&c.accu_init, bound, uses, false);
            let n = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2.clone());
            }
            bound.push(c.accu_var.clone());
            walk(&c.loop_cond, bound, uses, false);
            walk(&c.loop_step, bound, uses, false);
            walk(&c.result, bound, uses, false);
            bound.truncate(n);
        }
        Expr::List(l) => {
            for x in &l.elements {
                walk(x, bound, uses, false);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    walk(&me.key, bound, uses, false);
                    walk(&me.value, bound, uses, false);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let cel::common::ast::EntryExpr::StructField(f) = &entry.expr {
                    walk(&f.value, bound, uses, false);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

#[derive(Debug, Clone)]
enum ValueUse {
    None,
    /// Only these top-level fields are read. With `qualified` names
    /// (`value.f`), each field is bound as a variable of that qualified name,
    /// which CEL resolves for `value.f` without building a map (about half
    /// the cost per evaluation); `has(value.f)` and `value["f"]` need the map.
    Fields {
        names: Vec<String>,
        qualified: Option<Vec<String>>,
    },
    Whole,
}

/// A compiled CEL expression and the variables it reads.
#[derive(Debug, Clone)]
pub struct CelExpr {
    source: String,
    program: Arc<Program>,
    value: ValueUse,
    vars: Vec<String>,
    /// The native form ([`super::native`]) when the expression has one.
    native: Option<Arc<Native>>,
}

/// Binds each of `names` of the object `v` as the variable `value.<name>`;
/// false (nothing bound) when `v` is not an object or lacks one of them, so
/// that the caller falls back to a map and CEL reports the missing key.
fn bind_fields(
    ctx: &mut Context<'_, 'static>,
    v: &serde_json::Value,
    names: &[String],
    qualified: &[String],
) -> bool {
    let Some(o) = v.as_object() else { return false };
    if !names.iter().all(|n| o.contains_key(n)) {
        return false;
    }
    for (n, q) in names.iter().zip(qualified) {
        if let Some(x) = o.get(n) {
            ctx.add_variable_from_value(q.as_str(), json_to_cel(x));
        }
    }
    true
}

/// [`bind_fields`] for a lazy payload: decodes only the named fields.
fn bind_lazy_fields(
    ctx: &mut Context<'_, 'static>,
    l: &LazyObject,
    names: &[String],
    qualified: &[String],
) -> bool {
    let mut raws = Vec::with_capacity(names.len());
    for n in names {
        match l.raw(n) {
            Some(r) => raws.push(r),
            None => return false,
        }
    }
    for (raw, q) in raws.into_iter().zip(qualified) {
        ctx.add_variable_from_value(q.as_str(), raw_to_cel(raw));
    }
    true
}

/// A CEL map of the `names` fields a lazy payload has.
fn lazy_fields_to_cel(l: &LazyObject, names: &[String]) -> Cel {
    let map = names
        .iter()
        .filter_map(|n| {
            l.raw(n).map(|r| {
                (
                    cel::objects::Key::String(Arc::new(n.clone())),
                    raw_to_cel(r),
                )
            })
        })
        .collect();
    Cel::Map(cel::objects::Map { map: Arc::new(map) })
}

/// One field's raw JSON text as CEL, as [`json_to_cel`] of its decoded value.
fn raw_to_cel(raw: &[u8]) -> Cel {
    json_to_cel(&crate::record::decode_raw(raw))
}

impl CelExpr {
    /// The parsed expression.
    pub fn ast(&self) -> &IdedExpr {
        self.program.expression()
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `rec` in a child scope of `root`.
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails.
    pub fn eval(&self, root: &Context<'static, 'static>, rec: &Record) -> Result<Cel, ExprError> {
        let mut ctx = root.new_inner_scope();
        for v in &self.vars {
            let val = match v.as_str() {
                "value" => match (&self.value, &rec.raw_bytes, &rec.lazy) {
                    (_, Some(b), _) => Cel::Bytes(Arc::new(b.to_vec())),
                    (
                        ValueUse::Fields {
                            names,
                            qualified: Some(q),
                        },
                        None,
                        Some(l),
                    ) if bind_lazy_fields(&mut ctx, l, names, q) => continue,
                    (ValueUse::Fields { names, .. }, None, Some(l)) => lazy_fields_to_cel(l, names),
                    (_, None, Some(l)) => json_to_cel(l.value()),
                    (
                        ValueUse::Fields {
                            names,
                            qualified: Some(q),
                        },
                        None,
                        None,
                    ) if bind_fields(&mut ctx, &rec.value, names, q) => continue,
                    (ValueUse::Fields { names, .. }, None, None) => {
                        json_fields_to_cel(&rec.value, names)
                    }
                    _ => json_to_cel(&rec.value),
                },
                "key" => json_to_cel(&rec.key),
                "headers" => {
                    let map = rec
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                cel::objects::Key::String(Arc::new(k.clone())),
                                Cel::String(Arc::new(String::from_utf8_lossy(v).into_owned())),
                            )
                        })
                        .collect();
                    Cel::Map(cel::objects::Map { map: Arc::new(map) })
                }
                "topic" => Cel::String(Arc::new(rec.origin.topic.to_string())),
                "partition" => Cel::Int(rec.origin.partition as i64),
                "offset" => Cel::Int(rec.origin.offset),
                "timestamp" => Cel::Int(rec.timestamp),
                "event_time" if rec.time_error.is_some() => Cel::Null,
                "event_time" => Cel::Int(rec.event_time),
                _ => continue,
            };
            ctx.add_variable_from_value(v.as_str(), val);
        }
        self.program
            .execute(&ctx)
            .map_err(|e| ExprError::new(self.source.as_str(), e.to_string()))
    }

    /// The expression's value for `rec` by its native form
    /// ([`Native::eval_scalar`]), when it has one and the answer is
    /// certain; `None` otherwise (evaluate with [`CelExpr::eval`]).
    pub fn eval_native<'a>(&'a self, rec: &'a Record) -> Option<NativeValue<'a>> {
        self.native.as_ref()?.eval_scalar(rec)
    }

    /// Evaluates to a JSON value (for keys and `set` fields).
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails or the result has no JSON form.
    pub fn eval_json(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<serde_json::Value, ExprError> {
        if let Some(j) = self.native.as_ref().and_then(|n| n.eval_json(rec)) {
            return Ok(j);
        }
        self.eval_json_cel(root, rec)
    }

    /// The expression's JSON value with `value` the object whose fields
    /// are `fields`, by its native form alone: `None` when it has none or
    /// is not certain (then evaluate a record holding that object).
    pub fn eval_json_native_in(&self, fields: &dyn RawFields) -> Option<serde_json::Value> {
        self.native.as_ref()?.eval_json_in(fields)
    }

    /// [`CelExpr::eval_json`] by the CEL program alone, never natively.
    ///
    /// # Errors
    /// As [`CelExpr::eval_json`].
    pub fn eval_json_cel(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<serde_json::Value, ExprError> {
        let v = self.eval(root, rec)?;
        super::convert::cel_to_json(&v).map_err(|e| ExprError {
            expr: self.source.clone(),
            message: e.to_string(),
        })
    }

    /// Evaluates a predicate.
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails or the result is not a bool.
    pub fn eval_bool(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<bool, ExprError> {
        if let Some(b) = self.native.as_ref().and_then(|n| n.eval_bool(rec)) {
            return Ok(b);
        }
        match self.eval(root, rec)? {
            Cel::Bool(b) => Ok(b),
            other => Err(ExprError {
                expr: self.source.clone(),
                message: format!("gave {other:?} (expected a bool)"),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
