//! Tests of the state record formats: every version reads back, keys are
//! the ones compaction has always seen.

use super::*;
use crate::operator::window::aggregate::AggState;
use serde_json::json;

fn entry() -> WindowEntry {
    WindowEntry {
        key: json!({"page": "/p/1", "n": [1, "]"]}),
        start: 60_000,
        end: 120_000,
        aggs: vec![AggState::Count(3), AggState::Avg(1.5, 2)],
        changed: true,
    }
}

fn as_ref(e: &WindowEntry) -> WindowEntryRef<'_> {
    WindowEntryRef {
        key: &e.key,
        start: e.start,
        end: e.end,
        aggs: &e.aggs,
        changed: e.changed,
    }
}

#[test]
fn entry_keys_round_trip_any_key() {
    for key in [json!("JFK"), json!(7), json!(null), json!({"a": [1, "]"]})] {
        let k = entry_key("in/3", 1, &key.to_string(), -5);
        assert_eq!(
            parse_entry_key(k.as_bytes()),
            Some(EntryKey {
                source: "in/3".into(),
                stage: 1,
                key: key.clone(),
                start: -5
            })
        );
    }
    assert_eq!(
        entry_key("in/3", 1, "\"JFK\"", 60_000),
        r#"["in/3",1,"JFK",60000]"#
    );
    assert_eq!(entry_key("a\"b/0", 2, "1", 0), r#"["a\"b/0",2,1,0]"#);
    assert_eq!(parse_entry_key(marker_key("in/3").as_bytes()), None);
    assert_eq!(
        parse_marker_key(marker_key("in/3").as_bytes()),
        Some("in/3".into())
    );
    assert_eq!(
        parse_marker_key(entry_key("in/3", 1, "7", 0).as_bytes()),
        None
    );
    assert_eq!(marker_key("in/3"), r#"["marker","in/3"]"#);
    assert_eq!(
        entry_source(entry_key("in/3", 1, "7", 0).as_bytes()).as_deref(),
        Some("in/3")
    );
    assert_eq!(
        entry_source(entry_key("a\"b/0", 1, "7", 0).as_bytes()).as_deref(),
        Some("a\"b/0")
    );
    assert_eq!(entry_source(b"not a key"), None);
    assert_eq!(
        changelog_topic("weir.p", &window_store(2)),
        "weir.p.2.changelog"
    );
    assert_eq!(parse_seq(seq_text(41).as_bytes()), Some(41));
    assert_eq!(parse_seq(b"x"), None);
}

#[test]
fn entries_round_trip_in_version_1() {
    let e = entry();
    let mut buf = Vec::new();
    encode_entry(&as_ref(&e), &mut buf);
    assert_eq!(buf[0], VERSION);
    assert_eq!(decode_entry(&buf).unwrap(), e);
    // Smaller than the JSON of version 0.
    assert!(buf.len() < serde_json::to_vec(&e).unwrap().len());
}

#[test]
fn version_0_entries_and_checkpoints_still_read() {
    // Exactly what weir wrote before the version byte (serde_json of the
    // derived formats).
    let v0 = br#"{"key":{"page":"/p/1","n":[1,"]"]},"start":60000,"end":120000,"aggs":[{"Count":3},{"Avg":[1.5,2]}],"changed":true}"#;
    assert_eq!(decode_entry(v0).unwrap(), entry());
    let cp = br#"{"offset":10,"watermark":-9223372036854775808,"seq":2}"#;
    assert_eq!(
        decode_checkpoint(cp).unwrap(),
        Checkpoint {
            offset: 10,
            watermark: i64::MIN,
            seq: 2,
            upstream: BTreeMap::new()
        }
    );
    let cp = br#"{"offset":7,"watermark":5,"upstream":{"in/0":{"watermark":1,"offset":2}}}"#;
    let cp = decode_checkpoint(cp).unwrap();
    assert_eq!(cp.seq, 0, "seq defaults to 0 in the oldest checkpoints");
    assert_eq!(
        cp.upstream["in/0"],
        Upstream {
            watermark: 1,
            offset: 2
        }
    );
}

#[test]
fn checkpoints_round_trip_in_version_1() {
    let mut upstream = BTreeMap::new();
    upstream.insert(
        "in/0".to_owned(),
        Upstream {
            watermark: -3,
            offset: 9,
        },
    );
    upstream.insert(
        "other topic/12".to_owned(),
        Upstream {
            watermark: i64::MIN,
            offset: -1,
        },
    );
    for cp in [
        Checkpoint {
            offset: 0,
            watermark: i64::MIN,
            seq: 0,
            upstream: BTreeMap::new(),
        },
        Checkpoint {
            offset: i64::MAX,
            watermark: 1_700_000_000_000,
            seq: u64::MAX,
            upstream,
        },
    ] {
        let bytes = encode_checkpoint(&cp);
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode_checkpoint(&bytes).unwrap(), cp);
    }
    assert_eq!(
        encode_checkpoint(&Checkpoint {
            offset: 1,
            watermark: 2,
            seq: 3,
            upstream: BTreeMap::new()
        })
        .len(),
        29
    );
}

#[test]
fn unreadable_values_are_errors_that_say_why() {
    assert_eq!(decode_entry(&[]).unwrap_err().to_string(), "empty value");
    assert_eq!(
        decode_entry(&[7, 1, 2]).unwrap_err().to_string(),
        "unknown format version 7 (this weir reads versions 0 and 1)"
    );
    assert_eq!(
        decode_checkpoint(&[1, 0, 0]).unwrap_err().to_string(),
        "truncated value: offset"
    );
    let mut bytes = encode_checkpoint(&Checkpoint {
        offset: 1,
        watermark: 2,
        seq: 3,
        upstream: [(
            "in/0".to_owned(),
            Upstream {
                watermark: 1,
                offset: 1,
            },
        )]
        .into(),
    });
    bytes.truncate(bytes.len() - 3);
    assert_eq!(
        decode_checkpoint(&bytes).unwrap_err().to_string(),
        "truncated value: upstream offset"
    );
    assert!(decode_entry(b"{\"key\":1}")
        .unwrap_err()
        .to_string()
        .starts_with("version 0 (JSON): "));
    assert!(decode_entry(&[1, 0xc1]).is_err());
}
