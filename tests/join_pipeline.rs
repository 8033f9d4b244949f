//! Differential test of stream–table joins on the one per-record path
//! (DESIGN.md §7 T1–T4, null keys): seeded random cases — a table topic
//! keyed by record key (versions at their Kafka timestamp, tombstones,
//! disorder beyond the table's watermark bound, keys the stream never
//! asks for) and a stream with bounded disorder, null keys and records
//! ahead of the table, interleaved as two topics are consumed — run as
//! `weir test` runs a case (`weir::testing::run`: the pipeline compiled
//! from YAML, `PartitionProcessor` per topic), for every join type and
//! time, and compared record for record, in order, with a batch
//! computation written here: T4's release rule replayed over the input
//! order (records leave the hold in offset order) and an as-of scan over
//! the versions that had arrived. `history`
//! is long enough that nothing expires (expiry is covered by
//! `tests/join_differential.rs`). Seeded; the seed is in the failure
//! message and `WEIR_JOIN_SEED` overrides the base seed.

mod seeded;
use seeded::Rng;
use serde_json::{json, Value};
use std::path::Path;
use weir::expr::CelEnv;
use weir::spec::{parse_text, PipelineSpec};
use weir::testing::{run, Case, InputRecord};

const CASES: u64 = 200;

/// One input: a table version or a stream record.
#[derive(Debug, Clone)]
enum In {
    /// Key, version time (ms), value (`None`: a tombstone).
    Table(String, i64, Option<i64>),
    /// Id, key (`None`: null), event time (ms).
    Stream(u64, Option<String>, i64),
}

fn pipeline(kind: &str, time: &str, bound: i64) -> String {
    format!(
        "name: jp
source:
  topics: [s]
  event_time: {{path: $.ts, unit: ms}}
tables:
  t:
    topic: tt
    key_format: text
    watermark: {{max_out_of_orderness: {bound}ms}}
    history: 3650d
stages:
  - join: {{table: t, on: value.k, type: {kind}, time: {time}, into: j}}
sinks:
  - topic: out
"
    )
}

fn gen(rng: &mut Rng) -> Vec<In> {
    let keys = 1 + rng.below(4);
    let key = |rng: &mut Rng| format!("k{}", rng.below(keys));
    let (mut table_t, mut stream_t) = (rng.below(50) as i64, rng.below(100) as i64);
    let mut v = Vec::new();
    let n = 5 + rng.below(40);
    for i in 0..n {
        if rng.below(2) == 0 {
            table_t += rng.below(20) as i64;
            // Some versions arrive late, beyond any bound.
            let t = if rng.below(8) == 0 {
                table_t - 30 - rng.below(30) as i64
            } else {
                table_t - rng.below(5) as i64
            };
            let value = (rng.below(6) != 0).then(|| rng.below(1000) as i64);
            v.push(In::Table(key(rng), t.max(0), value));
        } else {
            stream_t += rng.below(20) as i64;
            let t = (stream_t - rng.below(15) as i64).max(0);
            let k = (rng.below(7) != 0).then(|| key(rng));
            v.push(In::Stream(i, k, t));
        }
    }
    v
}

fn case(inputs: &[In]) -> Case {
    Case {
        name: "generated".into(),
        input: inputs
            .iter()
            .map(|i| match i {
                In::Table(k, t, v) => InputRecord {
                    topic: "tt".into(),
                    key: Some(k.clone().into_bytes()),
                    payload: v.map(|v| json!({ "v": v }).to_string().into_bytes()),
                    timestamp: *t,
                },
                In::Stream(id, k, t) => InputRecord {
                    topic: "s".into(),
                    key: None,
                    payload: Some(json!({"id": id, "k": k, "ts": t}).to_string().into_bytes()),
                    timestamp: 0,
                },
            })
            .collect(),
        expect: Vec::new(),
    }
}

