//! `weir test` runs of stream-stream (interval) joins (DESIGN.md §7)
//! through the one per-record path: the join's `stream:` records are
//! inputs of its topics, ordered with the source's records by position.

use super::join_tests::run_case;
use super::*;
use serde_json::json;

fn values(r: &Run) -> Vec<Value> {
    r.outputs.iter().map(|o| o.value.clone()).collect()
}

fn pipeline(kind: &str) -> String {
    format!(
        "name: pay
source:
  topics: [orders]
  event_time: {{path: $.ts, unit: ms}}
stages:
  - join:
      stream: {{topics: [payments], event_time: {{path: $.ts, unit: ms}}, key: value.order}}
      on: value.id
      within: 10ms
      type: {kind}
      into: p
sinks:
  - topic: out
tests:
  - name: c
    input:
"
    )
}

/// KAFKA-10847: the orders run far ahead of the payments, yet order 1's
/// payment, arriving after orders 2 and 3, still joins it, and no `null`
/// for order 1 comes out before or after; order 2, never paid, comes out
/// once with `null`, only when the payments' watermark too has passed 10 ms
/// after it (at the payment of 195, after that payment's pair).
#[test]
fn a_left_stream_join_gives_no_null_that_a_later_match_contradicts() {
    let r = run_case(&format!(
        "{}      - {{value: {{id: 1, ts: 0}}}}
      - {{value: {{id: 2, ts: 100}}}}
      - {{value: {{id: 3, ts: 200}}}}
      - {{topic: payments, value: {{order: 1, ts: 5}}}}
      - {{topic: payments, value: {{order: 3, ts: 195}}}}
    expect: []
",
        pipeline("left")
    ));
    assert_eq!(
        values(&r),
        [
            json!({"id": 1, "ts": 0, "p": {"order": 1, "ts": 5}}),
            json!({"id": 3, "ts": 200, "p": {"order": 3, "ts": 195}}),
            json!({"id": 2, "ts": 100, "p": null}),
        ]
    );
    assert_eq!(r.stopped, None);
}

/// `outer`: an unpaid order and an orphan payment each come out once,
/// unmatched, when the join's watermark (50, the orders') passes them; a
/// payment older than it is late (noted, not joined with the order it
/// would have matched, whose `null` is already out).
#[test]
fn an_outer_stream_join_gives_each_unmatched_side_once_and_drops_late_records() {
    let r = run_case(&format!(
        "{}      - {{value: {{id: 1, ts: 0}}}}
      - {{topic: payments, value: {{order: 9, ts: 3}}}}
      - {{value: {{id: 2, ts: 50}}}}
      - {{topic: payments, value: {{order: 2, ts: 60}}}}
      - {{topic: payments, value: {{order: 1, ts: 4}}}}
    expect: []
",
        pipeline("outer")
    ));
    assert_eq!(
        values(&r),
        [
            json!({"id": 2, "ts": 50, "p": {"order": 2, "ts": 60}}),
            json!({"id": 1, "ts": 0, "p": null}),
            json!({"p": {"order": 9, "ts": 3}}),
        ]
    );
    assert_eq!(
        r.notes,
        ["input[4]: late for 0:join (older than the join's watermark); dropped"]
    );
}
