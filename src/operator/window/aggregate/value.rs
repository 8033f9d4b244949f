//! Values that aggregates fold: [`AggValue`] (an evaluated argument) and
//! [`Stamped`] (a value with its event time); evaluating an argument for a
//! record; the comparisons, number conversions and canonical JSON text the
//! aggregates use; heap-size estimates; and the serde of non-finite floats.

use super::error::AggError;
use super::kinds::ArgType;
use super::{is_missing_key, AggSpec};
use crate::expr::native::NativeValue;
use crate::expr::{CelExpr, ExprError};
use crate::record::Record;
use cel::{Context, Value as Cel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::mem::size_of;

/// An argument value, already type-checked by [`AggSpec::arg_value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggValue {
    /// A null or missing argument.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(#[serde(with = "float_text")] f64),
    /// A string (min/max only).
    Str(String),
    /// Any JSON value but null (count_distinct, first, last, collect).
    Json(Value),
}

/// A value with the event time (ms) of its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Event time of the record, ms since the epoch.
    pub t: i64,
    /// The argument's value (never null).
    pub v: Value,
}

impl AggSpec {
    /// Evaluates the argument for `rec`. A missing field
    /// ([`is_missing_key`]) is null, as in SQL. `count_distinct`, `first`,
    /// `last` and `collect` give [`AggValue::Json`] (converted by
    /// [`CelExpr::eval_json`]); the others a number or, for min/max, a
    /// string; `count(expr)` gives `Int(1)` for any non-null value.
    ///
    /// # Errors
    /// [`ExprError`] when evaluation fails otherwise, the value has no JSON
    /// form, or the type does not suit the function (message
    /// `gave … (expected …)`).
    pub fn arg_value(
        &self,
        root: &Context<'static, 'static>,
        rec: &Record,
    ) -> Result<AggValue, ExprError> {
        let Some(expr) = &self.arg else {
            return Ok(AggValue::Null);
        };
        let want = self.kind.imp().arg();
        if want == ArgType::Json {
            return match expr.eval_json(root, rec) {
                Ok(Value::Null) => Ok(AggValue::Null),
                Ok(v) => Ok(AggValue::Json(v)),
                Err(e) if is_missing_key(&e) => Ok(AggValue::Null),
                Err(e) => Err(e),
            };
        }
        if let Some(v) = expr.eval_native(rec).and_then(|v| from_native(want, v)) {
            return Ok(v);
        }
        match expr.eval(root, rec) {
            Ok(v) => from_cel(expr, want, v),
            Err(e) if is_missing_key(&e) => Ok(AggValue::Null),
            Err(e) => Err(e),
        }
    }
}

/// A native value ([`CelExpr::eval_native`]) as the [`AggValue`] that
/// [`from_cel`] makes of the same CEL value, when that succeeds; `None`
/// for what would be an error (the CEL program then gives its exact
/// text). A missing field is null, as [`is_missing_key`] makes it.
fn from_native(want: ArgType, v: NativeValue<'_>) -> Option<AggValue> {
    Some(match v {
        NativeValue::Missing | NativeValue::Null => AggValue::Null,
        _ if want == ArgType::Counted => AggValue::Int(1),
        NativeValue::Int(i) => AggValue::Int(i),
        NativeValue::UInt(u) => i64::try_from(u)
            .map(AggValue::Int)
            .unwrap_or(AggValue::Float(u as f64)),
        NativeValue::Float(f) if want == ArgType::FiniteNumber && !f.is_finite() => return None,
        NativeValue::Float(f) => AggValue::Float(f),
        NativeValue::Str(s) if want == ArgType::NumberOrString => AggValue::Str(s.into_owned()),
        NativeValue::Bool(_) | NativeValue::Str(_) => return None,
    })
}

/// The CEL value `v` of `expr` as an [`AggValue`] of the type `want`
/// (anything but [`ArgType::Json`]).
fn from_cel(expr: &CelExpr, want: ArgType, v: Cel) -> Result<AggValue, ExprError> {
    let wrong = |what: String| ExprError {
        expr: expr.source().to_owned(),
        message: AggError::WrongType {
            got: what,
            expected: want.expects(),
        }
        .to_string(),
    };
    Ok(match v {
        Cel::Null => AggValue::Null,
        _ if want == ArgType::Counted => AggValue::Int(1),
        Cel::Int(i) => AggValue::Int(i),
        Cel::UInt(u) => i64::try_from(u)
            .map(AggValue::Int)
            .unwrap_or(AggValue::Float(u as f64)),
        Cel::Float(f) if want == ArgType::FiniteNumber && !f.is_finite() => {
            return Err(wrong(f.to_string()))
        }
        Cel::Float(f) => AggValue::Float(f),
        Cel::String(s) if want == ArgType::NumberOrString => AggValue::Str(s.to_string()),
        other => return Err(wrong(format!("{other:?}"))),
    })
}

