//! The numeric aggregate functions: `count`, `sum`, `min`, `max`, `avg`
//! and `percentile`.

use super::{Aggregate, ArgType, Param};
use crate::operator::window::aggregate::error::AggError;
use crate::operator::window::aggregate::sketch::Sketch;
use crate::operator::window::aggregate::state::AggState;
use crate::operator::window::aggregate::value::{
    as_f64, comparable, compare, float, is_null, number, to_json, value_heap, AggValue,
};
use crate::operator::window::aggregate::AggSpec;
use serde_json::Value;
use std::cmp::Ordering;

/// `count()` and `count(expr)`.
pub(crate) struct Count;

impl Aggregate for Count {
    fn name(&self) -> &'static str {
        "count"
    }
    fn forms(&self) -> &'static str {
        "count(), count(expr)"
    }
    fn usage(&self) -> &'static str {
        "count() or count(expr)"
    }
    fn optional_arg(&self) -> bool {
        true
    }
    fn arg(&self) -> ArgType {
        ArgType::Counted
    }
    fn counts_nulls(&self) -> bool {
        true
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        AggState::Count(0)
    }
    fn add(&self, s: &mut AggState, spec: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Count(n) = s);
        if spec.arg.is_none() || !is_null(v) {
            *n += 1;
        }
        Ok(())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!((AggState::Count(a), AggState::Count(b)) = (s, other));
        *a += b;
        Ok(())
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Count(n) = s);
        Value::from(*n)
    }
}

/// `sum(expr)`: integer while every value is, else float.
pub(crate) struct Sum;

impl Sum {
    fn add_into(acc: &mut Option<AggValue>, v: &AggValue) -> Result<(), AggError> {
        let v = number(v)?;
        *acc = Some(match (acc.take(), v) {
            (None, x) => x,
            (Some(AggValue::Int(a)), AggValue::Int(b)) => match a.checked_add(b) {
                Some(s) => AggValue::Int(s),
                None => AggValue::Float(a as f64 + b as f64),
            },
            (Some(a), b) => AggValue::Float(as_f64(&a) + as_f64(&b)),
        });
        Ok(())
    }
}

impl Aggregate for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn usage(&self) -> &'static str {
        "sum(expr)"
    }
    fn arg(&self) -> ArgType {
        ArgType::Number
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        AggState::Sum(None)
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Sum(acc) = s);
        Sum::add_into(acc, v)
    }
    fn check(&self, _: &AggState, v: &AggValue) -> Result<(), AggError> {
        number(v).map(|_| ())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!((AggState::Sum(a), AggState::Sum(b)) = (s, other));
        b.as_ref().map_or(Ok(()), |b| Sum::add_into(a, b))
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Sum(v) = s);
        v.as_ref().map_or(Value::Null, to_json)
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        expect_state!(AggState::Sum(v) = s);
        v.as_ref().map_or(0, value_heap)
    }
}

/// `min(expr)` and `max(expr)`, over numbers or strings; both keep an
/// `AggState::Extreme`.
pub(crate) struct Extreme {
    name: &'static str,
    usage: &'static str,
    /// The order of a new value against the current one that replaces it.
    replaces: Ordering,
}

/// `min(expr)`.
pub(crate) const MIN: Extreme = Extreme {
    name: "min",
    usage: "min(expr)",
    replaces: Ordering::Less,
};

/// `max(expr)`.
pub(crate) const MAX: Extreme = Extreme {
    name: "max",
    usage: "max(expr)",
    replaces: Ordering::Greater,
};

impl Extreme {
    fn add_into(&self, cur: &mut Option<AggValue>, v: &AggValue) -> Result<(), AggError> {
        let v = comparable(v)?;
        let replace = match cur {
            None => true,
            Some(c) => compare(&v, c).ok_or(AggError::Incomparable)? == self.replaces,
        };
        if replace {
            *cur = Some(v.into_owned());
        }
        Ok(())
    }
}

