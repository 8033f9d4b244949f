//! The rules of DESIGN.md §7 (T2, T3, T4, null keys, expiry), one test each.

use super::*;
use crate::expr::CelEnv;
use crate::record::{LazyObject, Origin, Record};
use serde_json::{json, Value};
use std::sync::Arc;

fn join(env: &CelEnv, kind: JoinType, time: JoinTime) -> TableJoin {
    TableJoin {
        table: "planes".into(),
        on: env.compile("value.tailnum").unwrap(),
        kind,
        time,
        into: "plane".into(),
    }
}

fn rec(value: Value, t: i64) -> Record {
    let mut r = Record::new(Value::Null, value);
    r.event_time = t;
    r
}

fn flight(tail: &str, t: i64) -> Record {
    rec(json!({"tailnum": tail}), t)
}

/// The value joined under `plane`, or the outcome's name when not joined.
fn joined(o: &JoinOutcome) -> Value {
    match o {
        JoinOutcome::Joined(r) | JoinOutcome::Unmatched(r) => r.value["plane"].clone(),
        other => json!(other.result()),
    }
}

fn k(s: &str) -> Value {
    json!(s)
}

#[test]
fn joins_the_version_valid_at_the_event_time() {
    let env = CelEnv::new();
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 10, Some(json!("a")));
    t.insert(&k("N1"), 20, Some(json!("b")));
    let j = join(&env, JoinType::Inner, JoinTime::Event);
    let root = env.root();
    assert_eq!(
        joined(&j.apply(&root, flight("N1", 9), &t)),
        json!("filtered")
    );
    assert_eq!(joined(&j.apply(&root, flight("N1", 10), &t)), json!("a"));
    assert_eq!(joined(&j.apply(&root, flight("N1", 19), &t)), json!("a"));
    assert_eq!(joined(&j.apply(&root, flight("N1", 25), &t)), json!("b"));
}

#[test]
fn a_late_version_changes_nothing_already_joined() {
    let env = CelEnv::new();
    let root = env.root();
    let j = join(&env, JoinType::Left, JoinTime::Event);
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 10, Some(json!("a")));
    t.insert(&k("N1"), 30, Some(json!("c")));
    let before = j.apply(&root, flight("N1", 25), &t);
    assert_eq!(joined(&before), json!("a"));
    t.insert(&k("N1"), 20, Some(json!("b")));
    assert_eq!(
        joined(&before),
        json!("a"),
        "an earlier result is unchanged"
    );
    let after = j.apply(&root, flight("N1", 25), &t);
    assert_eq!(
        joined(&after),
        json!("b"),
        "a record joined afterwards sees it"
    );
    assert_eq!(t.versions(), 3);
}

#[test]
fn equal_version_times_last_write_wins() {
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 10, Some(json!("a")));
    t.insert(&k("N1"), 10, Some(json!("b")));
    assert_eq!(t.lookup(&k("N1"), 10), Lookup::Match(&json!("b")));
    assert_eq!(t.versions(), 1);
    t.insert(&k("N1"), 10, None);
    assert_eq!(t.lookup(&k("N1"), 10), Lookup::Absent);
}

#[test]
fn a_tombstone_deletes_the_key_from_its_time_on() {
    let env = CelEnv::new();
    let root = env.root();
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 10, Some(json!("a")));
    t.insert(&k("N1"), 20, None);
    let left = join(&env, JoinType::Left, JoinTime::Event);
    let inner = join(&env, JoinType::Inner, JoinTime::Event);
    assert_eq!(joined(&left.apply(&root, flight("N1", 15), &t)), json!("a"));
    let o = left.apply(&root, flight("N1", 20), &t);
    assert!(matches!(o, JoinOutcome::Unmatched(_)), "{o:?}");
    assert_eq!(joined(&o), Value::Null);
    assert_eq!(
        inner.apply(&root, flight("N1", 21), &t),
        JoinOutcome::Filtered
    );
    let latest = join(&env, JoinType::Inner, JoinTime::Latest);
    assert_eq!(
        latest.apply(&root, flight("N1", 15), &t),
        JoinOutcome::Filtered
    );
}

