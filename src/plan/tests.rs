//! Load-time errors: each names file, line, column, field and expectation.

use super::*;
use crate::spec::parse_text;
use std::path::Path;

fn compile_text(text: &str) -> Result<Plan, SpecErrors> {
    let loaded = parse_text::<PipelineSpec>(Path::new("p.yaml"), text).map_err(SpecErrors::from)?;
    compile(&loaded, &CelEnv::new())
}

const GOOD: &str = "name: x
source:
  topics: [in]
  event_time: {path: $.ts}
stages:
  - filter: value.status == 200
  - key_by: value.page
  - window:
      tumbling: 1m
      aggregate:
        views: count()
sinks:
  - topic: out
";

#[test]
fn good_pipeline_compiles() {
    let p = compile_text(GOOD).unwrap();
    assert_eq!(p.group_id, "weir.x");
    assert_eq!(p.stages.len(), 3);
    assert_eq!(p.checkpoint_topic, "weir.x.checkpoint");
}

#[test]
fn internal_topics_are_scoped_by_the_group_id() {
    let p = compile_text(GOOD).unwrap();
    assert_eq!(p.repartition_topic(), Some("weir.x.1.repartition"));
    assert_eq!(p.changelog_topics(), vec!["weir.x.2.changelog"]);
    let p = compile_text(&GOOD.replace("name: x\n", "name: x\ngroup_id: team-a.x.v2\n")).unwrap();
    assert_eq!(p.group_id, "team-a.x.v2");
    assert_eq!(p.checkpoint_topic, "team-a.x.v2.checkpoint");
    assert_eq!(p.repartition_topic(), Some("team-a.x.v2.1.repartition"));
    assert_eq!(p.changelog_topics(), vec!["team-a.x.v2.2.changelog"]);
}

