//! Unit tests of the window operator with exact expected records.

use super::aggregate::parse_aggregate;
use super::*;
use crate::expr::CelEnv;
use serde_json::{json, Value};

fn def(env: &CelEnv, kind: WindowKind, lateness: i64, emit: EmitMode) -> Arc<WindowDef> {
    Arc::new(WindowDef {
        kind,
        allowed_lateness: lateness,
        aggregates: vec![
            parse_aggregate(env, "n", "count()").unwrap(),
            parse_aggregate(env, "total", "sum(value.x)").unwrap(),
            parse_aggregate(env, "top", "max(value.x)").unwrap(),
            parse_aggregate(env, "mean", "avg(value.x)").unwrap(),
        ],
        late: LatePolicy::Drop,
        emit,
    })
}

fn tumbling(size: i64) -> WindowKind {
    WindowKind::Aligned(Assigner::tumbling(size))
}

fn rec(key: &str, t: i64, x: i64) -> Record {
    let mut r = Record::new(json!(key), json!({"x": x}));
    r.event_time = t;
    r
}

fn values(out: &[Record]) -> Vec<Value> {
    out.iter().map(|r| r.json().clone()).collect()
}

/// (start, end, n) of each result.
fn spans(out: &[Record]) -> Vec<(i64, i64, i64)> {
    out.iter()
        .map(|r| {
            (
                r.json()["window"]["start"].as_i64().unwrap(),
                r.json()["window"]["end"].as_i64().unwrap(),
                r.json()["n"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn tumbling_windows_close_on_watermark_with_exclusive_end() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, tumbling(10), 0, EmitMode::Final));
    let mut out = Vec::new();
    for (r, wm) in [
        (rec("a", 0, 1), i64::MIN),
        (rec("a", 9, 2), 0),
        (rec("b", 5, 7), 9),
        (rec("a", 10, 4), 9),
    ] {
        assert_eq!(op.add(&root, &r, wm, &mut out).unwrap(), AddOutcome::Added);
    }
    assert!(out.is_empty(), "emit: final emits nothing on add");
    assert_eq!(
        op.advance(0, 9, &mut out),
        0,
        "end 10 is exclusive: watermark 9 closes nothing"
    );
    assert_eq!(op.advance(9, 10, &mut out), 2);
    assert_eq!(
        values(&out),
        vec![
            json!({"key": "a", "window": {"start": 0, "end": 10}, "n": 2, "total": 3, "top": 2, "mean": 1.5}),
            json!({"key": "b", "window": {"start": 0, "end": 10}, "n": 1, "total": 7, "top": 7, "mean": 7.0}),
        ]
    );
    assert_eq!((out[0].timestamp, out[0].key.clone()), (9, json!("a")));
    assert_eq!(op.open_windows(), 1);
}

#[test]
fn out_of_order_within_lateness_is_added_after_it_is_late() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, tumbling(10), 5, EmitMode::Final));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 3, 1), i64::MIN, &mut out).unwrap();
    // watermark 12: window [0,10) stays open until 15
    assert_eq!(
        op.add(&root, &rec("a", 8, 2), 12, &mut out).unwrap(),
        AddOutcome::Added
    );
    assert_eq!(op.advance(12, 14, &mut out), 0);
    op.advance(14, 15, &mut out);
    assert_eq!(out[0].json()["n"], json!(2));
    assert_eq!(
        op.add(&root, &rec("a", 9, 2), 15, &mut out).unwrap(),
        AddOutcome::Late
    );
    assert_eq!(op.open_windows(), 0);
}