#[test]
fn a_null_or_missing_key_never_matches() {
    let env = CelEnv::new();
    let root = env.root();
    let mut t = VersionedTable::new();
    t.insert(&Value::Null, 0, Some(json!("null's row")));
    for time in [JoinTime::Event, JoinTime::Latest] {
        let left = join(&env, JoinType::Left, time);
        let inner = join(&env, JoinType::Inner, time);
        for r in [
            rec(json!({"tailnum": null}), 5),
            rec(json!({"other": 1}), 5),
        ] {
            let o = left.apply(&root, r.clone(), &t);
            assert!(matches!(o, JoinOutcome::Unmatched(_)), "{o:?}");
            assert_eq!(joined(&o), Value::Null);
            assert_eq!(inner.apply(&root, r, &t), JoinOutcome::Filtered);
        }
    }
}

#[test]
fn time_latest_joins_the_newest_value() {
    let env = CelEnv::new();
    let root = env.root();
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 10, Some(json!("a")));
    t.insert(&k("N1"), 30, Some(json!("c")));
    t.insert(&k("N1"), 20, Some(json!("b")));
    let j = join(&env, JoinType::Inner, JoinTime::Latest);
    assert_eq!(joined(&j.apply(&root, flight("N1", 0), &t)), json!("c"));
    t.expire(1_000);
    assert_eq!(joined(&j.apply(&root, flight("N1", 0), &t)), json!("c"));
}

#[test]
fn expiry_keeps_the_version_at_the_cutoff_and_after() {
    let env = CelEnv::new();
    let root = env.root();
    let mut t = VersionedTable::new();
    for (time, v) in [(10, "a"), (20, "b"), (30, "c"), (40, "d")] {
        t.insert(&k("N1"), time, Some(json!(v)));
    }
    t.expire(25);
    assert_eq!(t.versions(), 3);
    assert_eq!(t.lookup(&k("N1"), 25), Lookup::Match(&json!("b")));
    assert_eq!(t.lookup(&k("N1"), 20), Lookup::Match(&json!("b")));
    assert_eq!(t.lookup(&k("N1"), 19), Lookup::Expired);
    let j = join(&env, JoinType::Left, JoinTime::Event);
    match j.apply(&root, flight("N1", 12), &t) {
        JoinOutcome::Error(r, e) => {
            assert_eq!(e.to_string(), "table history expired");
            assert_eq!(r, flight("N1", 12), "the record is given back unchanged");
        }
        other => panic!("{other:?}"),
    }
    // A late version below the floor answers nothing but expired lookups.
    t.insert(&k("N1"), 15, Some(json!("late")));
    assert_eq!(t.lookup(&k("N1"), 16), Lookup::Expired);
    assert_eq!(t.lookup(&k("N1"), 21), Lookup::Match(&json!("b")));
}

#[test]
fn expiry_never_gives_a_wrong_absent_for_a_removed_key() {
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 5, Some(json!("a")));
    t.insert(&k("N1"), 7, None);
    t.insert(&k("N2"), 50, Some(json!("x")));
    t.expire(10);
    assert_eq!(t.len(), 1, "N1 (a tombstone only) is removed");
    assert_eq!(t.versions(), 1);
    assert_eq!(t.lookup(&k("N1"), 6), Lookup::Expired, "not a wrong absent");
    assert_eq!(t.lookup(&k("N1"), 10), Lookup::Absent);
    assert_eq!(t.lookup(&k("never"), 9), Lookup::Expired);
    // Nothing of N2 was dropped: its lookups before its first version are
    // truly absent.
    assert_eq!(t.lookup(&k("N2"), 9), Lookup::Absent);
    // N1 again, with a late version older than the cutoff: the removed
    // tombstone at 7 could be newer, so the lookup it would answer expires.
    t.insert(&k("N1"), 6, Some(json!("late")));
    assert_eq!(t.lookup(&k("N1"), 12), Lookup::Expired);
    assert_eq!(t.latest(&k("N1")), Lookup::Expired, "for time: latest too");
    t.insert(&k("N1"), 11, Some(json!("b")));
    assert_eq!(t.lookup(&k("N1"), 12), Lookup::Match(&json!("b")));
    assert_eq!(t.latest(&k("N1")), Lookup::Match(&json!("b")));
}

