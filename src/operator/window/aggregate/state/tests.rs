//! Tests of `AggState`: SQL null semantics, event-time order, merging, serde (the changelog format) and size estimates.

use super::super::test_util::*;
use super::*;
use serde_json::json;

#[test]
fn sql_null_semantics_and_integer_sums() {
    use AggValue::*;
    assert_eq!(fold("sum(value.x)", &[Int(1), Null, Int(2)]), json!(3));
    assert_eq!(fold("sum(value.x)", &[Int(1), Float(0.5)]), json!(1.5));
    assert_eq!(fold("sum(value.x)", &[Null]), json!(null));
    assert_eq!(fold("avg(value.x)", &[Int(1), Int(2), Null]), json!(1.5));
    assert_eq!(fold("avg(value.x)", &[]), json!(null));
    assert_eq!(
        fold("min(value.x)", &[Int(3), Float(-1.5), Int(2)]),
        json!(-1.5)
    );
    assert_eq!(
        fold("max(value.x)", &[Str("a".into()), Str("b".into())]),
        json!("b")
    );
    assert_eq!(fold("count(value.x)", &[Int(1), Null, Int(1)]), json!(2));
    assert_eq!(fold("count()", &[Int(1), Null, Null]), json!(3));
    assert_eq!(
        fold("sum(value.x)", &[Int(i64::MAX), Int(1)]),
        json!(9.223372036854776e18)
    );
    for call in [
        "count_distinct(value.x)",
        "first(value.x)",
        "last(value.x)",
        "collect(value.x, 2)",
        "percentile(value.x, 0.5)",
    ] {
        let want = if call.starts_with("count") {
            json!(0)
        } else {
            json!(null)
        };
        assert_eq!(fold(call, &[Null, Json(json!(null))]), want, "{call}");
        assert_eq!(fold(call, &[]), want, "{call}");
    }
}

#[test]
fn first_and_last_follow_event_time_with_ties_in_order_added() {
    let vals = timed(&[
        (5, json!("b")),
        (3, json!({"k": [1, 2]})),
        (3, json!("a2")),
        (1, json!(null)),
        (9, json!([true])),
        (9, json!(2.5)),
    ]);
    assert_eq!(
        state(&spec("first(value.x)"), &vals).result(),
        json!({"k": [1, 2]})
    );
    assert_eq!(state(&spec("last(value.x)"), &vals).result(), json!(2.5));
}

#[test]
fn collect_keeps_the_n_earliest_in_event_time_order() {
    let vals = timed(&[
        (5, json!(1)),
        (3, json!("two")),
        (3, json!([3])),
        (1, json!(null)),
        (7, json!(4)),
        (2, json!({"five": 5})),
        (3, json!(false)),
    ]);
    assert_eq!(
        state(&spec("collect(value.x, 3)"), &vals).result(),
        json!([{"five": 5}, "two", [3]])
    );
    assert_eq!(
        state(&spec("collect(value.x, 100)"), &vals).result(),
        json!([{"five": 5}, "two", [3], false, 1, 4])
    );
    assert_eq!(
        state(&spec("collect(value.x, 1)"), &vals).result(),
        json!([{"five": 5}])
    );
}

#[test]
fn count_distinct_compares_canonical_json() {
    let vals = timed(&[
        (0, json!(1)),
        (0, json!(1.0)),
        (0, json!("1")),
        (0, json!(1)),
        (0, json!({"a": 1, "b": [2, {"c": 3, "d": 4}]})),
        (0, json!({"b": [2, {"d": 4, "c": 3}], "a": 1})),
        (0, json!([1, 2])),
        (0, json!([2, 1])),
        (0, json!(null)),
        (0, json!(true)),
    ]);
    // 1, 1.0, "1", the map, [1,2], [2,1], true
    assert_eq!(
        state(&spec("count_distinct(value.x)"), &vals).result(),
        json!(7)
    );
}

