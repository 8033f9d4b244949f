//! Matching an expected record with a produced one (`weir test`).
//!
//! A value matches as a subset, as in Redpanda Connect's `json_contains`
//! and Vector's partial field checks: an expected object matches an actual
//! object that has at least its fields, each matching recursively; arrays
//! and scalars compare exactly; numbers compare by value, so `1` matches
//! `1.0` (JSON does not tell them apart, and an average that happens to be
//! whole should not need a `.0`). `null` matches only `null`, not a
//! missing field.

use super::{Expected, Output};
use serde_json::{Number, Value};

impl Expected {
    /// Whether `actual` meets this expectation: same topic, key and
    /// timestamp where the expectation gives them, and a value that
    /// [`subset`]-matches.
    pub fn matches(&self, actual: &Output) -> bool {
        self.topic.as_ref().is_none_or(|t| *t == actual.topic)
            && self
                .key
                .as_ref()
                .is_none_or(|k| Some(k) == actual.key.as_ref())
            && self.timestamp.is_none_or(|t| t == actual.timestamp)
            && subset(&self.value, &actual.value)
    }
}

/// Whether `actual` contains `expected`: objects by field, recursively;
/// anything else by [`equal`].
pub fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| subset(ev, av))),
        _ => equal(expected, actual),
    }
}

/// Exact equality of two JSON values, except that numbers compare by value
/// (`1 == 1.0`) and object fields in any order.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// Integers exactly; anything else as `f64`.
fn numbers_equal(x: &Number, y: &Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    matches!((x.as_f64(), y.as_f64()), (Some(a), Some(b)) if a == b)
}

/// `actual` cut down to the fields `expected` names (objects, recursively,
/// in the expectation's field order); anything else whole. Shows a
/// mismatch next to its expectation without the fields nobody asked about.
pub fn project(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => Value::Object(
            e.iter()
                .filter_map(|(k, ev)| a.get(k).map(|av| (k.clone(), project(ev, av))))
                .collect(),
        ),
        _ => actual.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(topic: &str, key: Option<&str>, value: Value) -> Output {
        Output {
            topic: topic.into(),
            key: key.map(|k| k.as_bytes().to_vec()),
            value,
            timestamp: 7,
        }
    }

    fn exp(topic: Option<&str>, key: Option<&str>, value: Value) -> Expected {
        Expected {
            topic: topic.map(Into::into),
            key: key.map(|k| k.as_bytes().to_vec()),
            value,
            timestamp: None,
        }
    }

    #[test]
    fn objects_match_as_subsets_recursively() {
        let actual =
            json!({"key": "EWR", "window": {"start": 0, "end": 3600000}, "flights": 3, "avg": 2.5});
        assert!(subset(&json!({"flights": 3}), &actual));
        assert!(subset(&json!({"window": {"start": 0}}), &actual));
        assert!(subset(&json!({}), &actual));
        assert!(!subset(&json!({"flights": 4}), &actual));
        assert!(!subset(&json!({"missing": null}), &actual));
        assert!(!subset(
            &json!({"window": {"start": 0, "size": 1}}),
            &actual
        ));
        assert!(!subset(&json!({"flights": 3}), &json!("text")));
    }

    #[test]
    fn arrays_and_scalars_compare_exactly_numbers_by_value() {
        assert!(subset(
            &json!({"d": ["IAH", "MIA"]}),
            &json!({"d": ["IAH", "MIA"]})
        ));
        assert!(!subset(
            &json!({"d": ["IAH"]}),
            &json!({"d": ["IAH", "MIA"]})
        ));
        assert!(!subset(&json!([{"a": 1}]), &json!([{"a": 1, "b": 2}])));
        assert!(subset(&json!({"avg": 2}), &json!({"avg": 2.0})));
        assert!(subset(&json!(2.0), &json!(2)));
        assert!(!subset(&json!(2), &json!("2")));
        assert!(subset(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!subset(&json!(-1), &json!(u64::MAX)));
        assert!(subset(&json!(null), &json!(null)));
        assert!(equal(&json!({"a": 1, "b": 2}), &json!({"b": 2.0, "a": 1})));
    }

    #[test]
    fn key_topic_and_timestamp_must_equal_when_given() {
        let a = out("departures-hourly", Some("EWR"), json!({"flights": 3}));
        assert!(exp(None, None, json!({"flights": 3})).matches(&a));
        assert!(exp(Some("departures-hourly"), Some("EWR"), json!({})).matches(&a));
        assert!(!exp(None, Some("JFK"), json!({"flights": 3})).matches(&a));
        assert!(!exp(Some("delay-alerts"), None, json!({"flights": 3})).matches(&a));
        let unkeyed = out("departures-hourly", None, json!({"flights": 3}));
        assert!(!exp(None, Some("EWR"), json!({})).matches(&unkeyed));
        let mut timed = exp(None, None, json!({}));
        timed.timestamp = Some(7);
        assert!(timed.matches(&a));
        timed.timestamp = Some(8);
        assert!(!timed.matches(&a));
    }

    #[test]
    fn projection_keeps_the_named_fields() {
        let actual = json!({"key": "EWR", "window": {"start": 0, "end": 1}, "flights": 3});
        assert_eq!(
            project(
                &json!({"flights": 4, "window": {"end": 0}, "nope": 1}),
                &actual
            ),
            json!({"flights": 3, "window": {"end": 1}})
        );
        assert_eq!(project(&json!([1]), &actual), actual);
    }
}
