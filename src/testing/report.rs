//! Comparing a case's outputs with its expectations, and the failure report.
//!
//! Outputs must match the expectations one for one and in order: as many
//! records as expected, the i-th output matching the i-th expectation
//! ([`Expected::matches`]). A failure is shown as a unified diff of records,
//! one JSON object per line, aligned by the longest run of matches (Myers,
//! crate `similar`, with the subset match as equality):
//!
//! ```text
//! --- expected
//! +++ actual
//!  {"key":"EWR","value":{"flights":2}}
//! -{"key":"JFK","value":{"flights":3}}
//! +{"key":"JFK","value":{"flights":2}}
//! +{"topic":"delay-alerts","key":"LGA","value":{…every field…}}
//! ```
//!
//! A matched record is shown as its expectation (` `). A missing one is an
//! expectation without a partner (`-`). An actual record in place of an
//! expectation (`+` right after `-` lines) shows only the fields that
//! expectation names, so the difference stands out; an extra record shows
//! its topic, key and whole value. Then come the notes of the run (records
//! filtered, late or failed) and, if the pipeline stopped, why.

use super::matcher::project;
use super::{Case, Expected, Output, Run};
use serde_json::{Map, Value};
use similar::algorithms::{myers, Capture, Replace};
use similar::DiffOp;
use std::fmt::Write as _;

/// The failure report of `run` against `case`, each line indented by
/// `indent`; `None` when the case passed (the pipeline ran to the end of
/// input and every output matched its expectation, in order, with none
/// missing or extra).
pub fn compare(case: &Case, run: &Run, indent: &str) -> Option<String> {
    let ops = align(&case.expect, &run.outputs);
    let all_match = ops.iter().all(|op| matches!(op, DiffOp::Equal { .. }));
    if all_match && run.stopped.is_none() {
        return None;
    }
    let mut o = String::new();
    if let Some(why) = &run.stopped {
        let _ = writeln!(o, "{indent}{why}");
    }
    let _ = writeln!(o, "{indent}--- expected\n{indent}+++ actual");
    let (exp, act) = (&case.expect, &run.outputs);
    for op in ops {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                for e in &exp[old_index..old_index + len] {
                    let _ = writeln!(o, "{indent} {}", expected_line(e));
                }
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for e in &exp[old_index..old_index + old_len] {
                    let _ = writeln!(o, "{indent}-{}", expected_line(e));
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for a in &act[new_index..new_index + new_len] {
                    let _ = writeln!(o, "{indent}+{}", actual_line(a, None));
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for e in &exp[old_index..old_index + old_len] {
                    let _ = writeln!(o, "{indent}-{}", expected_line(e));
                }
                for (j, a) in act[new_index..new_index + new_len].iter().enumerate() {
                    let paired = (j < old_len).then(|| &exp[old_index + j]);
                    let _ = writeln!(o, "{indent}+{}", actual_line(a, paired));
                }
            }
        }
    }
    for n in &run.notes {
        let _ = writeln!(o, "{indent}{n}");
    }
    Some(o)
}

/// An output as the "new" side of the diff, equal to an expectation it
/// matches.
struct Actual<'a>(&'a Output);
/// An expectation as the "old" side of the diff.
struct Wanted<'a>(&'a Expected);

impl<'a, 'b> PartialEq<Wanted<'b>> for Actual<'a> {
    fn eq(&self, other: &Wanted<'b>) -> bool {
        other.0.matches(self.0)
    }
}

/// The diff operations turning `expect` into `outputs`.
fn align(expect: &[Expected], outputs: &[Output]) -> Vec<DiffOp> {
    let old: Vec<Wanted<'_>> = expect.iter().map(Wanted).collect();
    let new: Vec<Actual<'_>> = outputs.iter().map(Actual).collect();
    let mut hook = Replace::new(Capture::new());
    // `diff_deadline_raw`: the match is not an equivalence (no `Hash`),
    // which the raw algorithm does not need.
    let Ok(()) = myers::diff_deadline_raw(&mut hook, &old, 0..old.len(), &new, 0..new.len(), None);
    hook.into_inner().into_ops()
}

/// A key as shown: the JSON document when the bytes hold an object or an
/// array, else the text.
fn key_json(key: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(key) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => Value::String(String::from_utf8_lossy(key).into_owned()),
    }
}

/// `{"topic","key","value","timestamp"}` with the fields the expectation gives.
fn expected_line(e: &Expected) -> String {
    let mut m = Map::new();
    if let Some(t) = &e.topic {
        m.insert("topic".into(), Value::String(t.clone()));
    }
    if let Some(k) = &e.key {
        m.insert("key".into(), key_json(k));
    }
    m.insert("value".into(), e.value.clone());
    if let Some(t) = e.timestamp {
        m.insert("timestamp".into(), t.into());
    }
    Value::Object(m).to_string()
}