#[test]
fn merge_equals_adding_all_values_to_one_state() {
    let recs = records();
    for call in ALL {
        let s = spec(call);
        let whole = state(&s, &recs);
        for k in [0, 1, 17, 30, 59, 60] {
            let (a, b) = recs.split_at(k);
            let mut merged = state(&s, a);
            merged.merge(&s, &state(&s, b)).unwrap();
            assert_eq!(merged.result(), whole.result(), "{call} split at {k}");
            // Order-free aggregates also merge the other way round.
            if !call.starts_with("first")
                && !call.starts_with("last")
                && !call.starts_with("collect")
            {
                let mut rev = state(&s, b);
                rev.merge(&s, &state(&s, a)).unwrap();
                assert_eq!(rev.result(), whole.result(), "{call} reversed at {k}");
            }
        }
    }
}

#[test]
fn merge_keeps_ties_in_order_of_the_states() {
    let a = timed(&[(5, json!("a5")), (1, json!("a1"))]);
    let b = timed(&[(5, json!("b5")), (1, json!("b1")), (0, json!("b0"))]);
    for call in ["first(value.x)", "last(value.x)", "collect(value.x, 3)"] {
        let s = spec(call);
        let mut m = state(&s, &a);
        m.merge(&s, &state(&s, &b)).unwrap();
        let both: Vec<_> = a.iter().chain(&b).cloned().collect();
        assert_eq!(m, state(&s, &both), "{call}");
    }
    let s = spec("collect(value.x, 3)");
    let mut m = state(&s, &a);
    m.merge(&s, &state(&s, &b)).unwrap();
    assert_eq!(m.result(), json!(["b0", "a1", "b1"]));
}

#[test]
fn merging_different_aggregates_is_an_error() {
    let (c, f) = (spec("count()"), spec("first(value.x)"));
    assert_eq!(
        AggState::new(&c).merge(&c, &AggState::new(&f)).unwrap_err(),
        "cannot merge a count state with a first state (expected states of one aggregate)"
    );
}

#[test]
fn serde_round_trip_gives_equal_states_and_results() {
    let recs = records();
    let mut states: Vec<AggState> = ALL
        .iter()
        .flat_map(|call| {
            let s = spec(call);
            [AggState::new(&s), state(&s, &recs)]
        })
        .collect();
    states.push(AggState::Sum(Some(AggValue::Float(f64::INFINITY))));
    states.push(AggState::Avg(f64::NEG_INFINITY, 2));
    for st in &states {
        let text = serde_json::to_string(st).unwrap();
        let back: AggState = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, st, "{text}");
        assert_eq!(back.result(), st.result(), "{text}");
    }
    let nan = AggState::Avg(f64::NAN, 1);
    let text = serde_json::to_string(&nan).unwrap();
    assert_eq!(text, r#"{"Avg":["NaN",1]}"#);
    let back: AggState = serde_json::from_str(&text).unwrap();
    assert!(matches!(back, AggState::Avg(f, 1) if f.is_nan()));
    // A restored sketch keeps merging with fresh ones.
    let s = spec("percentile(value.x, 0.5)");
    let mut restored: AggState =
        serde_json::from_str(&serde_json::to_string(&state(&s, &recs)).unwrap()).unwrap();
    restored.merge(&s, &state(&s, &recs)).unwrap();
    let twice: Vec<_> = recs.iter().chain(&recs).cloned().collect();
    assert_eq!(restored.result(), state(&s, &twice).result());
}

#[test]
fn approx_bytes_grows_with_what_is_kept() {
    let s = spec("collect(value.x, 1000)");
    let empty = AggState::new(&s);
    assert_eq!(empty.approx_bytes(), size_of::<AggState>());
    let big = state(&s, &[(0, json!("x".repeat(1000))), (1, json!([1, 2, 3]))]);
    assert!(big.approx_bytes() >= size_of::<AggState>() + 1000 + 3 * size_of::<Value>());
    let p = spec("percentile(value.x, 0.5)");
    let sk = state(&p, &[(0, json!(1.0)), (0, json!(-1.0))]);
    assert!(sk.approx_bytes() >= 2 * 128 * 8);
    let d = spec("count_distinct(value.x)");
    let one = state(&d, &[(0, json!("abc"))]).approx_bytes();
    let two = state(&d, &[(0, json!("abc")), (0, json!("abd"))]).approx_bytes();
    assert!(two > one);
}