#[test]
fn hopping_record_partly_late_goes_to_open_windows_only() {
    let env = CelEnv::new();
    let root = env.root();
    let hop = WindowKind::Aligned(Assigner {
        size: 10,
        advance: 5,
    });
    let mut op = WindowOperator::new(def(&env, hop, 0, EmitMode::Final));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 7, 1), i64::MIN, &mut out).unwrap(); // [0,10) and [5,15)
    op.advance(7, 10, &mut out); // closes [0,10)
    assert_eq!(
        op.add(&root, &rec("a", 8, 5), 10, &mut out).unwrap(),
        AddOutcome::Added
    );
    op.flush(&mut out);
    assert_eq!(
        out.iter()
            .map(|r| (
                r.json()["window"]["start"].clone(),
                r.json()["total"].clone()
            ))
            .collect::<Vec<_>>(),
        vec![(json!(0), json!(1)), (json!(5), json!(6))]
    );
    assert_eq!(
        op.add(&root, &rec("a", 9, 5), 15, &mut out).unwrap(),
        AddOutcome::Late
    );
}

#[test]
fn sessions_merge_when_a_record_bridges_them() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        WindowKind::Session { gap: 10 },
        0,
        EmitMode::Final,
    ));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 0, 1), i64::MIN, &mut out).unwrap(); // [0,10)
    op.add(&root, &rec("a", 25, 2), i64::MIN, &mut out).unwrap(); // [25,35)
    op.add(&root, &rec("b", 12, 9), i64::MIN, &mut out).unwrap(); // other key
    assert_eq!(op.open_windows(), 3);
    // [15,25) touches [25,35)
    op.add(&root, &rec("a", 15, 3), i64::MIN, &mut out).unwrap();
    assert_eq!(op.open_windows(), 3, "[15,25) merged with [25,35)");
    // 10 touches [0,10) and [15,35): all of key a is one session
    op.add(&root, &rec("a", 10, 4), i64::MIN, &mut out).unwrap();
    assert_eq!(op.open_windows(), 2);
    op.flush(&mut out);
    assert_eq!(
        values(&out),
        vec![
            json!({"key": "b", "window": {"start": 12, "end": 22}, "n": 1, "total": 9, "top": 9, "mean": 9.0}),
            json!({"key": "a", "window": {"start": 0, "end": 35}, "n": 4, "total": 10, "top": 4, "mean": 2.5}),
        ]
    );
}

#[test]
fn session_record_is_late_only_when_it_bridges_no_open_session() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        WindowKind::Session { gap: 10 },
        0,
        EmitMode::Final,
    ));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 20, 1), i64::MIN, &mut out).unwrap(); // [20,30)
                                                                  // watermark 21: [5,15) would close at 15 and touches no open session
    assert_eq!(
        op.add(&root, &rec("a", 5, 1), 21, &mut out).unwrap(),
        AddOutcome::Late
    );
    // at 12 its session [12,22) overlaps the open [20,30): merged, not late
    assert_eq!(
        op.add(&root, &rec("a", 12, 1), 21, &mut out).unwrap(),
        AddOutcome::Added
    );
    op.advance(21, 30, &mut out);
    assert_eq!(spans(&out), vec![(12, 30, 2)]);
}

#[test]
fn emit_update_sends_every_change_and_nothing_at_close() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        WindowKind::Session { gap: 10 },
        0,
        EmitMode::Update,
    ));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 0, 1), i64::MIN, &mut out).unwrap();
    op.add(&root, &rec("a", 5, 1), 0, &mut out).unwrap();
    op.add(&root, &rec("a", 30, 1), 5, &mut out).unwrap();
    op.advance(5, 100, &mut out);
    assert_eq!(spans(&out), vec![(0, 10, 1), (0, 15, 2), (30, 40, 1)]);
    assert_eq!(op.open_windows(), 0);
}

#[test]
fn emit_every_gives_early_results_of_changed_windows_then_the_final() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, tumbling(100), 0, EmitMode::Every(10)));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 1, 1), i64::MIN, &mut out).unwrap();
    op.advance(i64::MIN, 5, &mut out);
    assert_eq!(
        spans(&out),
        vec![(0, 100, 1)],
        "the first watermark crosses a multiple of 10"
    );
    op.advance(5, 9, &mut out);
    assert_eq!(out.len(), 1, "no multiple of 10 in (5, 9]");
    op.advance(9, 25, &mut out);
    assert_eq!(out.len(), 1, "unchanged since its last result");
    op.add(&root, &rec("a", 30, 1), 25, &mut out).unwrap();
    op.advance(25, 30, &mut out);
    op.advance(30, 100, &mut out);
    assert_eq!(spans(&out), vec![(0, 100, 1), (0, 100, 2), (0, 100, 2)]);
}

