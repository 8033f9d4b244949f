//! Tests of the CEL wrapper: load-time checks, field binding, errors.

use super::*;
use serde_json::json;

fn rec(v: serde_json::Value) -> Record {
    Record::new(json!("k"), v)
}

#[test]
fn evaluates_with_field_subset() {
    let env = CelEnv::new();
    let e = env
        .compile("value.status == 200 && value.page.startsWith('/product')")
        .unwrap();
    assert!(
        matches!(e.value, ValueUse::Fields { ref names, qualified: Some(_) } if names == &["page", "status"])
    );
    let root = env.root();
    assert!(e
        .eval_bool(
            &root,
            &rec(json!({"status": 200, "page": "/product/1", "x": 1}))
        )
        .unwrap());
    assert!(!e
        .eval_bool(&root, &rec(json!({"status": 404, "page": "/product/1"})))
        .unwrap());
}

#[test]
fn extensions_and_macros_work() {
    let env = CelEnv::new();
    let root = env.root();
    let e = env.compile("value.page.split('/')[1]").unwrap();
    let got = e.eval(&root, &rec(json!({"page": "/product/1"}))).unwrap();
    assert_eq!(got, Cel::String(Arc::new("product".into())));
    let e = env
        .compile("value.items.exists(i, i > 2) && math.greatest(1, 2) == 2")
        .unwrap();
    assert!(e.eval_bool(&root, &rec(json!({"items": [1, 3]}))).unwrap());
    assert!(matches!(e.value, ValueUse::Fields { .. }));
    let h = env.compile("has(value.a) && value.b > 1").unwrap();
    assert!(matches!(
        h.value,
        ValueUse::Fields {
            qualified: None,
            ..
        }
    ));
    assert!(h.eval_bool(&root, &rec(json!({"a": 1, "b": 2}))).unwrap());
    assert!(!h.eval_bool(&root, &rec(json!({"b": 2}))).unwrap());
    let n = env
        .compile("value.user.id == 'u1' && size(value.tags) == 2")
        .unwrap();
    assert!(n
        .eval_bool(&root, &rec(json!({"user": {"id": "u1"}, "tags": [1, 2]})))
        .unwrap());
    assert_eq!(
        n.eval_bool(&root, &rec(json!({"tags": [1, 2]})))
            .unwrap_err()
            .message,
        "No such key: user"
    );
}

#[test]
fn load_time_errors() {
    let env = CelEnv::new();
    assert_eq!(
        env.compile("vlue.x > 1").unwrap_err(),
        "unknown variable `vlue` (expected one of value, key, headers, topic, partition, offset, timestamp, event_time)"
    );
    assert_eq!(
        env.compile("value.x.bogus()").unwrap_err(),
        "unknown function `bogus` (expected a CEL standard function or one of the strings, math, lists extensions)"
    );
    assert!(env
        .compile("value.x +")
        .unwrap_err()
        .starts_with("CEL syntax error at 1:10"));
    assert!(env.compile("int(value.p * 100.0) + size(key)").is_ok());
}

#[test]
fn record_errors_are_values_not_panics() {
    let env = CelEnv::new();
    let root = env.root();
    let e = env.compile("value.missing > 1").unwrap();
    let err = e.eval_bool(&root, &rec(json!({"a": 1}))).unwrap_err();
    assert_eq!(err.message, "No such key: missing");
    let e = env.compile("value.a").unwrap();
    let err = e.eval_bool(&root, &rec(json!({"a": 1}))).unwrap_err();
    assert_eq!(err.message, "gave Int(1) (expected a bool)");
}
