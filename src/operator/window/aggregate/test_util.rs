//! Helpers shared by the aggregate tests: compiling a call, folding values
//! into a state, exact quantiles, and a set of records with ties, nulls,
//! negatives, zeros and mixed JSON types.

use super::kinds::ArgType;
use super::{parse_aggregate, AggSpec, AggState, AggValue};
use crate::expr::CelEnv;
use serde_json::{json, Value};

/// The spec of `call`, named `x`.
pub(crate) fn spec(call: &str) -> AggSpec {
    parse_aggregate(&CelEnv::new(), "x", call).unwrap()
}

/// Folds `(event_time, value)` pairs (JSON null is a null argument).
pub(crate) fn state(spec: &AggSpec, vals: &[(i64, Value)]) -> AggState {
    let mut s = AggState::new(spec);
    for (t, v) in vals {
        let v = match v {
            Value::Null => AggValue::Null,
            v if spec.kind.imp().arg() == ArgType::Json => AggValue::Json(v.clone()),
            Value::String(s) => AggValue::Str(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => AggValue::Int(i),
                None => AggValue::Float(n.as_f64().unwrap()),
            },
            other => panic!("no AggValue for {other}"),
        };
        s.add(spec, &v, *t).unwrap();
    }
    s
}

/// The result of adding `vals` (all at event time 0) to a fresh state of `call`.
pub(crate) fn fold(call: &str, vals: &[AggValue]) -> Value {
    let spec = spec(call);
    let mut s = AggState::new(&spec);
    for v in vals {
        s.add(&spec, v, 0).unwrap();
    }
    s.result()
}

/// `vals` as a list of `(event_time, value)` pairs.
pub(crate) fn timed(vals: &[(i64, Value)]) -> Vec<(i64, Value)> {
    vals.to_vec()
}

/// The value of rank ⌊q·(n−1)⌋ among `vals`, sorted.
pub(crate) fn exact_quantile(vals: &[f64], q: f64) -> f64 {
    let mut v = vals.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[(q * (v.len() as f64 - 1.0)) as usize]
}

/// Records with ties, nulls, negatives, zeros and mixed JSON types.
pub(crate) fn records() -> Vec<(i64, Value)> {
    (0..60)
        .map(|i: i64| {
            let t = (i * 37) % 11;
            let v = match i % 6 {
                0 => json!(null),
                1 => json!(i - 30),
                2 => json!(0),
                3 => json!(-(i * i)),
                _ => json!(i % 9),
            };
            (t, v)
        })
        .collect()
}

/// One call of every aggregate (two of `percentile`).
pub(crate) const ALL: [&str; 12] = [
    "count()",
    "count(value.x)",
    "sum(value.x)",
    "min(value.x)",
    "max(value.x)",
    "avg(value.x)",
    "count_distinct(value.x)",
    "first(value.x)",
    "last(value.x)",
    "collect(value.x, 7)",
    "percentile(value.x, 0.9)",
    "percentile(value.x, 0.1)",
];
