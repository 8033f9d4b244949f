//! Aggregate functions over the records of a window: `count()`,
//! `count(expr)`, `sum`, `min`, `max`, `avg`.
//!
//! As in SQL, a null or missing argument is ignored by every aggregate but
//! `count()`, and an aggregate over no values is null (`count` is 0).
//! Integer sums stay integers (falling back to a float on overflow); `avg`
//! is a float. An argument of the wrong type is a record error.

use crate::expr::{CelEnv, CelExpr, ExprError};
use crate::record::Record;
use cel::{Context, Value as Cel};
use serde_json::Value;
use std::cmp::Ordering;

/// The aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// Records (`count()`) or non-null values (`count(expr)`).
    Count,
    /// Sum of numbers.
    Sum,
    /// Smallest number or string.
    Min,
    /// Largest number or string.
    Max,
    /// Mean of numbers, a float.
    Avg,
}

/// A compiled aggregate: output field, function and argument.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// Output field name.
    pub name: String,
    /// Function.
    pub kind: AggKind,
    /// Argument; `None` only for `count()`.
    pub arg: Option<CelExpr>,
}

/// Parses `fn(expr)` into an [`AggSpec`].
///
/// # Errors
/// A message ending in `(expected …)` for an unknown function, a missing or
/// superfluous argument, or an argument that does not compile.
pub fn parse_aggregate(env: &CelEnv, name: &str, call: &str) -> Result<AggSpec, String> {
    let call = call.trim();
    let (func, arg) = match (call.find('('), call.ends_with(')')) {
        (Some(i), true) => (call[..i].trim(), call[i + 1..call.len() - 1].trim()),
        _ => {
            return Err(format!(
                "`{call}` is not an aggregate call (expected one of count(), count(expr), sum(expr), min(expr), max(expr), avg(expr))"
            ))
        }
    };
    let kind = match func {
        "count" => AggKind::Count,
        "sum" => AggKind::Sum,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "avg" => AggKind::Avg,
        "count_distinct" | "first" | "last" | "collect" | "percentile" => {
            return Err(format!(
            "aggregate `{func}` is not available yet (expected one of count, sum, min, max, avg)"
        ))
        }
        other => {
            return Err(format!(
                "unknown aggregate `{other}` (expected one of count, sum, min, max, avg)"
            ))
        }
    };
    let arg = if arg.is_empty() {
        if kind != AggKind::Count {
            return Err(format!(
                "`{func}` needs an argument (expected {func}(expr))"
            ));
        }
        None
    } else {
        Some(env.compile(arg)?)
    };
    Ok(AggSpec {
        name: name.to_owned(),
        kind,
        arg,
    })
}

/// A number or string argument value, already type-checked.
#[derive(Debug, Clone, PartialEq)]
pub enum AggValue {
    /// A null or missing argument.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (min/max only).
    Str(String),
}

impl AggSpec {
    /// Evaluates the argument for `rec`. A missing field (`No such key`) is
    /// null, as in SQL.
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails otherwise or the type does not
    /// suit the function.
    pub fn arg_value(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<AggValue, ExprError> {
        let Some(expr) = &self.arg else {
            return Ok(AggValue::Null);
        };
        let v = match expr.eval(root, rec) {
            Ok(v) => v,
            Err(e) if e.message.starts_with("No such key") => return Ok(AggValue::Null),
            Err(e) => return Err(e),
        };
        let wrong = |what: &str| ExprError {
            expr: expr.source().to_owned(),
            message: format!("gave {what} (expected {})", self.expects()),
        };
        Ok(match v {
            Cel::Null => AggValue::Null,
            _ if self.kind == AggKind::Count => AggValue::Int(1),
            Cel::Int(i) => AggValue::Int(i),
            Cel::UInt(u) => i64::try_from(u)
                .map(AggValue::Int)
                .unwrap_or(AggValue::Float(u as f64)),
            Cel::Float(f) => AggValue::Float(f),
            Cel::String(s) if matches!(self.kind, AggKind::Min | AggKind::Max) => {
                AggValue::Str(s.to_string())
            }
            other => return Err(wrong(&format!("{other:?}"))),
        })
    }

    fn expects(&self) -> &'static str {
        match self.kind {
            AggKind::Min | AggKind::Max => "a number or a string",
            _ => "a number",
        }
    }
}

/// Running state of one aggregate in one window.
#[derive(Debug, Clone, PartialEq)]
pub enum AggState {
    /// Count so far.
    Count(i64),
    /// Sum so far: integer while every value was, else float; `None` before any value.
    Sum(Option<AggValue>),
    /// Extreme so far.
    Extreme(Option<AggValue>),
    /// Sum and count of values.
    Avg(f64, i64),
}

impl AggState {
    /// The empty state for `kind`.
    pub fn new(kind: AggKind) -> Self {
        match kind {
            AggKind::Count => AggState::Count(0),
            AggKind::Sum => AggState::Sum(None),
            AggKind::Min | AggKind::Max => AggState::Extreme(None),
            AggKind::Avg => AggState::Avg(0.0, 0),
        }
    }