/// An output, cut to the shape of `paired` (see the module doc), or whole
/// (topic, key when it has one, value).
fn actual_line(a: &Output, paired: Option<&Expected>) -> String {
    let mut m = Map::new();
    if paired.is_none_or(|e| e.topic.is_some()) {
        m.insert("topic".into(), Value::String(a.topic.clone()));
    }
    if paired.is_none_or(|e| e.key.is_some()) {
        match &a.key {
            Some(k) => m.insert("key".into(), key_json(k)),
            None if paired.is_some() => m.insert("key".into(), Value::Null),
            None => None,
        };
    }
    let value = match paired {
        Some(e) => project(&e.value, &a.value),
        None => a.value.clone(),
    };
    m.insert("value".into(), value);
    if paired.is_some_and(|e| e.timestamp.is_some()) {
        m.insert("timestamp".into(), a.timestamp.into());
    }
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(topic: &str, key: &str, value: Value) -> Output {
        Output {
            topic: topic.into(),
            key: Some(key.as_bytes().to_vec()),
            value,
            timestamp: 0,
        }
    }

    fn exp(key: &str, value: Value) -> Expected {
        Expected {
            topic: None,
            key: Some(key.as_bytes().to_vec()),
            value,
            timestamp: None,
        }
    }

    fn case(expect: Vec<Expected>) -> Case {
        Case {
            name: "c".into(),
            input: Vec::new(),
            expect,
        }
    }

    fn run(outputs: Vec<Output>) -> Run {
        Run {
            outputs,
            ..Run::default()
        }
    }

    #[test]
    fn subset_matches_pass() {
        let c = case(vec![exp("EWR", json!({"flights": 2}))]);
        let r = run(vec![out(
            "hourly",
            "EWR",
            json!({"key": "EWR", "flights": 2, "avg": 1.5}),
        )]);
        assert_eq!(compare(&c, &r, ""), None);
    }

    #[test]
    fn key_mismatch_shows_the_fields_asked_for() {
        let c = case(vec![
            exp("EWR", json!({"flights": 2})),
            exp("JFK", json!({"flights": 1})),
        ]);
        let r = run(vec![
            out("hourly", "EWR", json!({"flights": 2, "avg": 1.5})),
            out("hourly", "LGA", json!({"flights": 1, "avg": 3.0})),
        ]);
        assert_eq!(
            compare(&c, &r, "  ").unwrap(),
            r#"  --- expected
  +++ actual
   {"key":"EWR","value":{"flights":2}}
  -{"key":"JFK","value":{"flights":1}}
  +{"key":"LGA","value":{"flights":1}}
"#
        );
    }

    #[test]
    fn an_extra_record_fails_and_shows_whole() {
        let c = case(vec![exp("EWR", json!({"flights": 2}))]);
        let r = Run {
            notes: vec!["input[1]: filtered by 0:filter".into()],
            ..run(vec![
                out("hourly", "EWR", json!({"flights": 2})),
                out("alerts", "EWR", json!({"flights": 2, "avg": 31.5})),
            ])
        };
        assert_eq!(
            compare(&c, &r, "").unwrap(),
            r#"--- expected
+++ actual
 {"key":"EWR","value":{"flights":2}}
+{"topic":"alerts","key":"EWR","value":{"flights":2,"avg":31.5}}
input[1]: filtered by 0:filter
"#
        );
    }

    #[test]
    fn a_missing_record_and_order_matter() {
        let c = case(vec![
            exp("EWR", json!({})),
            exp("JFK", json!({})),
            exp("LGA", json!({})),
        ]);
        let r = run(vec![
            out("hourly", "LGA", json!({})),
            out("hourly", "EWR", json!({})),
        ]);
        assert_eq!(
            compare(&c, &r, "").unwrap(),
            r#"--- expected
+++ actual
-{"key":"EWR","value":{}}
-{"key":"JFK","value":{}}
 {"key":"LGA","value":{}}
+{"topic":"hourly","key":"EWR","value":{}}
"#
        );
    }

    #[test]
    fn a_stopped_run_fails_even_when_everything_matched() {
        let c = case(vec![]);
        let r = Run {
            stopped: Some("the pipeline stopped".into()),
            ..Run::default()
        };
        assert_eq!(
            compare(&c, &r, "").unwrap(),
            "the pipeline stopped\n--- expected\n+++ actual\n"
        );
    }
}