/// The serde form is the changelog's format: the JSON of one state of
/// every shape, as the single-file `aggregate.rs` wrote it before the split
/// (`golden.jsonl`), must not change.
#[test]
fn serde_form_is_the_changelog_format_of_before() {
    let recs = records();
    let strs: Vec<(i64, Value)> = recs
        .iter()
        .map(|(t, v)| match v {
            Value::Null => (*t, json!(null)),
            v => (*t, json!(format!("s{v}"))),
        })
        .collect();
    let mut states = Vec::new();
    for call in ALL {
        let s = spec(call);
        states.extend([AggState::new(&s), state(&s, &recs)]);
    }
    for call in [
        "min(value.x)",
        "max(value.x)",
        "first(value.x)",
        "collect(value.x, 4)",
        "count_distinct(value.x)",
    ] {
        states.push(state(&spec(call), &strs));
    }
    let s = spec("sum(value.x)");
    states.push(state(&s, &[(0, json!(1.5)), (1, json!(2))]));
    states.extend([
        AggState::Sum(Some(AggValue::Float(f64::INFINITY))),
        AggState::Avg(f64::NEG_INFINITY, 2),
        AggState::Avg(f64::NAN, 1),
        AggState::Extreme(Some(AggValue::Str("x".into()))),
        AggState::Extreme(Some(AggValue::Json(json!({"a": [1]})))),
        AggState::Extreme(Some(AggValue::Null)),
    ]);
    let golden: Vec<&str> = include_str!("golden.jsonl").lines().collect();
    assert_eq!(golden.len(), states.len());
    for (st, want) in states.iter().zip(golden) {
        assert_eq!(serde_json::to_string(st).unwrap(), want);
        let back: AggState = serde_json::from_str(want).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), want);
    }
}

#[test]
fn errors_are_typed_and_leave_the_state_unchanged() {
    let (min, sum) = (spec("min(value.x)"), spec("sum(value.x)"));
    let mut m = state(&min, &[(0, json!(3))]);
    let before = m.clone();
    assert_eq!(
        m.try_check(&AggValue::Str("a".into())),
        Err(AggError::Incomparable)
    );
    assert_eq!(
        m.try_add(&min, &AggValue::Str("a".into()), 0),
        Err(AggError::Incomparable)
    );
    assert_eq!(m, before);
    assert_eq!(
        m.add(&min, &AggValue::Str("a".into()), 0).unwrap_err(),
        "cannot compare a number with a string (expected values of one type)"
    );
    let mut s = AggState::new(&sum);
    assert_eq!(
        s.try_add(&sum, &AggValue::Json(json!([1])), 0),
        Err(AggError::WrongType {
            got: "[1]".into(),
            expected: "a number"
        })
    );
    assert_eq!(s, AggState::Sum(None));
    assert_eq!(
        s.try_merge(&sum, &before),
        Err(AggError::Mismatch {
            ours: "sum",
            theirs: "min/max"
        })
    );
    let max = spec("max(value.x)");
    let mut a = state(&max, &[(0, json!("b"))]);
    assert_eq!(
        a.try_merge(&max, &state(&max, &[(0, json!(1))])),
        Err(AggError::Incomparable)
    );
}

#[test]
fn an_extreme_state_follows_the_spec_it_is_given() {
    let (min, max) = (spec("min(value.x)"), spec("max(value.x)"));
    let vals = [(0, json!(2)), (1, json!(-4)), (2, json!(9))];
    assert_eq!(state(&min, &vals).result(), json!(-4));
    assert_eq!(state(&max, &vals).result(), json!(9));
    let mut m = state(&min, &vals[..1]);
    m.merge(&min, &state(&min, &vals[1..])).unwrap();
    assert_eq!(m.result(), json!(-4));
}
