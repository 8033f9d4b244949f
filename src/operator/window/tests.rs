//! Unit tests of the window operator with exact expected records.

use super::aggregate::parse_aggregate;
use super::*;
use crate::expr::CelEnv;
use serde_json::json;

fn def(env: &CelEnv, assigner: Assigner, lateness: i64) -> Arc<WindowDef> {
    Arc::new(WindowDef {
        assigner,
        allowed_lateness: lateness,
        aggregates: vec![
            parse_aggregate(env, "n", "count()").unwrap(),
            parse_aggregate(env, "total", "sum(value.x)").unwrap(),
            parse_aggregate(env, "top", "max(value.x)").unwrap(),
            parse_aggregate(env, "mean", "avg(value.x)").unwrap(),
        ],
        late: LatePolicy::Drop,
    })
}

fn rec(key: &str, t: i64, x: i64, offset: i64) -> Record {
    let mut r = Record::new(json!(key), json!({"x": x}));
    r.event_time = t;
    r.origin.offset = offset;
    r
}

fn values(out: &[Record]) -> Vec<Value> {
    out.iter().map(|r| r.value.clone()).collect()
}

#[test]
fn tumbling_windows_close_on_watermark_with_exclusive_end() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, Assigner::tumbling(10), 0));
    assert_eq!(
        op.add(&root, &rec("a", 0, 1, 0), i64::MIN).unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        op.add(&root, &rec("a", 9, 2, 1), 0).unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        op.add(&root, &rec("b", 5, 7, 2), 9).unwrap(),
        AddOutcome::Added
    );
    assert_eq!(
        op.add(&root, &rec("a", 10, 4, 3), 9).unwrap(),
        AddOutcome::Added
    );
    let mut out = Vec::new();
    assert_eq!(
        op.close(9, &mut out),
        None,
        "end 10 is exclusive: watermark 9 closes nothing"
    );
    let first = op.close(10, &mut out).unwrap();
    assert_eq!(
        first,
        FirstSeen {
            offset: 0,
            watermark: i64::MIN
        }
    );
    assert_eq!(
        values(&out),
        vec![
            json!({"key": "a", "window": {"start": 0, "end": 10}, "n": 2, "total": 3, "top": 2, "mean": 1.5}),
            json!({"key": "b", "window": {"start": 0, "end": 10}, "n": 1, "total": 7, "top": 7, "mean": 7.0}),
        ]
    );
    assert_eq!((out[0].timestamp, out[0].key.clone()), (9, json!("a")));
    assert_eq!(
        op.oldest_open(),
        Some(FirstSeen {
            offset: 3,
            watermark: 9
        })
    );
}

#[test]
fn out_of_order_within_lateness_is_added_after_it_is_late() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, Assigner::tumbling(10), 5));
    op.add(&root, &rec("a", 3, 1, 0), i64::MIN).unwrap();
    // watermark 12: window [0,10) stays open until 15
    assert_eq!(
        op.add(&root, &rec("a", 8, 2, 1), 12).unwrap(),
        AddOutcome::Added
    );
    let mut out = Vec::new();
    assert_eq!(op.close(14, &mut out), None);
    op.close(15, &mut out);
    assert_eq!(out[0].value["n"], json!(2));
    assert_eq!(
        op.add(&root, &rec("a", 9, 2, 2), 15).unwrap(),
        AddOutcome::Late
    );
    assert_eq!(op.open_windows(), 0);
}

#[test]
fn hopping_record_partly_late_goes_to_open_windows_only() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        Assigner {
            size: 10,
            advance: 5,
        },
        0,
    ));
    op.add(&root, &rec("a", 7, 1, 0), i64::MIN).unwrap(); // windows [0,10) and [5,15)
    let mut out = Vec::new();
    op.close(10, &mut out); // closes [0,10)
    assert_eq!(
        op.add(&root, &rec("a", 8, 5, 1), 10).unwrap(),
        AddOutcome::Added
    );
    op.flush(&mut out);
    assert_eq!(
        out.iter()
            .map(|r| (r.value["window"]["start"].clone(), r.value["total"].clone()))
            .collect::<Vec<_>>(),
        vec![(json!(0), json!(1)), (json!(5), json!(6))]
    );
    assert_eq!(
        op.add(&root, &rec("a", 9, 5, 2), 15).unwrap(),
        AddOutcome::Late
    );
}

#[test]
fn replay_skips_windows_already_emitted() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        Assigner {
            size: 10,
            advance: 5,
        },
        0,
    ));
    op.set_emitted_through(10); // [0,10) was emitted and acknowledged
    op.add(&root, &rec("a", 8, 5, 7), 3).unwrap();
    let mut out = Vec::new();
    op.flush(&mut out);
    assert_eq!(
        values(&out),
        vec![
            json!({"key": "a", "window": {"start": 5, "end": 15}, "n": 1, "total": 5, "top": 5, "mean": 5.0})
        ]
    );
}

#[test]
fn type_error_changes_no_window() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, Assigner::tumbling(10), 0));
    let mut bad = Record::new(json!("a"), json!({"x": "oops"}));
    bad.event_time = 1;
    assert!(op.add(&root, &bad, i64::MIN).is_err());
    assert_eq!(op.open_windows(), 0);
}