/// Whether `v` is a null argument (ignored by all but `count()`).
pub(super) fn is_null(v: &AggValue) -> bool {
    matches!(v, AggValue::Null | AggValue::Json(Value::Null))
}

/// `v` as JSON, `None` when that is null (a NaN float).
pub(super) fn json_of(v: &AggValue) -> Option<Cow<'_, Value>> {
    let j = match v {
        AggValue::Json(j) => Cow::Borrowed(j),
        other => Cow::Owned(to_json(other)),
    };
    (!j.is_null()).then_some(j)
}

/// `v` as an `Int` or `Float` (a JSON number included).
///
/// # Errors
/// [`AggError::WrongType`] expecting "a number" for anything else.
pub(super) fn number(v: &AggValue) -> Result<AggValue, AggError> {
    match v {
        AggValue::Int(_) | AggValue::Float(_) => Ok(v.clone()),
        AggValue::Json(Value::Number(n)) => Ok(n.as_i64().map_or_else(
            || AggValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            AggValue::Int,
        )),
        other => Err(AggError::WrongType {
            got: to_json(other).to_string(),
            expected: ArgType::Number.expects(),
        }),
    }
}

/// `v` as a number or a `Str`, for min/max.
///
/// # Errors
/// [`AggError::WrongType`] expecting "a number or a string" otherwise.
pub(super) fn comparable(v: &AggValue) -> Result<Cow<'_, AggValue>, AggError> {
    match v {
        AggValue::Int(_) | AggValue::Float(_) | AggValue::Str(_) => Ok(Cow::Borrowed(v)),
        AggValue::Json(Value::String(s)) => Ok(Cow::Owned(AggValue::Str(s.clone()))),
        other => number(other)
            .map(Cow::Owned)
            .map_err(|_| AggError::WrongType {
                got: to_json(other).to_string(),
                expected: ArgType::NumberOrString.expects(),
            }),
    }
}

/// `v` as a float: an integer converted, NaN for a non-number.
pub(super) fn as_f64(v: &AggValue) -> f64 {
    match v {
        AggValue::Int(i) => *i as f64,
        AggValue::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// The order of two comparable values: strings by bytes, integers exactly,
/// other numbers as floats; `None` for a string against a number (or NaN).
pub(super) fn compare(a: &AggValue, b: &AggValue) -> Option<Ordering> {
    match (a, b) {
        (AggValue::Str(x), AggValue::Str(y)) => Some(x.cmp(y)),
        (AggValue::Int(x), AggValue::Int(y)) => Some(x.cmp(y)),
        (AggValue::Str(_), _) | (_, AggValue::Str(_)) => None,
        (x, y) => as_f64(x).partial_cmp(&as_f64(y)),
    }
}

/// `f` as a JSON number; null when it is not finite.
pub(super) fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `v` as JSON (a non-finite float is null).
pub(super) fn to_json(v: &AggValue) -> Value {
    match v {
        AggValue::Null => Value::Null,
        AggValue::Int(i) => Value::from(*i),
        AggValue::Float(f) => float(*f),
        AggValue::Str(s) => Value::String(s.clone()),
        AggValue::Json(v) => v.clone(),
    }
}

/// Compact JSON text of `v` with map keys sorted at every level.
pub(super) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                let mut entries: Vec<_> = o.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, x)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(x, out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Estimated heap bytes of `v` (bytes).
pub(super) fn value_heap(v: &AggValue) -> usize {
    match v {
        AggValue::Str(s) => s.capacity(),
        AggValue::Json(v) => json_heap(v),
        AggValue::Null | AggValue::Int(_) | AggValue::Float(_) => 0,
    }
}

/// Estimated heap bytes of a JSON value (an object entry also costs its
/// hash and index slot in the insertion-ordered map).
pub(super) fn json_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => {
            a.capacity() * size_of::<Value>() + a.iter().map(json_heap).sum::<usize>()
        }
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| {
                size_of::<String>()
                    + size_of::<Value>()
                    + 2 * size_of::<usize>()
                    + k.capacity()
                    + json_heap(x)
            })
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// Serde for an `f64` that may be non-finite: JSON has no NaN or infinity,
/// so those are written as the strings `"NaN"`, `"inf"` and `"-inf"`.
pub(super) mod float_text {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Writes `f`: a number when finite, else `"NaN"`, `"inf"` or `"-inf"`.
    pub fn serialize<S: Serializer>(f: &f64, s: S) -> Result<S::Ok, S::Error> {
        if f.is_finite() {
            s.serialize_f64(*f)
        } else if f.is_nan() {
            s.serialize_str("NaN")
        } else if *f > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    /// Reads a number or one of the strings [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
