//! Native evaluation of simple CEL expressions: comparisons of top-level
//! `value` fields with literals, `&&`, `||`, `!`, `has(value.f)`,
//! arithmetic and `int()`, without building a CEL context per record.
//!
//! It only ever answers when the answer is certainly the one the `cel`
//! crate would give: same-typed operands, a field that is present, a
//! payload that is a JSON object. Anything else (a missing field, mixed
//! types, an overflow, a non-bool operand of `&&`) gives `None`, and the
//! caller evaluates the CEL program, which then produces its exact result
//! or error text. Expressions are side-effect free, so evaluating twice is
//! safe.

use crate::record::{plain_int, RawFields, Record};
use cel::common::ast::{operators, Expr, LiteralValue};
use cel::IdedExpr;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A compiled native form of an expression.
#[derive(Debug, Clone)]
pub struct Native {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Lit(Lit),
    /// `value.<name>`.
    Field(String),
    /// `has(value.<name>)`.
    Has(String),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    /// `int(x)`.
    ToInt(Box<Node>),
}

#[derive(Debug, Clone)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A scalar CEL value, borrowing strings from the payload.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
}

/// The value of a native evaluation ([`Native::eval_scalar`]): a scalar
/// as the `cel` crate would give it (strings borrowed from the payload or
/// the expression), or `Missing` when the expression is a plain top-level
/// field read (`value.f`) of an object payload that lacks `f` (where CEL
/// fails with `No such key: f`).
#[derive(Debug, Clone, PartialEq)]
pub enum NativeValue<'a> {
    /// `null`.
    Null,
    /// A bool.
    Bool(bool),
    /// A CEL `int`.
    Int(i64),
    /// A CEL `uint` (a JSON integer above `i64::MAX`).
    UInt(u64),
    /// A CEL `double`.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// The field read is not in the payload object.
    Missing,
}