impl Aggregate for Extreme {
    fn name(&self) -> &'static str {
        self.name
    }
    fn usage(&self) -> &'static str {
        self.usage
    }
    fn arg(&self) -> ArgType {
        ArgType::NumberOrString
    }
    fn state_label(&self) -> &'static str {
        "min/max"
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        AggState::Extreme(None)
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Extreme(cur) = s);
        self.add_into(cur, v)
    }
    fn check(&self, s: &AggState, v: &AggValue) -> Result<(), AggError> {
        expect_state!(AggState::Extreme(cur) = s);
        let v = comparable(v)?;
        match cur {
            Some(c) if compare(&v, c).is_none() => Err(AggError::Incomparable),
            _ => Ok(()),
        }
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!((AggState::Extreme(a), AggState::Extreme(b)) = (s, other));
        b.as_ref().map_or(Ok(()), |b| self.add_into(a, b))
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Extreme(v) = s);
        v.as_ref().map_or(Value::Null, to_json)
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        expect_state!(AggState::Extreme(v) = s);
        v.as_ref().map_or(0, value_heap)
    }
}

/// `avg(expr)`: a float.
pub(crate) struct Avg;

impl Aggregate for Avg {
    fn name(&self) -> &'static str {
        "avg"
    }
    fn usage(&self) -> &'static str {
        "avg(expr)"
    }
    fn arg(&self) -> ArgType {
        ArgType::Number
    }
    fn new_state(&self, _: &AggSpec) -> AggState {
        AggState::Avg(0.0, 0)
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Avg(sum, n) = s);
        *sum += as_f64(&number(v)?);
        *n += 1;
        Ok(())
    }
    fn check(&self, _: &AggState, v: &AggValue) -> Result<(), AggError> {
        number(v).map(|_| ())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!((AggState::Avg(s, n), AggState::Avg(s2, n2)) = (s, other));
        *s += s2;
        *n += n2;
        Ok(())
    }
    fn result(&self, s: &AggState) -> Value {
        match s {
            AggState::Avg(_, 0) => Value::Null,
            AggState::Avg(sum, n) => float(*sum / *n as f64),
            _ => unreachable!("AggState dispatches to the impl of its own variant"),
        }
    }
}

/// `percentile(expr, q)`: a DDSketch estimate, a float.
pub(crate) struct Percentile;

impl Percentile {
    /// `v` as a finite float whose addition keeps `sketch`'s sum finite.
    fn value(sketch: Option<&Sketch>, v: &AggValue) -> Result<f64, AggError> {
        let x = as_f64(&number(v)?);
        if !x.is_finite() {
            return Err(AggError::WrongType {
                got: x.to_string(),
                expected: ArgType::FiniteNumber.expects(),
            });
        }
        sketch.map_or(Ok(()), |s| s.check_sum(x))?;
        Ok(x)
    }
}

impl Aggregate for Percentile {
    fn name(&self) -> &'static str {
        "percentile"
    }
    fn forms(&self) -> &'static str {
        "percentile(expr, q)"
    }
    fn usage(&self) -> &'static str {
        "percentile(expr, q) with q a number in [0, 1]"
    }
    fn param(&self) -> Param {
        Param::Quantile
    }
    fn arg(&self) -> ArgType {
        ArgType::FiniteNumber
    }
    fn new_state(&self, spec: &AggSpec) -> AggState {
        AggState::Percentile {
            q: spec.q.unwrap_or(0.5),
            sketch: None,
        }
    }
    fn add(&self, s: &mut AggState, _: &AggSpec, v: &AggValue, _: i64) -> Result<(), AggError> {
        expect_state!(AggState::Percentile { sketch, .. } = s);
        let x = Percentile::value(sketch.as_deref(), v)?;
        sketch.get_or_insert_with(|| Box::new(Sketch::new())).add(x);
        Ok(())
    }
    fn check(&self, s: &AggState, v: &AggValue) -> Result<(), AggError> {
        expect_state!(AggState::Percentile { sketch, .. } = s);
        Percentile::value(sketch.as_deref(), v).map(|_| ())
    }
    fn merge(&self, s: &mut AggState, other: &AggState) -> Result<(), AggError> {
        expect_state!(
            (
                AggState::Percentile { sketch: a, .. },
                AggState::Percentile { sketch: b, .. }
            ) = (s, other)
        );
        match (a, b) {
            (_, None) => Ok(()),
            (a @ None, Some(b)) => {
                *a = Some(b.clone());
                Ok(())
            }
            (Some(a), Some(b)) => a.merge(b),
        }
    }
    fn result(&self, s: &AggState) -> Value {
        expect_state!(AggState::Percentile { q, sketch } = s);
        sketch
            .as_ref()
            .and_then(|s| s.quantile(*q))
            .map_or(Value::Null, float)
    }
    fn heap_bytes(&self, s: &AggState) -> usize {
        expect_state!(AggState::Percentile { sketch, .. } = s);
        sketch.as_ref().map_or(0, |s| s.approx_bytes())
    }
}
