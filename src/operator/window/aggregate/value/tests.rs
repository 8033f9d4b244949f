//! Tests of argument evaluation, canonical JSON and the float serde.

use super::super::parse_aggregate;
use super::*;
use crate::expr::CelEnv;
use serde_json::json;

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
    let p = parse_aggregate(&env, "p", "percentile(value.x, 0.5)").unwrap();
    let e = p
        .arg_value(&root, &Record::new(json!(null), json!({"x": "abc"})))
        .unwrap_err();
    assert_eq!(e.message, "gave String(\"abc\") (expected a finite number)");
}

#[test]
fn any_json_argument_for_first_last_collect_count_distinct() {
    let env = CelEnv::new();
    let root = env.root();
    let rec = Record::new(
        json!(null),
        json!({"tags": ["a", 1], "m": {"k": true}, "n": null, "b": false}),
    );
    let val = |call: &str| {
        parse_aggregate(&env, "x", call)
            .unwrap()
            .arg_value(&root, &rec)
    };
    assert_eq!(
        val("first(value.tags)").unwrap(),
        AggValue::Json(json!(["a", 1]))
    );
    assert_eq!(
        val("collect(value.m, 2)").unwrap(),
        AggValue::Json(json!({"k": true}))
    );
    assert_eq!(val("last(value.b)").unwrap(), AggValue::Json(json!(false)));
    assert_eq!(val("count_distinct(value.n)").unwrap(), AggValue::Null);
    assert_eq!(val("first(value.missing)").unwrap(), AggValue::Null);
    assert_eq!(
        val("first(b'xy')").unwrap_err().message,
        "a CEL bytes has no JSON form"
    );
}

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    assert_eq!(
        canonical(&json!({"b": [{"d": 1, "c": "x\"y"}], "a": null})),
        r#"{"a":null,"b":[{"c":"x\"y","d":1}]}"#
    );
    assert_eq!(canonical(&json!(1.0)), "1.0");
}

#[test]
fn comparisons_and_conversions() {
    use std::cmp::Ordering::*;
    assert_eq!(
        compare(&AggValue::Int(2), &AggValue::Float(2.5)),
        Some(Less)
    );
    assert_eq!(
        compare(&AggValue::Str("b".into()), &AggValue::Str("a".into())),
        Some(Greater)
    );
    assert_eq!(compare(&AggValue::Str("1".into()), &AggValue::Int(1)), None);
    assert_eq!(number(&AggValue::Json(json!(2))).unwrap(), AggValue::Int(2));
    assert_eq!(
        comparable(&AggValue::Json(json!(true))).unwrap_err(),
        AggError::WrongType {
            got: "true".into(),
            expected: "a number or a string"
        }
    );
    assert_eq!(to_json(&AggValue::Float(f64::NAN)), json!(null));
    assert!(json_of(&AggValue::Float(f64::NAN)).is_none());
    assert!(is_null(&AggValue::Json(json!(null))));
}

#[test]
fn non_finite_floats_serialize_as_strings() {
    for (f, text) in [
        (f64::INFINITY, r#"{"Float":"inf"}"#),
        (f64::NEG_INFINITY, r#"{"Float":"-inf"}"#),
        (1.5, r#"{"Float":1.5}"#),
    ] {
        let v = AggValue::Float(f);
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        assert_eq!(serde_json::from_str::<AggValue>(text).unwrap(), v);
    }
    assert!(serde_json::from_str::<AggValue>(r#"{"Float":"x"}"#).is_err());
    assert_eq!(
        serde_json::from_str::<AggValue>(r#"{"Float":2}"#).unwrap(),
        AggValue::Float(2.0)
    );
}

/// [`AggSpec::arg_value`] as the CEL program alone gives it.
fn cel_only(
    a: &AggSpec,
    root: &Context<'static, 'static>,
    rec: &Record,
) -> Result<AggValue, ExprError> {
    let expr = a.arg.as_ref().unwrap();
    match expr.eval(root, rec) {
        Ok(v) => from_cel(expr, a.kind.imp().arg(), v),
        Err(e) if is_missing_key(&e) => Ok(AggValue::Null),
        Err(e) => Err(e),
    }
}

/// `v` as a lazy payload, when it can be one.
fn try_lazy(v: &Value) -> Option<Record> {
    let mut r = Record::new(Value::Null, Value::Null);
    r.lazy = Some(std::sync::Arc::new(crate::record::LazyObject::parse(
        v.to_string().as_bytes(),
    )?));
    Some(r)
}

fn lazy(v: &Value) -> Record {
    try_lazy(v).expect("a lazy payload")
}

/// The native path of plain field arguments gives exactly what CEL gives,
/// on lazy and decoded payloads, fallbacks included.
#[test]
fn native_arguments_agree_with_cel() {
    let env = CelEnv::new();
    let root = env.root();
    let calls = [
        "sum(value.x)",
        "avg(value.x)",
        "min(value.x)",
        "count(value.x)",
        "percentile(value.x, 0.5)",
        "sum(value.x * 2)",
        "sum(value.a.b)",
        "max(value.missing)",
    ];
    let values = [
        json!({"x": 5, "a": {"b": 2}}),
        json!({"x": -0.0}),
        json!({"x": 1.5e300, "a": {"b": 1.25}}),
        json!({"x": 18446744073709551615u64}),
        json!({"x": "abc"}),
        json!({"x": null}),
        json!({"x": true}),
        json!({"x": [1]}),
        json!({"y": 1}),
        json!({"a": 3}),
        json!([1]),
        json!(7),
    ];
    for call in calls {
        let a = parse_aggregate(&env, "v", call).unwrap();
        for v in &values {
            let recs = [Record::new(Value::Null, v.clone())]
                .into_iter()
                .chain(try_lazy(v));
            for r in recs {
                assert_eq!(
                    a.arg_value(&root, &r),
                    cel_only(&a, &root, &r),
                    "{call} on {v}"
                );
            }
        }
    }
}

/// Exact native values: a number, a missing field (null), a string for
/// `min`, and the fallbacks (a wrong type, a nested path) through CEL.
#[test]
fn native_argument_values() {
    let env = CelEnv::new();
    let root = env.root();
    let sum = parse_aggregate(&env, "s", "sum(value.cents)").unwrap();
    let min = parse_aggregate(&env, "m", "min(value.page)").unwrap();
    let nested = parse_aggregate(&env, "n", "sum(value.a.b)").unwrap();
    let r = lazy(&json!({"cents": 150, "page": "/p", "a": {"b": 2.5}}));
    assert_eq!(sum.arg_value(&root, &r), Ok(AggValue::Int(150)));
    assert_eq!(min.arg_value(&root, &r), Ok(AggValue::Str("/p".into())));
    assert_eq!(nested.arg_value(&root, &r), Ok(AggValue::Float(2.5)));
    let none = lazy(&json!({"other": 1}));
    assert_eq!(sum.arg_value(&root, &none), Ok(AggValue::Null));
    assert_eq!(nested.arg_value(&root, &none), Ok(AggValue::Null));
    let text = lazy(&json!({"cents": "150"}));
    assert_eq!(
        sum.arg_value(&root, &text).unwrap_err().message,
        "gave String(\"150\") (expected a number)"
    );
    let float = Record::new(Value::Null, json!({"cents": 1.25}));
    assert_eq!(sum.arg_value(&root, &float), Ok(AggValue::Float(1.25)));
}
