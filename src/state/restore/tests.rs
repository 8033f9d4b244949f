//! Edge cases of restore: what is state, what is not, where a partition
//! resumes.

use super::*;
use crate::operator::window::aggregate::AggState;
use crate::operator::window::WindowEntryRef;
use crate::state::codec::{encode_checkpoint, encode_entry, entry_key, marker_key};
use serde_json::json;

const SRC: &str = "in/0";

fn cp(offset: i64, seq: u64) -> Checkpoint {
    Checkpoint {
        offset,
        watermark: offset * 1000,
        seq,
        upstream: BTreeMap::new(),
    }
}

fn put(key: &str, start: i64, count: i64, seq: u64) -> LogRecord {
    let k = json!(key);
    let aggs = [AggState::Count(count)];
    let mut v = Vec::new();
    encode_entry(
        &WindowEntryRef {
            key: &k,
            start,
            end: start + 10,
            aggs: &aggs,
            changed: false,
        },
        &mut v,
    );
    LogRecord {
        topic: "g.1.changelog".into(),
        partition: 0,
        key: entry_key(SRC, 1, &k.to_string(), start).into_bytes(),
        payload: Some(v),
        seq,
    }
}

fn tombstone(key: &str, start: i64, seq: u64) -> LogRecord {
    LogRecord {
        payload: None,
        ..put(key, start, 0, seq)
    }
}

fn marker(c: &Checkpoint) -> LogRecord {
    LogRecord {
        topic: "g.1.changelog".into(),
        partition: 0,
        key: marker_key(SRC).into_bytes(),
        payload: Some(encode_checkpoint(c)),
        seq: c.seq,
    }
}

/// A pipeline whose stage 1 is a window.
fn window_plan() -> crate::plan::Plan {
    let text = "name: r
source:
  topics: [in]
  event_time: {path: $.ts}
stages:
  - key_by: value.k
  - window:
      tumbling: 10ms
      aggregate:
        n: count()
sinks: [{topic: out}]
";
    let loaded =
        crate::spec::parse_text::<crate::spec::PipelineSpec>(std::path::Path::new("r.yaml"), text)
            .unwrap();
    crate::plan::compile(&loaded, &crate::expr::CelEnv::new()).unwrap()
}

fn one(cp: Option<Checkpoint>) -> BTreeMap<String, Option<Checkpoint>> {
    [(SRC.to_owned(), cp)].into()
}

fn counts(r: &Restored) -> Vec<(String, i64, i64)> {
    r.windows
        .iter()
        .map(|(_, e)| {
            let AggState::Count(n) = e.aggs[0] else {
                panic!()
            };
            (e.key.as_str().unwrap().to_owned(), e.start, n)
        })
        .collect()
}

#[test]
fn newest_confirmed_entry_wins_and_tombstones_remove() {
    let log = vec![
        put("a", 0, 1, 1),
        put("b", 0, 1, 1),
        marker(&cp(5, 1)),
        put("a", 0, 2, 2),
        tombstone("b", 0, 2),
        put("c", 10, 4, 2),
        marker(&cp(9, 2)),
    ];
    let r = &restore(one(Some(cp(9, 2))), log, None)[SRC];
    assert_eq!(counts(r), vec![("a".into(), 0, 2), ("c".into(), 10, 4)]);
    assert!(r.unconfirmed.is_empty());
    assert_eq!(r.checkpoint, Some(cp(9, 2)));
}

#[test]
fn unconfirmed_writes_after_the_last_checkpoint_are_left_out_and_marked() {
    // Write 3 reached the changelog, its checkpoint never did (a crash).
    let log = vec![
        put("a", 0, 1, 1),
        marker(&cp(5, 1)),
        put("a", 0, 7, 3 - 1 + 1),
        tombstone("a", 0, 3),
        put("z", 20, 1, 3),
        marker(&cp(8, 3)),
    ];
    let r = &restore(one(Some(cp(5, 1))), log, None)[SRC];
    assert_eq!(counts(r), vec![("a".into(), 0, 1)]);
    assert_eq!(r.unconfirmed, vec![(1, json!("a"), 0), (1, json!("z"), 20)]);
}

