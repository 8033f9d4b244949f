//! Harness tests: case checking and encoding, and runs through every path
//! (filter, windows with and without a repartition, fan-in, late records,
//! each error policy, raw pass-through).

use super::*;
use crate::expr::CelEnv;
use crate::spec::parse_text;
use serde_json::json;
use std::path::Path;

fn load(yaml: &str) -> (Loaded<PipelineSpec>, Plan) {
    let loaded = parse_text::<PipelineSpec>(Path::new("p.yaml"), yaml).unwrap();
    let plan = crate::plan::compile(&loaded, &CelEnv::new()).unwrap();
    (loaded, plan)
}

fn run_all(yaml: &str) -> Vec<(Case, Run)> {
    let (loaded, plan) = load(yaml);
    cases(&loaded, &plan)
        .unwrap()
        .into_iter()
        .map(|c| {
            let r = run(&plan, &c);
            (c, r)
        })
        .collect()
}

/// `(topic, key text, value)` of every output.
fn outputs(r: &Run) -> Vec<(String, Option<String>, Value)> {
    r.outputs
        .iter()
        .map(|o| {
            (
                o.topic.clone(),
                o.key
                    .as_ref()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                o.value.clone(),
            )
        })
        .collect()
}

#[test]
fn inputs_are_encoded_per_format_with_sticky_timestamps() {
    let (loaded, plan) = load(
        "name: p
source: {topics: [a, b], key_format: json}
sinks: [{topic: out}]
tests:
  - name: c
    input:
      - {key: {id: 1}, value: {x: 1}}
      - {topic: b, key: k, value: null, timestamp: 500}
      - {value: [1, 2]}
    expect:
      - {key: 7, value: {x: 1.0}, timestamp: 3}
",
    );
    let c = &cases(&loaded, &plan).unwrap()[0];
    assert_eq!(
        c.input,
        vec![
            InputRecord {
                topic: "a".into(),
                key: Some(br#"{"id":1}"#.to_vec()),
                payload: Some(br#"{"x":1}"#.to_vec()),
                timestamp: 0,
            },
            InputRecord {
                topic: "b".into(),
                key: Some(br#""k""#.to_vec()),
                payload: None,
                timestamp: 500,
            },
            InputRecord {
                topic: "a".into(),
                key: None,
                payload: Some(b"[1,2]".to_vec()),
                timestamp: 500,
            },
        ]
    );
    assert_eq!(
        c.expect,
        vec![Expected {
            topic: None,
            key: Some(b"7".to_vec()),
            value: json!({"x": 1.0}),
            timestamp: Some(3),
        }]
    );
}

#[test]
fn case_mistakes_are_located() {
    let (loaded, plan) = load(
        "name: p
source: {pattern: 'in\\..*', format: bytes}
sinks: [{topic: out}]
tests:
  - name: c
    input:
      - {value: [1]}
    expect: []
  - name: c
    input:
      - {topic: in.x, key: [1], value: 5}
      - {topic: out, value: x}
    expect: []
",
    );
    let errs: Vec<String> = cases(&loaded, &plan)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec![
            "p.yaml:7:9: tests[0].input[0].topic: missing: the source has a `pattern` (expected the topic this record is read from)",
            "p.yaml:7:10: tests[0].input[0].value: `format: bytes` reads strings, this is a JSON document (expected a string, or `format: json`)",
            "p.yaml:9:11: tests[1].name: `c` is also the name of tests[0] (expected unique case names)",
            "p.yaml:11:23: tests[1].input[0].key: `key_format: text` reads strings, this is a JSON document (expected a string, or `key_format: json`)",
            "p.yaml:12:17: tests[1].input[1].topic: `out` does not match the source pattern (expected a topic matching ^in\\..*)",
        ]
    );
}

const WINDOWED: &str = "name: w
source:
  topics: [in]
  event_time: {path: $.ts, unit: ms}
stages:
  - filter: value.ok
  - key_by: value.user
  - window:
      tumbling: 10ms
      late: dlq
      aggregate: {n: count(), total: sum(value.x)}
sinks:
  - topic: totals
  - topic: big
    when: value.total > 10
    key: \"'big-' + key\"
errors: {policy: dlq}
";

#[test]
fn windows_close_on_the_watermark_and_at_the_end_through_the_repartition() {
    let yaml = format!(
        "{WINDOWED}tests:
  - name: c
    input:
      - value: {{ok: true, user: a, ts: 1, x: 5}}
      - value: {{ok: false, user: a, ts: 2, x: 100}}
      - value: {{ok: true, user: b, ts: 3, x: 20}}
      - value: {{ok: true, user: a, ts: 12, x: 1}}
      - value: {{ok: true, user: a, ts: 4, x: 1}}
      - value: {{ok: true, user: a, ts: 13, x: true}}
    expect: []
"
    );
    let (_, r) = run_all(&yaml).remove(0);
    assert!(r.stopped.is_none());
    assert_eq!(
        outputs(&r),
        vec![
            (
                "totals".into(),
                Some("a".into()),
                json!({"key": "a", "window": {"start": 0, "end": 10}, "n": 1, "total": 5})
            ),
            (
                "totals".into(),
                Some("b".into()),
                json!({"key": "b", "window": {"start": 0, "end": 10}, "n": 1, "total": 20})
            ),
            (
                "big".into(),
                Some("big-b".into()),
                json!({"key": "b", "window": {"start": 0, "end": 10}, "n": 1, "total": 20})
            ),
            // The late record, as it crossed the repartition.
            (
                "w.dlq".into(),
                Some("\"a\"".into()),
                json!({"ok": true, "user": "a", "ts": 4, "x": 1})
            ),
            (
                "w.dlq".into(),
                Some("\"a\"".into()),
                json!({"ok": true, "user": "a", "ts": 13, "x": true})
            ),
            (
                "totals".into(),
                Some("a".into()),
                json!({"key": "a", "window": {"start": 10, "end": 20}, "n": 1, "total": 1})
            ),
        ]
    );
    assert_eq!(
        r.notes,
        vec![
            "input[1]: filtered by 0:filter",
            "input[4]: late for 2:window (its windows had closed); sent to w.dlq",
            "input[5]: error in 2:window: `value.x`: gave Bool(true) (expected a number); sent to w.dlq",
        ]
    );
}

#[test]
fn fan_in_topics_are_partitions_with_their_own_watermarks() {
    let yaml = "name: f
source:
  topics: [a, b]
stages:
  - window:
      tumbling: 10ms
      aggregate: {n: count()}
sinks: [{topic: out}]
tests:
  - name: c
    input:
      - {key: k, value: 1, timestamp: 1}
      - {topic: b, key: k, value: 1, timestamp: 2}
      - {key: k, value: 1, timestamp: 15}
      - {topic: b, key: k, value: 1, timestamp: 3}
    expect: []
";
    let (_, r) = run_all(yaml).remove(0);
    // `a` closes its [0, 10) at ts 15; `b`'s stays open (its watermark is
    // 3) and takes the record at 3, flushed at the end after `a`'s [10, 20).
    let got: Vec<Value> = r.outputs.iter().map(|o| o.value.clone()).collect();
    assert_eq!(
        got,
        vec![
            json!({"key": "k", "window": {"start": 0, "end": 10}, "n": 1}),
            json!({"key": "k", "window": {"start": 10, "end": 20}, "n": 1}),
            json!({"key": "k", "window": {"start": 0, "end": 10}, "n": 2}),
        ]
    );
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn policy_fail_stops_and_skip_notes() {
    let base = "name: e
source: {topics: [in]}
stages:
  - transform: {set: {y: value.x + 1}}
sinks: [{topic: out}]
";
    let case = "tests:
  - name: c
    input:
      - value: {x: 1}
      - value: {x: a}
      - value: {x: 2}
    expect: []
";
    let (_, r) = run_all(&format!("{base}errors: {{policy: fail}}\n{case}")).remove(0);
    assert_eq!(outputs(&r).len(), 1);
    assert!(r.notes.is_empty());
    assert!(
        r.stopped.as_deref().is_some_and(|s| s.starts_with(
            "the pipeline stopped (errors.policy: fail): record in/0@1 failed in stage 0:transform: "
        )),
        "{:?}",
        r.stopped
    );
    let (_, r) = run_all(&format!("{base}errors: {{policy: skip}}\n{case}")).remove(0);
    assert_eq!(
        outputs(&r).iter().map(|o| o.2.clone()).collect::<Vec<_>>(),
        vec![json!({"x": 1, "y": 2}), json!({"x": 2, "y": 3})]
    );
    assert_eq!(r.notes.len(), 1);
    assert!(
        r.notes[0].starts_with("input[1]: error in 0:transform: "),
        "{:?}",
        r.notes
    );
    assert!(r.notes[0].ends_with("; skipped (errors.policy: skip)"));
}

#[test]
fn undecodable_input_goes_to_the_dlq_as_it_came() {
    let yaml = "name: d
source: {topics: [in], key_format: json}
stages:
  - filter: 'true'
sinks: [{topic: out}]
errors: {policy: dlq}
tests:
  - name: c
    input:
      - {key: not json, value: {x: 1}}
    expect: []
";
    let (loaded, plan) = load(yaml);
    let mut c = cases(&loaded, &plan).unwrap().remove(0);
    c.input[0].key = Some(b"not json".to_vec());
    let r = run(&plan, &c);
    assert_eq!(
        outputs(&r),
        vec![("d.dlq".into(), Some("not json".into()), json!({"x": 1}))]
    );
    assert!(r.notes[0].starts_with("input[0]: error in source: key is not valid JSON"));
}

#[test]
fn raw_passthrough_and_text_payloads() {
    let yaml = "name: t
source: {topics: [in], format: text}
sinks: [{topic: a}, {topic: b}]
tests:
  - name: c
    input:
      - {key: 42, value: 1545}
    expect:
      - {topic: a, key: '42', value: '1545'}
      - {topic: b, value: '1545'}
";
    let (c, r) = run_all(yaml).remove(0);
    assert_eq!(
        outputs(&r),
        vec![
            ("a".into(), Some("42".into()), json!("1545")),
            ("b".into(), Some("42".into()), json!("1545")),
        ]
    );
    assert_eq!(compare(&c, &r, ""), None);
}