    /// Folds one argument value in. `count()` passes `counts_record = true`.
    ///
    /// # Errors
    /// A message when min/max meet values of different types (number vs string).
    pub fn add(&mut self, kind: AggKind, v: &AggValue, counts_record: bool) -> Result<(), String> {
        if counts_record {
            if let AggState::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        }
        if *v == AggValue::Null {
            return Ok(());
        }
        match self {
            AggState::Count(n) => *n += 1,
            AggState::Sum(acc) => {
                *acc = Some(match (acc.take(), v) {
                    (None, x) => x.clone(),
                    (Some(AggValue::Int(a)), AggValue::Int(b)) => match a.checked_add(*b) {
                        Some(s) => AggValue::Int(s),
                        None => AggValue::Float(a as f64 + *b as f64),
                    },
                    (Some(a), b) => AggValue::Float(as_f64(&a) + as_f64(b)),
                })
            }
            AggState::Extreme(cur) => {
                let replace = match cur {
                    None => true,
                    Some(c) => {
                        let ord = compare(v, c).ok_or_else(|| {
                            "cannot compare a number with a string (expected values of one type)".to_owned()
                        })?;
                        match kind {
                            AggKind::Min => ord == Ordering::Less,
                            _ => ord == Ordering::Greater,
                        }
                    }
                };
                if replace {
                    *cur = Some(v.clone());
                }
            }
            AggState::Avg(sum, n) => {
                *sum += as_f64(v);
                *n += 1;
            }
        }
        Ok(())
    }

    /// The result as JSON; null for an aggregate over no values.
    pub fn result(&self) -> Value {
        match self {
            AggState::Count(n) => Value::from(*n),
            AggState::Sum(v) | AggState::Extreme(v) => v.as_ref().map_or(Value::Null, to_json),
            AggState::Avg(_, 0) => Value::Null,
            AggState::Avg(sum, n) => float(*sum / *n as f64),
        }
    }
}

fn as_f64(v: &AggValue) -> f64 {
    match v {
        AggValue::Int(i) => *i as f64,
        AggValue::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn compare(a: &AggValue, b: &AggValue) -> Option<Ordering> {
    match (a, b) {
        (AggValue::Str(x), AggValue::Str(y)) => Some(x.cmp(y)),
        (AggValue::Int(x), AggValue::Int(y)) => Some(x.cmp(y)),
        (AggValue::Str(_), _) | (_, AggValue::Str(_)) => None,
        (x, y) => as_f64(x).partial_cmp(&as_f64(y)),
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn to_json(v: &AggValue) -> Value {
    match v {
        AggValue::Null => Value::Null,
        AggValue::Int(i) => Value::from(*i),
        AggValue::Float(f) => float(*f),
        AggValue::Str(s) => Value::String(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fold(kind: AggKind, vals: &[AggValue]) -> Value {
        let mut s = AggState::new(kind);
        for v in vals {
            s.add(kind, v, false).unwrap();
        }
        s.result()
    }

    #[test]
    fn sql_null_semantics_and_integer_sums() {
        use AggValue::*;
        assert_eq!(fold(AggKind::Sum, &[Int(1), Null, Int(2)]), json!(3));
        assert_eq!(fold(AggKind::Sum, &[Int(1), Float(0.5)]), json!(1.5));
        assert_eq!(fold(AggKind::Sum, &[Null]), json!(null));
        assert_eq!(fold(AggKind::Avg, &[Int(1), Int(2), Null]), json!(1.5));
        assert_eq!(fold(AggKind::Avg, &[]), json!(null));
        assert_eq!(
            fold(AggKind::Min, &[Int(3), Float(-1.5), Int(2)]),
            json!(-1.5)
        );
        assert_eq!(
            fold(AggKind::Max, &[Str("a".into()), Str("b".into())]),
            json!("b")
        );
        assert_eq!(fold(AggKind::Count, &[Int(1), Null, Int(1)]), json!(2));
        assert_eq!(
            fold(AggKind::Sum, &[Int(i64::MAX), Int(1)]),
            json!(9.223372036854776e18)
        );
    }

    #[test]
    fn parses_calls_and_rejects_unknown() {
        let env = CelEnv::new();
        let a = parse_aggregate(&env, "f", "count()").unwrap();
        assert_eq!((a.kind, a.arg.is_none()), (AggKind::Count, true));
        let a = parse_aggregate(&env, "d", " avg(value.dep_delay) ").unwrap();
        assert_eq!(a.kind, AggKind::Avg);
        assert_eq!(
            parse_aggregate(&env, "x", "median(value.a)").unwrap_err(),
            "unknown aggregate `median` (expected one of count, sum, min, max, avg)"
        );
        assert_eq!(
            parse_aggregate(&env, "x", "sum()").unwrap_err(),
            "`sum` needs an argument (expected sum(expr))"
        );
    }

    #[test]
    fn wrong_argument_type_is_a_record_error() {
        let env = CelEnv::new();
        let a = parse_aggregate(&env, "s", "sum(value.x)").unwrap();
        let root = env.root();
        let e = a
            .arg_value(&root, &Record::new(json!(null), json!({"x": "abc"})))
            .unwrap_err();
        assert_eq!(e.message, "gave String(\"abc\") (expected a number)");
        assert_eq!(
            a.arg_value(&root, &Record::new(json!(null), json!({})))
                .unwrap(),
            AggValue::Null
        );
    }
}