#[test]
fn type_error_changes_no_window() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, tumbling(10), 0, EmitMode::Final));
    let mut bad = Record::new(json!("a"), json!({"x": "oops"}));
    bad.event_time = 1;
    assert!(op.add(&root, &bad, i64::MIN, &mut Vec::new()).is_err());
    assert_eq!(op.open_windows(), 0);
}

#[test]
fn changes_hold_new_states_and_removals_of_persisted_windows_only() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(
        &env,
        WindowKind::Session { gap: 10 },
        0,
        EmitMode::Final,
    ));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 0, 1), i64::MIN, &mut out).unwrap();
    op.add(&root, &rec("a", 30, 1), i64::MIN, &mut out).unwrap();
    let c = op.take_changes();
    assert_eq!(c.len(), 2);
    assert!(op.take_changes().is_empty(), "nothing changed since");
    // [20,30) bridges nothing new but merges with [30,40): start moves to 20
    op.add(&root, &rec("a", 20, 1), i64::MIN, &mut out).unwrap();
    // a window opened and closed between two snapshots leaves no trace
    op.add(&root, &rec("b", 0, 1), i64::MIN, &mut out).unwrap();
    op.advance(i64::MIN, 10, &mut out);
    let c = op.take_changes();
    let starts: Vec<(bool, i64)> = c
        .iter()
        .map(|c| match c {
            StateChange::Put(e) => (true, e.start),
            StateChange::Remove { start, .. } => (false, *start),
        })
        .collect();
    assert_eq!(starts, vec![(false, 30), (false, 0), (true, 20)]);
    // A restored operator continues exactly where the snapshot stood.
    let mut restored = WindowOperator::new(Arc::clone(&op.def));
    let StateChange::Put(e) = c[2].clone() else {
        panic!()
    };
    restored.restore(e);
    restored.add(&root, &rec("a", 40, 5), 10, &mut out).unwrap();
    let mut fin = Vec::new();
    restored.flush(&mut fin);
    assert_eq!(spans(&fin), vec![(20, 50, 3)]);
}