#[test]
fn a_pattern_source_is_its_matching_topics_only() {
    let text = GOOD.replace("topics: [in]", "pattern: 'views\\..*'");
    let p = compile_text(&text).unwrap();
    assert_eq!(p.pattern.as_deref(), Some("^views\\..*"));
    let sources: Vec<&str> = [
        "views.eu",
        "views.us",
        "clicks",
        "__consumer_offsets",
        "weir.x.1.repartition",
        "weir.other.checkpoint",
        "out",
    ]
    .into_iter()
    .filter(|t| p.is_source_topic(t))
    .collect();
    assert_eq!(sources, ["views.eu", "views.us"]);
    let p = compile_text(
        &GOOD
            .replace("name: x\n", "name: x\ngroup_id: views.g\n")
            .replace("topics: [in]", "pattern: 'views.*'"),
    )
    .unwrap();
    assert!(p.is_source_topic("views.eu"));
    assert!(
        !p.is_source_topic("views.g.1.repartition"),
        "the group's own topics"
    );
    let e = compile_text(&GOOD.replace("topics: [in]", "pattern: '(views'")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.yaml:3:12: source.pattern: not a regular expression: unclosed group (expected e.g. \"^views\\\\..*\")"
    );
}

#[test]
fn errors_are_collected_and_located() {
    let bad = GOOD
        .replace("value.status == 200", "value.status ==")
        .replace("value.page", "vlue.page")
        .replace("count()", "median(value.x)");
    let e = compile_text(&bad).unwrap_err();
    let lines: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("p.yaml:6:13: stages[0].filter: CEL syntax error at 1:16"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "p.yaml:7:13: stages[1].key_by: unknown variable `vlue` (expected one of value, key, headers, topic, partition, offset, timestamp, event_time)"
    );
    assert_eq!(
        lines[2],
        "p.yaml:11:16: stages[2].window.aggregate.views: unknown aggregate `median` (expected one of count, sum, min, max, avg, count_distinct, first, last, collect, percentile)"
    );
}

#[test]
fn hopping_advance_must_divide_size() {
    let bad = GOOD.replace("tumbling: 1m", "hopping: {size: 10m, advance: 3m}");
    let e = compile_text(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.yaml:9:37: stages[2].window.hopping.advance: advance 180000ms does not divide size 600000ms (expected a non-zero advance that divides size)"
    );
}

#[test]
fn bad_jsonpath_is_located() {
    let bad = GOOD.replace("event_time: {path: $.ts}", "event_time:\n    path: $.ts[");
    let e = compile_text(&bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("p.yaml:5:11: source.event_time.path: invalid JSONPath `$.ts[`"),
        "{e}"
    );
}

#[test]
fn a_window_before_the_repartition_is_refused() {
    let bad = GOOD.replace(
        "  - filter: value.status == 200\n",
        "  - window:\n      tumbling: 1m\n      aggregate: {n: count()}\n",
    );
    let e = compile_text(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.yaml:6:11: stages[0]: a window before the key_by at stages[1] would send its results through the repartition topic, which weir does not do yet (expected windows only after that key_by, or a second pipeline reading this one's sink)"
    );
}

const JOIN: &str = "name: j
source:
  topics: [flights]
  event_time: {path: $.dep_ts}
tables:
  planes:
    topic: planes
    key: value.tailnum
    global: true
stages:
  - join:
      table: planes
      on: value.tailnum
      type: left
      into: plane
sinks:
  - topic: out
";

fn join_errors(text: &str) -> Vec<String> {
    compile_text(text)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_table_join_and_a_stream_join_compile_and_no_window_follows_a_stream_join() {
    let p = compile_text(JOIN).unwrap();
    assert!(p.has_table_joins());
    assert_eq!(p.tables.len(), 1);
    assert_eq!(
        (
            p.tables[0].name.as_str(),
            p.tables[0].topic.as_str(),
            p.tables[0].global
        ),
        ("planes", "planes", true)
    );
    let stream = JOIN.replace(
        "table: planes",
        "stream: {topics: [payments], key: value.order_id}\n      within: 15m",
    );
    let p = compile_text(&stream).unwrap();
    assert!(p.has_stream_joins() && !p.has_table_joins());
    assert_eq!(p.stream_join_of("payments").map(|j| j.stage), Some(0));
    assert_eq!(p.stream_joins[0].join.within, 900_000);
    assert_eq!(
        join_errors(&stream.replace(
            "sinks:",
            "  - window:\n      tumbling: 1m\n      aggregate: {n: count()}\nsinks:"
        )),
        ["p.yaml:17:11: stages[1]: a window after the stream-stream join at stages[0] cannot run yet: it would close before the join emits what it waits for (expected the window before the join, or in a second pipeline reading this one's sink)"]
    );
}

#[test]
fn join_mistakes_are_located() {
    assert_eq!(
        join_errors(&JOIN.replace("table: planes", "table: plane")),
        ["p.yaml:12:14: stages[0].join.table: unknown table `plane` (expected one of the tables declared under `tables:`: planes)"]
    );
    assert_eq!(
        join_errors(&JOIN.replace("type: left", "type: outer")),
        ["p.yaml:14:13: stages[0].join.type: `outer` joins two streams (expected inner or left for a table join)"]
    );
    assert_eq!(
        join_errors(&JOIN.replace(
            "table: planes",
            "stream: {topics: [payments], key: value.order_id}"
        )),
        ["p.yaml:11:5: stages[0].join: a stream-stream join needs `within` (expected the time bound, e.g. `within: 15m`)"]
    );
    assert_eq!(
        join_errors(&JOIN.replace("key: value.tailnum", "key: vlue.tailnum")),
        ["p.yaml:8:10: tables.planes.key: unknown variable `vlue` (expected one of value, key, headers, topic, partition, offset, timestamp, event_time)"]
    );
    assert_eq!(
        join_errors(&JOIN.replace("      table: planes\n", "")),
        ["p.yaml:11:5: stages[0].join: no table or stream to join (expected `table: <name under tables:>` or `stream: {topics: […], key: …}`)"]
    );
}

#[test]
fn a_join_after_the_repartition_is_refused() {
    let text = JOIN.replace(
        "stages:\n",
        "stages:\n  - key_by: value.origin\n  - window: {tumbling: 1h, aggregate: {n: count()}}\n",
    );
    assert_eq!(
        join_errors(&text),
        ["p.yaml:13:5: stages[2].join: a join after the key_by at stages[0] would run on the repartition topic's partitions, which weir does not do yet (expected the join before that key_by)"]
    );
}