#[test]
fn hold_releases_exactly_when_the_table_watermark_reaches_t_in_arrival_order() {
    let mut wm = TableWatermark::new([0, 1], 5);
    let mut hold = Hold::new();
    let arrive = |t: i64, off: i64| {
        let mut r = flight("N1", t);
        r.origin = Origin {
            topic: Arc::from("flights"),
            partition: 0,
            offset: off,
        };
        r
    };
    for (t, off) in [(10, 0), (30, 1), (20, 2), (10, 3)] {
        assert!(hold.offer(arrive(t, off)).is_none());
    }
    assert_eq!(hold.min_offsets()[&(Arc::from("flights"), 0)], 0);
    assert_eq!(hold.oldest_event_time(), Some(10));
    wm.observe(0, 100);
    assert_eq!(
        wm.watermark(),
        Some(i64::MIN),
        "partition 1 has no record yet"
    );
    wm.observe(1, 14);
    assert_eq!(wm.watermark(), Some(9));
    assert!(hold.advance(9).is_empty());
    wm.observe(1, 25);
    let out = hold.advance(wm.watermark().unwrap());
    let offsets: Vec<i64> = out.iter().map(|r| r.origin.offset).collect();
    assert_eq!(
        offsets,
        [0],
        "the oldest record, ≤ 20; the next (30) holds back the two behind it"
    );
    assert_eq!(hold.len(), 3);
    assert_eq!(hold.min_offsets()[&(Arc::from("flights"), 0)], 1);
    assert!(
        hold.offer(arrive(20, 4)).is_none(),
        "ready, but behind held records: it waits its turn"
    );
    let out = hold.advance(30);
    let offsets: Vec<i64> = out.iter().map(|r| r.origin.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4], "in arrival order");
    assert!(
        hold.offer(arrive(20, 5)).is_some(),
        "nothing held and at the watermark: at once"
    );
    assert!(hold.offer(arrive(40, 6)).is_none());
    wm.set_idle(1, true);
    assert_eq!(wm.watermark(), Some(95));
    wm.set_idle(0, true);
    assert_eq!(wm.watermark(), None, "every partition idle: the table is");
    let out = hold.set_idle(true);
    assert_eq!(out.len(), 1);
    assert!(hold.is_empty() && hold.min_offsets().is_empty());
    assert!(
        hold.offer(arrive(1_000, 5)).is_some(),
        "nothing held while idle"
    );
}

#[test]
fn a_lazy_payload_is_joined_and_a_non_object_is_a_record_error() {
    let env = CelEnv::new();
    let root = env.root();
    let mut t = VersionedTable::new();
    t.insert(&k("N1"), 0, Some(json!({"seats": 3})));
    let j = join(&env, JoinType::Left, JoinTime::Event);
    let mut lazy = Record::new(Value::Null, Value::Null);
    lazy.lazy = Some(Arc::new(
        LazyObject::parse(br#"{"tailnum": "N1", "n": 1}"#).unwrap(),
    ));
    match j.apply(&root, lazy, &t) {
        JoinOutcome::Joined(r) => {
            assert_eq!(
                r.json(),
                &json!({"tailnum": "N1", "n": 1, "plane": {"seats": 3}})
            )
        }
        other => panic!("{other:?}"),
    }
    let on_key = TableJoin {
        on: env.compile("key").unwrap(),
        ..j
    };
    let mut scalar = rec(json!(42), 0);
    scalar.key = k("N1");
    match on_key.apply(&root, scalar, &t) {
        JoinOutcome::Error(_, e) => assert!(e.to_string().contains("not a JSON object"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_table_key_is_the_record_key_or_the_key_expression() {
    let env = CelEnv::new();
    let root = env.root();
    let mut r = rec(json!({"tailnum": "N1"}), 0);
    assert_eq!(table_key(None, &root, &r), Ok(None), "a null key");
    r.key = k("K");
    assert_eq!(table_key(None, &root, &r), Ok(Some(k("K"))));
    let e = env.compile("value.tailnum").unwrap();
    assert_eq!(table_key(Some(&e), &root, &r), Ok(Some(k("N1"))));
    let missing = env.compile("value.nope").unwrap();
    assert_eq!(table_key(Some(&missing), &root, &r), Ok(None));
    let bad = env.compile("value.tailnum + 1").unwrap();
    assert!(table_key(Some(&bad), &root, &r).is_err());
    assert_eq!(table_value(&r), Some(json!({"tailnum": "N1"})));
    assert_eq!(table_value(&rec(Value::Null, 0)), None, "a tombstone");
}