#[test]
fn windows_closing_together_come_out_by_key_text_then_start() {
    let env = CelEnv::new();
    let root = env.root();
    let hop = WindowKind::Aligned(Assigner {
        size: 10,
        advance: 5,
    });
    let mut op = WindowOperator::new(def(&env, hop, 0, EmitMode::Final));
    let mut out = Vec::new();
    // JSON texts order `"a#"` before `"a\""` (`#` < `\`), though the
    // strings themselves order the other way; 10 and null are texts too.
    for key in [
        json!("b"),
        json!("a\""),
        json!(10),
        json!("a#"),
        json!(null),
    ] {
        let mut r = Record::new(key, json!({"x": 1}));
        r.event_time = 7;
        op.add(&root, &r, i64::MIN, &mut out).unwrap();
    }
    op.flush(&mut out);
    let got: Vec<(String, i64)> = out
        .iter()
        .map(|r| {
            (
                r.key.to_string(),
                r.json()["window"]["start"].as_i64().unwrap(),
            )
        })
        .collect();
    let keys = [r#""a#""#, r#""a\"""#, r#""b""#, "10", "null"];
    let mut want: Vec<(String, i64)> = Vec::new();
    for start in [0, 5] {
        want.extend(keys.iter().map(|k| (k.to_string(), start)));
    }
    assert_eq!(got, want);
}

#[test]
fn a_key_leaves_the_table_when_its_last_window_is_written_away() {
    let env = CelEnv::new();
    let root = env.root();
    let mut op = WindowOperator::new(def(&env, tumbling(10), 0, EmitMode::Final));
    let mut out = Vec::new();
    op.add(&root, &rec("a", 1, 1), i64::MIN, &mut out).unwrap();
    op.add(&root, &rec("b", 1, 1), i64::MIN, &mut out).unwrap();
    op.advance(i64::MIN, 0, &mut out);
    assert_eq!(op.open_keys(), 2);
    op.take_changes();
    op.advance(0, 10, &mut out);
    assert_eq!(op.open_keys(), 2, "the removals still name the keys");
    let c = op.take_changes();
    assert_eq!(
        c,
        vec![
            StateChange::Remove {
                key: "\"a\"".into(),
                start: 0
            },
            StateChange::Remove {
                key: "\"b\"".into(),
                start: 0
            },
        ]
    );
    // A window mark_unconfirmed finds gone is removed by the next write.
    op.mark_unconfirmed(&json!("c"), 30);
    assert_eq!(
        op.take_changes(),
        vec![StateChange::Remove {
            key: "\"c\"".into(),
            start: 30
        }]
    );
    // Unused keys go after two more rounds of closing windows.
    assert_eq!((op.open_keys(), op.open_windows()), (3, 0));
    for t in [40, 50] {
        op.add(&root, &rec("z", t, 1), t, &mut out).unwrap();
        op.advance(t, t + 10, &mut out);
    }
    assert_eq!(op.open_keys(), 1, "z, idle for one round");
}

/// Results written as bytes are the bytes of the map, for every window
/// kind and emit mode; a clashing aggregate name keeps the map.
#[test]
fn results_as_bytes_match_the_map() {
    let env = CelEnv::new();
    let root = env.root();
    let kinds = [
        tumbling(10),
        WindowKind::Aligned(Assigner {
            size: 10,
            advance: 5,
        }),
        WindowKind::Session { gap: 4 },
    ];
    let emits = [EmitMode::Final, EmitMode::Update, EmitMode::Every(5)];
    let input = [
        ("a", 0, 1),
        ("b", 3, -2),
        ("a", 6, 5),
        ("\"q\"", 9, 7),
        ("a", 21, 1),
    ];
    for kind in kinds {
        for emit in emits {
            let d = def(&env, kind, 2, emit);
            let mut map = WindowOperator::new(Arc::clone(&d));
            let mut bytes = WindowOperator::new(d);
            bytes.results_as_bytes(true);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut wm = i64::MIN;
            for (k, t, x) in input {
                let r = rec(k, t, x);
                map.add(&root, &r, wm, &mut a).unwrap();
                bytes.add(&root, &r, wm, &mut b).unwrap();
                map.advance(wm, t - 1, &mut a);
                bytes.advance(wm, t - 1, &mut b);
                wm = t - 1;
            }
            map.flush(&mut a);
            bytes.flush(&mut b);
            assert!(!a.is_empty());
            assert_eq!(a.len(), b.len(), "{kind:?} {emit:?}");
            for (x, y) in a.iter().zip(&b) {
                assert!(x.lazy.is_none() && y.value.is_null());
                let want = crate::codec::encode_value(x, crate::spec::Format::Json);
                let got = crate::codec::encode_value(y, crate::spec::Format::Json);
                assert_eq!(String::from_utf8(got), String::from_utf8(want));
                assert_eq!(x, y);
            }
        }
    }
    let clash = Arc::new(WindowDef {
        aggregates: vec![parse_aggregate(&env, "key", "count()").unwrap()],
        ..(*def(&env, tumbling(10), 0, EmitMode::Update)).clone()
    });
    let mut op = WindowOperator::new(clash);
    op.results_as_bytes(true);
    let mut out = Vec::new();
    op.add(&root, &rec("a", 0, 1), i64::MIN, &mut out).unwrap();
    assert!(out[0].lazy.is_none());
    assert_eq!(
        out[0].value,
        json!({"key": 1, "window": {"start": 0, "end": 10}})
    );
}
