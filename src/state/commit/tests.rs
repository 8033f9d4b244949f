//! Tests of the commit step: what a commit writes, and when.

use super::*;
use crate::operator::window::aggregate::AggState;
use crate::operator::window::WindowEntryRef;
use crate::state::codec::{decode_checkpoint, decode_entry};
use serde_json::json;

fn at(offset: i64, changed: bool, up: &BTreeMap<String, Upstream>) -> Position<'_> {
    Position {
        offset,
        watermark: 5,
        upstream: up,
        changed,
    }
}

#[test]
fn seq_moves_only_with_changes_and_unmoved_partitions_write_nothing() {
    let up = BTreeMap::new();
    let mut seq = 0;
    assert_eq!(
        next_checkpoint(None, &mut seq, at(-1, true, &up)),
        None,
        "no record yet"
    );
    assert_eq!(seq, 0);
    let cp = next_checkpoint(None, &mut seq, at(10, true, &up)).unwrap();
    assert_eq!((cp.offset, cp.seq), (10, 1));
    assert_eq!(
        next_checkpoint(Some(&cp), &mut seq, at(10, false, &up)),
        None
    );
    let cp2 = next_checkpoint(Some(&cp), &mut seq, at(12, false, &up)).unwrap();
    assert_eq!(
        (cp2.offset, cp2.seq),
        (12, 1),
        "offsets moved, no state changed"
    );
}

#[test]
fn a_commit_writes_changes_then_a_marker_per_stage() {
    let aggs = [AggState::Count(2)];
    let key = json!("JFK");
    let cp = Checkpoint {
        offset: 7,
        watermark: 60_000,
        seq: 3,
        upstream: BTreeMap::new(),
    };
    let mut out: Vec<(usize, String, Option<Vec<u8>>)> = Vec::new();
    let n = Encoder::default().partition(
        "in/0",
        &[1, 3],
        &cp,
        |f| {
            f(
                1,
                ChangeRef::Put {
                    key_text: "\"JFK\"",
                    entry: WindowEntryRef {
                        key: &key,
                        start: 0,
                        end: 60_000,
                        aggs: &aggs,
                        changed: false,
                    },
                },
            );
            f(
                3,
                ChangeRef::Remove {
                    key_text: "\"JFK\"",
                    start: -60_000,
                },
            );
        },
        &mut |r| out.push((r.stage, r.key.to_owned(), r.value.map(<[u8]>::to_vec))),
    );
    assert_eq!(n, 4);
    assert_eq!(out[0].0, 1);
    assert_eq!(out[0].1, r#"["in/0",1,"JFK",0]"#);
    assert_eq!(
        decode_entry(out[0].2.as_deref().unwrap()).unwrap().aggs,
        aggs
    );
    assert_eq!(out[1], (3, r#"["in/0",3,"JFK",-60000]"#.to_owned(), None));
    for (i, stage) in [(2, 1), (3, 3)] {
        assert_eq!(out[i].0, stage);
        assert_eq!(out[i].1, r#"["marker","in/0"]"#);
        assert_eq!(decode_checkpoint(out[i].2.as_deref().unwrap()).unwrap(), cp);
    }
    let (k, v) = checkpoint_record("in/0", &cp);
    assert_eq!((k.as_str(), decode_checkpoint(&v).unwrap()), ("in/0", cp));
}