/// The payload as the native evaluator sees it.
enum Payload<'a> {
    /// An object by the raw JSON text of its fields (a lazy payload, or
    /// a transform's fields being built).
    Lazy(&'a dyn RawFields),
    Json(&'a Value),
    /// `format: bytes`: `value` is bytes in CEL; nothing native applies.
    Other,
}

impl Native {
    /// Compiles `e` when every node is one this module evaluates and the
    /// only variable is `value` (through top-level field selections).
    pub fn compile(e: &IdedExpr) -> Option<Native> {
        compile(e).map(|root| Native { root })
    }

    /// The expression's value as a bool, when certain.
    pub fn eval_bool(&self, rec: &Record) -> Option<bool> {
        match eval(&self.root, &payload(rec))? {
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The expression's value as a scalar, when certain (see
    /// [`NativeValue`]); `None` leaves the record to the CEL program.
    pub fn eval_scalar<'a>(&'a self, rec: &'a Record) -> Option<NativeValue<'a>> {
        let p = payload(rec);
        if let Node::Field(name) = &self.root {
            let missing = match &p {
                Payload::Lazy(l) => !l.contains(name),
                Payload::Json(Value::Object(o)) => !o.contains_key(name),
                _ => false,
            };
            if missing {
                return Some(NativeValue::Missing);
            }
        }
        Some(match eval(&self.root, &p)? {
            Scalar::Null => NativeValue::Null,
            Scalar::Bool(b) => NativeValue::Bool(b),
            Scalar::Int(i) => NativeValue::Int(i),
            Scalar::UInt(u) => NativeValue::UInt(u),
            Scalar::Float(f) => NativeValue::Float(f),
            Scalar::Str(s) => NativeValue::Str(s),
        })
    }

    /// The expression's value as JSON (as `cel_to_json` gives it), when certain.
    pub fn eval_json(&self, rec: &Record) -> Option<Value> {
        json_of(eval(&self.root, &payload(rec))?)
    }

    /// [`Native::eval_json`] with `value` the object whose fields are
    /// `fields` (canonical or source JSON text, as a lazy payload holds).
    pub fn eval_json_in(&self, fields: &dyn RawFields) -> Option<Value> {
        json_of(eval(&self.root, &Payload::Lazy(fields))?)
    }
}

/// A scalar as `cel_to_json` gives it.
fn json_of(s: Scalar<'_>) -> Option<Value> {
    Some(match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::from(i),
        Scalar::UInt(u) => Value::from(u),
        Scalar::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Scalar::Str(s) => Value::String(s.into_owned()),
    })
}

fn payload(rec: &Record) -> Payload<'_> {
    if rec.raw_bytes.is_some() {
        Payload::Other
    } else if let Some(l) = &rec.lazy {
        Payload::Lazy(&**l)
    } else {
        Payload::Json(&rec.value)
    }
}

fn compile(e: &IdedExpr) -> Option<Node> {
    match &e.expr {
        Expr::Literal(l) => Some(Node::Lit(match l {
            LiteralValue::Null => Lit::Null,
            LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
            LiteralValue::Int(i) => Lit::Int(*i.inner()),
            LiteralValue::UInt(u) => Lit::UInt(*u.inner()),
            LiteralValue::Double(d) => Lit::Float(*d.inner()),
            LiteralValue::String(s) => Lit::Str(s.inner().to_string()),
            LiteralValue::Bytes(_) => return None,
        })),
        Expr::Select(s) => match &s.operand.expr {
            Expr::Ident(n) if n == "value" => Some(if s.test {
                Node::Has(s.field.clone())
            } else {
                Node::Field(s.field.clone())
            }),
            _ => None,
        },
        Expr::Call(c) if c.target.is_none() => {
            let arg = |i: usize| compile(&c.args[i]).map(Box::new);
            match (c.func_name.as_str(), c.args.len()) {
                (operators::LOGICAL_NOT, 1) => Some(Node::Not(arg(0)?)),
                ("int", 1) => Some(Node::ToInt(arg(0)?)),
                (operators::LOGICAL_AND, 2) => Some(Node::And(arg(0)?, arg(1)?)),
                (operators::LOGICAL_OR, 2) => Some(Node::Or(arg(0)?, arg(1)?)),
                (name, 2) => {
                    let cmp = match name {
                        operators::EQUALS => Some(CmpOp::Eq),
                        operators::NOT_EQUALS => Some(CmpOp::Ne),
                        operators::LESS => Some(CmpOp::Lt),
                        operators::LESS_EQUALS => Some(CmpOp::Le),
                        operators::GREATER => Some(CmpOp::Gt),
                        operators::GREATER_EQUALS => Some(CmpOp::Ge),
                        _ => None,
                    };
                    if let Some(op) = cmp {
                        return Some(Node::Cmp(op, arg(0)?, arg(1)?));
                    }
                    let op = match name {
                        operators::ADD => ArithOp::Add,
                        operators::SUBSTRACT => ArithOp::Sub,
                        operators::MULTIPLY => ArithOp::Mul,
                        operators::DIVIDE => ArithOp::Div,
                        _ => return None,
                    };
                    Some(Node::Arith(op, arg(0)?, arg(1)?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn eval<'a>(n: &'a Node, p: &Payload<'a>) -> Option<Scalar<'a>> {
    Some(match n {
        Node::Lit(l) => match l {
            Lit::Null => Scalar::Null,
            Lit::Bool(b) => Scalar::Bool(*b),
            Lit::Int(i) => Scalar::Int(*i),
            Lit::UInt(u) => Scalar::UInt(*u),
            Lit::Float(f) => Scalar::Float(*f),
            Lit::Str(s) => Scalar::Str(Cow::Borrowed(s)),
        },
        Node::Field(name) => match p {
            Payload::Lazy(l) => scalar_from_raw(l.raw(name)?)?,
            Payload::Json(v) => scalar_from_json(v.as_object()?.get(name)?)?,
            Payload::Other => return None,
        },
        Node::Has(name) => match p {
            Payload::Lazy(l) => Scalar::Bool(l.contains(name)),
            Payload::Json(v) => Scalar::Bool(v.as_object()?.contains_key(name)),
            Payload::Other => return None,
        },
        Node::Not(a) => match eval(a, p)? {
            Scalar::Bool(b) => Scalar::Bool(!b),
            _ => return None,
        },
        // CEL: `false && x` is false whatever x is; `true && x` is x when
        // x is a bool; the other cases (errors) are left to CEL.
        Node::And(a, b) => match eval(a, p)? {
            Scalar::Bool(false) => Scalar::Bool(false),
            Scalar::Bool(true) => match eval(b, p)? {
                Scalar::Bool(r) => Scalar::Bool(r),
                _ => return None,
            },
            _ => return None,
        },
        Node::Or(a, b) => match eval(a, p)? {
            Scalar::Bool(true) => Scalar::Bool(true),
            Scalar::Bool(false) => match eval(b, p)? {
                Scalar::Bool(r) => Scalar::Bool(r),
                _ => return None,
            },
            _ => return None,
        },
        Node::Cmp(op, a, b) => {
            let (l, r) = (eval(a, p)?, eval(b, p)?);
            Scalar::Bool(compare(*op, &l, &r)?)
        }
        Node::Arith(op, a, b) => match (eval(a, p)?, eval(b, p)?) {
            (Scalar::Int(x), Scalar::Int(y)) => Scalar::Int(match op {
                ArithOp::Add => x.checked_add(y)?,
                ArithOp::Sub => x.checked_sub(y)?,
                ArithOp::Mul => x.checked_mul(y)?,
                ArithOp::Div => return None,
            }),
            (Scalar::Float(x), Scalar::Float(y)) => Scalar::Float(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
            }),
            _ => return None,
        },
        Node::ToInt(a) => match eval(a, p)? {
            Scalar::Int(i) => Scalar::Int(i),
            // As the crate's `int(double)`: (minInt, maxInt) exclusive, then
            // truncation toward zero.
            Scalar::Float(f) if f > (i64::MIN as f64) && f < (i64::MAX as f64) => {
                Scalar::Int(f as i64)
            }
            _ => return None,
        },
    })
}

/// Same-typed comparisons only; NaN and mixed types are left to CEL.
fn compare(op: CmpOp, l: &Scalar<'_>, r: &Scalar<'_>) -> Option<bool> {
    let ord = match (l, r) {
        (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
        (Scalar::UInt(a), Scalar::UInt(b)) => a.cmp(b),
        (Scalar::Float(a), Scalar::Float(b)) => a.partial_cmp(b)?,
        (Scalar::Str(a), Scalar::Str(b)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => a.cmp(b),
        (Scalar::Bool(a), Scalar::Bool(b)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => a.cmp(b),
        (Scalar::Null, Scalar::Null) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Ordering::Equal,
        _ => return None,
    };
    Some(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    })
}

/// As `json_to_cel` converts a JSON scalar; `None` for arrays and objects.
fn scalar_from_json(v: &Value) -> Option<Scalar<'_>> {
    Some(match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn number(n: &serde_json::Number) -> Scalar<'static> {
    if let Some(i) = n.as_i64() {
        Scalar::Int(i)
    } else if let Some(u) = n.as_u64() {
        Scalar::UInt(u)
    } else {
        Scalar::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A field's raw JSON text (checked by [`LazyObject::parse`]) as the scalar
/// `json_to_cel` would make of its decoded value.
fn scalar_from_raw(raw: &[u8]) -> Option<Scalar<'_>> {
    match raw.first()? {
        b'"' if !raw.contains(&b'\\') => std::str::from_utf8(&raw[1..raw.len() - 1])
            .ok()
            .map(|s| Scalar::Str(Cow::Borrowed(s))),
        b'"' => serde_json::from_slice::<String>(raw)
            .ok()
            .map(|s| Scalar::Str(Cow::Owned(s))),
        b't' => Some(Scalar::Bool(true)),
        b'f' => Some(Scalar::Bool(false)),
        b'n' => Some(Scalar::Null),
        b'[' | b'{' => None,
        _ => {
            // Plain integers (not `-0`, which serde_json reads as -0.0).
            if let Some(i) = plain_int(raw) {
                return Some(Scalar::Int(i));
            }
            match serde_json::from_slice::<Value>(raw).ok()? {
                Value::Number(n) => Some(number(&n)),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CelEnv;
    use crate::record::LazyObject;
    use serde_json::json;
    use std::sync::Arc;

    fn lazy(v: &Value) -> Record {
        let mut r = Record::new(Value::Null, Value::Null);
        r.lazy = Some(Arc::new(
            LazyObject::parse(v.to_string().as_bytes()).unwrap(),
        ));
        r
    }

    /// Native answers agree with the CEL program on lazy and decoded payloads.
    #[test]
    fn agrees_with_cel() {
        let env = CelEnv::new();
        let root = env.root();
        let exprs = [
            "value.status == 200",
            "value.status != 200 || value.page == '/x'",
            "!(value.status < 300) && has(value.page)",
            "value.price > 1.5 && value.status >= 200",
            "int(value.price * 100.0)",
            "value.n + 1",
            "value.flag == true",
            "value.nothing == null",
            "value.price / 0.0",
            "value.status == 200.0",
        ];
        let values = [
            json!({"status": 200, "page": "/x", "price": 1.75, "n": 3, "flag": true, "nothing": null}),
            json!({"status": 404, "page": "/y", "price": -2.0, "n": i64::MAX, "flag": false, "nothing": 1}),
            json!({"status": "200", "price": 1e20}),
            json!({"status": -0.0, "page": "a\nb", "n": 18446744073709551615u64}),
            json!([1, 2]),
            json!(null),
        ];
        for src in exprs {
            let e = env.compile(src).unwrap();
            let n = Native::compile(e.ast()).expect(src);
            for v in &values {
                let recs = [Record::new(Value::Null, v.clone())]
                    .into_iter()
                    .chain(v.is_object().then(|| lazy(v)));
                for r in recs {
                    let want = e.eval_json_cel(&root, &r);
                    if let Some(got) = n.eval_json(&r) {
                        assert_eq!(Ok(got), want, "{src} on {v}");
                    }
                }
            }
        }
    }

    #[test]
    fn compiles_only_what_it_evaluates() {
        let env = CelEnv::new();
        for src in [
            "value.a.b == 1",
            "key == 'x'",
            "size(value.a) > 1",
            "value.a.startsWith('x')",
        ] {
            let e = env.compile(src).unwrap();
            assert!(Native::compile(e.ast()).is_none(), "{src}");
        }
    }
}
