//! Tests of `percentile`: accuracy against exact quantiles, negatives and zero, non-finite values, and merging sketches.

use super::super::test_util::*;
use super::super::{AggError, AggState, AggValue};
use super::*;
use serde_json::json;

#[test]
fn percentile_handles_negatives_and_zero_within_one_percent() {
    let p = |q: &str, vals: &[f64]| {
        let s = spec(&format!("percentile(value.x, {q})"));
        let v: Vec<_> = vals.iter().map(|x| (0, json!(x))).collect();
        state(&s, &v).result().as_f64().unwrap()
    };
    let small = [-5.0, 0.0, 0.0, 0.0, 5.0];
    assert_eq!(p("0", &small), -5.0);
    assert_eq!(p("0.25", &small), 0.0);
    assert_eq!(p("0.5", &small), 0.0);
    assert_eq!(p("1", &small), 5.0);
    let neg = [-10.0, -20.0, -30.0];
    assert!((p("0.5", &neg) + 20.0).abs() <= 0.2);
    // Flight delays: many negatives, a long positive tail.
    // -60.0 to 439.9 by 0.1 (0 included) in scrambled order, and a tail.
    let delays: Vec<f64> = (0..5000)
        .map(|i| ((i * 7919) % 5000) as f64 / 10.0 - 60.0)
        .chain((1..=50).map(|i| 500.0 * i as f64))
        .collect();
    assert!(delays.iter().any(|d| *d < 0.0) && delays.contains(&0.0));
    for q in [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0] {
        let got = p(&q.to_string(), &delays);
        let want = exact_quantile(&delays, q);
        assert!(
            (got - want).abs() <= PERCENTILE_ACCURACY * want.abs() * (1.0 + 1e-12),
            "q {q}: {got} vs exact {want}"
        );
    }
}

#[test]
fn percentile_rejects_non_finite_and_non_numbers() {
    let s = spec("percentile(value.x, 0.5)");
    let mut st = AggState::new(&s);
    assert_eq!(
        st.add(&s, &AggValue::Float(f64::INFINITY), 0).unwrap_err(),
        "gave inf (expected a finite number)"
    );
    assert_eq!(
        st.add(&s, &AggValue::Str("x".into()), 0).unwrap_err(),
        "gave \"x\" (expected a number)"
    );
    st.add(&s, &AggValue::Float(1e308), 0).unwrap();
    assert!(st.add(&s, &AggValue::Float(1e308), 0).is_err());
    let got = st.result().as_f64().unwrap();
    assert!((got - 1e308).abs() <= PERCENTILE_ACCURACY * 1e308, "{got}");
    let nan = spec("first(value.x)");
    let mut st = AggState::new(&nan);
    st.add(&nan, &AggValue::Float(f64::NAN), 0).unwrap();
    assert_eq!(st, AggState::First(None), "NaN has no JSON form: null");
}

#[test]
fn percentile_merge_equals_one_sketch_and_exact_within_one_percent() {
    let vals: Vec<f64> = (0..3000)
        .map(|i| ((i * 31) % 1000) as f64 - 300.0)
        .collect();
    let recs: Vec<_> = vals.iter().map(|v| (0, json!(v))).collect();
    for q in [0.05, 0.5, 0.95, 0.99] {
        let s = spec(&format!("percentile(value.dep_delay, {q})"));
        let whole = state(&s, &recs);
        let mut merged = AggState::new(&s);
        for part in recs.chunks(700) {
            merged.merge(&s, &state(&s, part)).unwrap();
        }
        assert_eq!(merged.result(), whole.result(), "q {q}");
        let got = merged.result().as_f64().unwrap();
        let want = exact_quantile(&vals, q);
        assert!(
            (got - want).abs() <= PERCENTILE_ACCURACY * want.abs() * (1.0 + 1e-12),
            "{got} vs {want}"
        );
    }
}

#[test]
fn sketch_errors_are_typed() {
    let s = spec("percentile(value.x, 0.5)");
    let mut st = AggState::new(&s);
    assert_eq!(
        st.try_check(&AggValue::Float(f64::NAN))
            .unwrap_err()
            .to_string(),
        "gave NaN (expected a finite number)"
    );
    st.try_add(&s, &AggValue::Float(1e308), 0).unwrap();
    assert_eq!(
        st.try_check(&AggValue::Float(1e308)),
        Err(AggError::SumOutOfRange)
    );
    let mut big = Sketch::new();
    big.add(1e308);
    assert_eq!(big.merge(&big.clone()), Err(AggError::SumOutOfRange));
    assert_eq!(Sketch::new().quantile(0.5), None);
}