/// The batch reference: the stream records' outputs in release order.
fn reference(inputs: &[In], inner: bool, event: bool, bound: i64) -> Vec<Value> {
    let mut versions: Vec<(String, i64, Option<i64>)> = Vec::new(); // arrival order
    let mut table_wm: Option<i64> = None;
    let mut held: Vec<(u64, Option<String>, i64)> = Vec::new();
    let mut out = Vec::new();
    let join = |versions: &[(String, i64, Option<i64>)], k: &Option<String>, t: i64| {
        let k = k.as_ref()?;
        // The version with the greatest time (≤ t for `event`); among
        // equal times, the one that arrived last.
        let mut best: Option<(i64, usize)> = None;
        for (i, (vk, vt, _)) in versions.iter().enumerate() {
            if vk == k && (!event || *vt <= t) && best.is_none_or(|(bt, _)| *vt >= bt) {
                best = Some((*vt, i));
            }
        }
        best.and_then(|(_, i)| versions[i].2)
    };
    let mut emit = |versions: &[(String, i64, Option<i64>)],
                    id: u64,
                    k: &Option<String>,
                    t: i64| match join(versions, k, t) {
        Some(v) => out.push(json!({"id": id, "k": k, "ts": t, "j": {"v": v}})),
        None if !inner => out.push(json!({"id": id, "k": k, "ts": t, "j": null})),
        None => {}
    };
    for i in inputs {
        match i {
            In::Table(k, t, v) => {
                versions.push((k.clone(), *t, *v));
                let wm = t - bound;
                table_wm = Some(table_wm.map_or(wm, |w| w.max(wm)));
                if event {
                    // Records leave in arrival order, from the oldest up to
                    // the first the table's watermark has not reached.
                    let w = table_wm.unwrap_or(i64::MIN);
                    let ready = held.iter().take_while(|(_, _, t)| *t <= w).count();
                    for (id, k, t) in held.drain(..ready).collect::<Vec<_>>() {
                        emit(&versions, id, &k, t);
                    }
                }
            }
            In::Stream(id, k, t) => {
                if !event || (held.is_empty() && table_wm.is_some_and(|w| *t <= w)) {
                    emit(&versions, *id, k, *t);
                } else {
                    held.push((*id, k.clone(), *t));
                }
            }
        }
    }
    for (id, k, t) in held {
        emit(&versions, id, &k, t);
    }
    out
}

#[test]
fn joins_on_the_per_record_path_match_a_batch_reference() {
    let base = seeded::base_seed("WEIR_JOIN_SEED", 0x10_1a);
    let (mut joined, mut null_joined, mut filtered) = (0usize, 0usize, 0usize);
    for c in 0..CASES {
        let seed = base + c;
        let mut rng = Rng(seed);
        let inputs = gen(&mut rng);
        let bound = [0, 3, 10][rng.below(3) as usize];
        let stream = inputs
            .iter()
            .filter(|i| matches!(i, In::Stream(..)))
            .count();
        for (kind, time) in [
            ("inner", "event"),
            ("left", "event"),
            ("inner", "latest"),
            ("left", "latest"),
        ] {
            let text = pipeline(kind, time, bound);
            let loaded = parse_text::<PipelineSpec>(Path::new("jp.yaml"), &text).expect("yaml");
            let plan = weir::plan::compile(&loaded, &CelEnv::new()).expect("plan");
            let got: Vec<Value> = run(&plan, &case(&inputs))
                .outputs
                .iter()
                .map(|o| {
                    assert_eq!(o.topic, "out", "seed {seed}: only sink records");
                    o.value.clone()
                })
                .collect();
            let want = reference(&inputs, kind == "inner", time == "event", bound);
            assert_eq!(
                got, want,
                "seed {seed}, type {kind}, time {time}, bound {bound}ms, inputs {inputs:?}"
            );
            if kind == "inner" {
                joined += want.len();
                filtered += stream - want.len();
            } else {
                null_joined += want.iter().filter(|v| v["j"].is_null()).count();
            }
        }
    }
    println!("{CASES} cases × 4 joins: {joined} joined (inner), {filtered} filtered (inner), {null_joined} null (left)");
    assert!(
        joined > 0 && filtered > 0 && null_joined > 0,
        "every outcome occurs"
    );
}