#[test]
fn seq_aliasing_is_prevented_by_marking_every_unconfirmed_window() {
    // The crashed owner's write 2 is unconfirmed; the next owner's first
    // write is numbered 2 too. Every window of the stale write 2 must be
    // rewritten by the new owner's write 2, or its checkpoint would
    // confirm the stale entry.
    let log = vec![marker(&cp(3, 1)), put("stale", 0, 99, 2)];
    let mut r = restore(one(Some(cp(3, 1))), log, None).remove(SRC).unwrap();
    assert!(r.windows.is_empty());
    assert_eq!(r.unconfirmed, vec![(1, json!("stale"), 0)]);
    let plan = window_plan();
    let mut chain = crate::operator::Chain::new(
        &plan.env,
        std::sync::Arc::clone(&plan.stages),
        std::sync::Arc::clone(&plan.sinks),
        plan.max_out_of_orderness,
    );
    assert_eq!(apply(&mut chain, &mut r, plan.max_out_of_orderness), 0);
    let mut rewritten = Vec::new();
    chain.drain_changes(|stage, c| rewritten.push(format!("{stage} {c:?}")));
    assert_eq!(rewritten.len(), 1, "{rewritten:?}");
    assert!(rewritten[0].contains("Remove"), "{rewritten:?}");
}

#[test]
fn no_checkpoint_means_nothing_is_confirmed() {
    let log = vec![put("a", 0, 1, 1)];
    let r = &restore(one(None), log, None)[SRC];
    assert!(r.windows.is_empty());
    assert_eq!(r.checkpoint, None);
    assert_eq!(r.unconfirmed, vec![(1, json!("a"), 0)]);
}

#[test]
fn a_marker_at_the_very_end_is_where_exactly_once_resumes() {
    let log = vec![
        put("a", 0, 1, 1),
        marker(&cp(4, 1)),
        put("a", 0, 2, 2),
        marker(&cp(6, 2)),
    ];
    let committed: HashMap<String, i64> = [(SRC.to_owned(), 6)].into();
    // The checkpoint topic is not what exactly-once reads.
    let r = &restore(one(Some(cp(1, 0))), log.clone(), Some(&committed))[SRC];
    assert_eq!(r.checkpoint, Some(cp(6, 2)));
    assert_eq!(counts(r), vec![("a".into(), 0, 2)]);
    // A broker that shows an aborted transaction's marker: the committed
    // offset picks the one before it.
    let committed: HashMap<String, i64> = [(SRC.to_owned(), 4)].into();
    let r = &restore(one(None), log.clone(), Some(&committed))[SRC];
    assert_eq!(r.checkpoint, Some(cp(4, 1)));
    assert_eq!(counts(r), vec![("a".into(), 0, 1)]);
    assert_eq!(r.unconfirmed, vec![(1, json!("a"), 0)]);
    // No committed offset (first transaction aborted): no marker at or
    // before it, so the newest visible marker.
    let r = &restore(one(None), log, Some(&HashMap::new()))[SRC];
    assert_eq!(r.checkpoint, Some(cp(6, 2)));
}

#[test]
fn other_sources_and_unreadable_entries_are_not_state() {
    let mut other = put("x", 0, 1, 1);
    other.key = entry_key("in2/0", 1, "\"x\"", 0).into_bytes();
    let mut bad = put("b", 0, 1, 1);
    bad.payload = Some(vec![9, 9]);
    let log = vec![other, bad, put("a", 0, 1, 1), marker(&cp(2, 1))];
    let r = &restore(one(Some(cp(2, 1))), log, None)[SRC];
    assert_eq!(counts(r), vec![("a".into(), 0, 1)]);
    assert_eq!(
        r.unreadable,
        vec![(
            1,
            "window \"b\": unknown format version 9 (this weir reads versions 0 and 1)".to_owned()
        )]
    );
}

#[test]
fn version_0_records_restore() {
    let mut a = put("a", 0, 1, 1);
    a.payload =
        Some(br#"{"key":"a","start":0,"end":10,"aggs":[{"Count":5}],"changed":false}"#.to_vec());
    let mut m = marker(&cp(2, 1));
    m.payload = Some(br#"{"offset":2,"watermark":2000,"seq":1}"#.to_vec());
    let committed: HashMap<String, i64> = [(SRC.to_owned(), 2)].into();
    let r = &restore(one(None), vec![a, m], Some(&committed))[SRC];
    assert_eq!(r.checkpoint, Some(cp(2, 1)));
    assert_eq!(counts(r), vec![("a".into(), 0, 5)]);
}
