//! `weir test` runs of stream–table joins (DESIGN.md §7) through the one
//! per-record path: table records are inputs of their table's topic,
//! ordered with the stream's records by position.

use super::*;
use crate::expr::CelEnv;
use crate::spec::parse_text;
use serde_json::json;
use std::path::Path;

/// Runs the first case of the pipeline file text `yaml`.
pub(super) fn run_case(yaml: &str) -> Run {
    let loaded = parse_text::<PipelineSpec>(Path::new("p.yaml"), yaml).unwrap();
    let plan = crate::plan::compile(&loaded, &CelEnv::new()).unwrap();
    let cases = cases(&loaded, &plan).unwrap();
    run(&plan, &cases[0])
}

fn values(r: &Run) -> Vec<(String, Value)> {
    r.outputs
        .iter()
        .map(|o| (o.topic.clone(), o.value.clone()))
        .collect()
}

const BY_FIELD: &str = "name: enrich
source:
  topics: [flights]
  event_time: {path: $.ts, unit: ms}
tables:
  planes:
    topic: planes
    key: value.tailnum
    event_time: {path: $.at, unit: ms}
stages:
  - join: {table: planes, on: value.tailnum, type: left, into: plane}
errors: {policy: dlq}
sinks:
  - topic: out
tests:
  - name: c
    input:
";

/// T1/T4: a flight read before the plane version valid at its time is
/// held until the table's watermark passes it, then joined with that
/// version, not with whatever the table held when the flight arrived;
/// records leave in the order they were read (a flight the table has
/// passed waits behind an older held one); the rest is released when the
/// table is idle at its end.
#[test]
fn a_stream_record_ahead_of_the_table_waits_for_its_version() {
    let r = run_case(&format!(
        "{BY_FIELD}      - {{value: {{f: 1, tailnum: N1, ts: 100}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 50, seats: 100}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 150, seats: 200}}}}
      - {{value: {{f: 2, tailnum: N1, ts: 160}}}}
      - {{value: {{f: 3, tailnum: N2, ts: 120}}}}
    expect: []
"
    ));
    assert_eq!(
        values(&r),
        [
            (
                "out".into(),
                json!({"f": 1, "tailnum": "N1", "ts": 100, "plane": {"tailnum": "N1", "at": 50, "seats": 100}})
            ),
            (
                "out".into(),
                json!({"f": 2, "tailnum": "N1", "ts": 160, "plane": {"tailnum": "N1", "at": 150, "seats": 200}})
            ),
            (
                "out".into(),
                json!({"f": 3, "tailnum": "N2", "ts": 120, "plane": null})
            ),
        ]
    );
    assert_eq!(r.stopped, None);
}

/// T2 and history: a version that arrives late changes nothing already
/// joined; a stream record older than the versions kept behind the
/// stream's watermark (`history: 0`) is a record error, never a wrong
/// match.
#[test]
fn a_record_older_than_the_kept_history_is_an_error() {
    let r = run_case(&format!(
        "{BY_FIELD}      - {{topic: planes, value: {{tailnum: N1, at: 10, seats: 1}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 30, seats: 3}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 40, seats: 4}}}}
      - {{value: {{f: 1, tailnum: N1, ts: 35}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 20, seats: 2}}}}
      - {{value: {{f: 2, tailnum: N1, ts: 25}}}}
    expect: []
"
    ));
    assert_eq!(
        values(&r),
        [
            (
                "out".into(),
                json!({"f": 1, "tailnum": "N1", "ts": 35, "plane": {"tailnum": "N1", "at": 30, "seats": 3}})
            ),
            (
                "enrich.dlq".into(),
                json!({"f": 2, "tailnum": "N1", "ts": 25})
            ),
        ]
    );
    assert_eq!(
        r.notes,
        ["input[5]: error in 0:join: `join planes`: table history expired; sent to enrich.dlq"]
    );
}

/// T3: a tombstone (a table record with a null value, keyed by its record
/// key) deletes the key from its version time on: an inner join filters
/// the records after it and still joins those before it. A record held
/// and released later is noted under its own input position.
#[test]
fn a_tombstone_deletes_the_key_from_its_time_on() {
    let r = run_case(
        "name: enrich
source:
  topics: [flights]
  event_time: {path: $.ts, unit: ms}
tables:
  planes: {topic: planes}
stages:
  - join: {table: planes, on: value.tailnum, into: plane}
sinks:
  - topic: out
tests:
  - name: c
    input:
      - {topic: planes, key: N1, value: {seats: 1}, timestamp: 10}
      - {value: {f: 1, tailnum: N1, ts: 15}}
      - {topic: planes, key: N1, value: null, timestamp: 20}
      - {value: {f: 2, tailnum: N1, ts: 25}}
      - {value: {f: 3, tailnum: null, ts: 12}}
    expect: []
",
    );
    assert_eq!(
        values(&r),
        [(
            "out".into(),
            json!({"f": 1, "tailnum": "N1", "ts": 15, "plane": {"seats": 1}})
        )]
    );
    assert_eq!(
        r.notes,
        [
            "input[3]: filtered by 0:join",
            "input[4]: filtered by 0:join"
        ]
    );
}

/// A held record that fails once released goes to the DLQ with the bytes
/// it was read with, as any record error does; a record ready at once
/// waits behind an older held one.
#[test]
fn a_held_record_that_fails_goes_to_the_dlq_as_it_was_read() {
    let r = run_case(&format!(
        "{}      - {{topic: planes, value: {{tailnum: N1, at: 50, seats: 100}}}}
      - {{value: {{f: 1, tailnum: N1, ts: 100}}}}
      - {{value: {{f: 2, tailnum: N1, ts: 40}}}}
      - {{topic: planes, value: {{tailnum: N1, at: 150, seats: 200}}}}
    expect: []
",
        BY_FIELD.replace(
            "into: plane}\n",
            "into: plane}\n  - transform: {set: {x: \"value.nope + 1\"}}\n"
        )
    ));
    assert_eq!(
        values(&r),
        [
            (
                "enrich.dlq".into(),
                json!({"f": 1, "tailnum": "N1", "ts": 100})
            ),
            (
                "enrich.dlq".into(),
                json!({"f": 2, "tailnum": "N1", "ts": 40})
            ),
        ]
    );
}
