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

#[test]
fn picked_markers_that_fall_back_make_the_records_read_again() {
    // Exactly-once without a committed offset: every marker is picked and
    // the last one is where the partition resumes, here below a marker
    // seen earlier. The second `a` collapses on the earlier, higher
    // floor; only a second pass with the checkpoint known is exact.
    let log = vec![
        put("a", 0, 1, 1),
        marker(&cp(2, 1)),
        put("a", 0, 5, 2),
        marker(&cp(4, 2)),
        put("a", 0, 9, 3),
        marker(&cp(6, 1)),
    ];
    let none = HashMap::new();
    let mut first = Restorer::new(one(None), Some(&none));
    for r in &log {
        first.push(r.view());
    }
    let Outcome::ReadAgain(mut second) = first.finish() else {
        panic!("a fall-back must be read again");
    };
    for r in &log {
        second.push(r.view());
    }
    let Outcome::Restored(out) = second.finish() else {
        panic!("a restorer that knows its checkpoints reads once");
    };
    let r = &out[SRC];
    assert_eq!(r.checkpoint, Some(cp(6, 1)));
    assert_eq!(counts(r), vec![("a".into(), 0, 1)]);
    assert_eq!(r.unconfirmed, vec![(1, json!("a"), 0)]);
    assert_eq!(&restore(one(None), log, Some(&none))[SRC], r);
}

#[test]
fn the_restorer_keeps_one_slot_per_key_and_takes_borrowed_records() {
    let log = vec![
        put("a", 0, 1, 1),
        put("b", 0, 1, 1),
        put("a", 0, 2, 2),
        put("a", 0, 3, 3),
        tombstone("b", 0, 3),
        marker(&cp(9, 3)),
    ];
    let mut r = Restorer::new(one(Some(cp(9, 2))), None);
    for rec in &log {
        r.push(rec.view());
    }
    assert_eq!(r.keys(), 2);
    let Outcome::Restored(out) = r.finish() else {
        panic!("at-least-once reads once");
    };
    // Write 3 is not confirmed by the checkpoint (seq 2): `a` as of write
    // 2, `b` as of write 1, both to be rewritten.
    let r = &out[SRC];
    assert_eq!(counts(r), vec![("a".into(), 0, 2), ("b".into(), 0, 1)]);
    assert_eq!(r.unconfirmed, vec![(1, json!("a"), 0), (1, json!("b"), 0)]);
}

/// The restore as it was before it streamed (every record collected, then
/// one pass for markers and one for entries): the oracle of
/// [`streaming_restore_equals_the_collected_one_on_random_logs`].
fn collected_restore(
    assigned: BTreeMap<String, Option<Checkpoint>>,
    records: &[LogRecord],
    committed: Option<&HashMap<String, i64>>,
) -> BTreeMap<String, Restored> {
    use crate::state::codec;
    let mut out: BTreeMap<String, Restored> = assigned
        .into_iter()
        .map(|(s, checkpoint)| {
            let checkpoint = checkpoint.filter(|_| committed.is_none());
            (
                s,
                Restored {
                    checkpoint,
                    ..Default::default()
                },
            )
        })
        .collect();
    if let Some(committed) = committed {
        for r in records {
            let Some(source) = codec::parse_marker_key(&r.key) else {
                continue;
            };
            let Some(Ok(cp)) = r.payload.as_deref().map(codec::decode_checkpoint) else {
                continue;
            };
            let Some(slot) = out.get_mut(&source) else {
                continue;
            };
            if committed.get(&source).is_none_or(|c| cp.offset <= *c) {
                slot.checkpoint = Some(cp);
            }
        }
    }
    let mut confirmed: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut unconfirmed = std::collections::BTreeSet::new();
    for (i, r) in records.iter().enumerate() {
        if r.key.starts_with(b"[\"marker\",") {
            continue;
        }
        let Some(source) = codec::entry_source(&r.key) else {
            continue;
        };
        let Some(slot) = out.get(&*source) else {
            continue;
        };
        if r.seq > slot.checkpoint.as_ref().map_or(0, |c| c.seq) {
            unconfirmed.insert(&r.key[..]);
        } else {
            confirmed.insert(&r.key, i);
        }
    }
    for (key, i) in confirmed {
        let (Some(k), Some(v)) = (codec::parse_entry_key(key), records[i].payload.as_deref())
        else {
            continue;
        };
        let r = out.get_mut(&k.source).unwrap();
        match codec::decode_entry(v) {
            Ok(e) => r.windows.push((k.stage, e)),
            Err(e) => r
                .unreadable
                .push((k.stage, format!("window {}: {e}", k.key))),
        }
    }
    for key in unconfirmed {
        if let Some(k) = codec::parse_entry_key(key) {
            let r = out.get_mut(&k.source).unwrap();
            r.unconfirmed.push((k.stage, k.key, k.start));
        }
    }
    out
}

#[test]
fn streaming_restore_equals_the_collected_one_on_random_logs() {
    let mut state = 0x5eed_u64;
    let mut below = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for case in 0..3000 {
        let mut log = Vec::new();
        let mut seq = 0;
        for _ in 0..below(40) {
            match below(10) {
                0 | 1 => log.push(marker(&cp(below(20) as i64, below(seq + 2)))),
                2 => seq += 1,
                3 => seq = seq.saturating_sub(below(3)),
                4 => log.push(tombstone(["a", "b", "c"][below(3) as usize], 0, seq)),
                _ => log.push(put(
                    ["a", "b", "c", "d"][below(4) as usize],
                    10 * below(2) as i64,
                    below(100) as i64,
                    seq,
                )),
            }
        }
        let checkpoint = (below(3) > 0).then(|| cp(below(20) as i64, below(seq + 2)));
        let committed: HashMap<String, i64> = match below(3) {
            0 => HashMap::new(),
            _ => [(SRC.to_owned(), below(20) as i64)].into(),
        };
        for committed in [None, Some(&committed)] {
            let want = collected_restore(one(checkpoint.clone()), &log, committed);
            let got = restore(one(checkpoint.clone()), log.clone(), committed);
            assert_eq!(
                got, want,
                "case {case}, committed {committed:?}, log {log:?}"
            );
        }
    }
}
