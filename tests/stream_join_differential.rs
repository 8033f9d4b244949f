//! Differential test of stream-stream (interval) joins on the one
//! per-record path (DESIGN.md §7): seeded random cases — a left stream
//! (the pipeline's source) and a right stream (the join's `stream:`) with a
//! few keys, null keys, disorder within the watermark bound and sometimes
//! far beyond it (late records), interleaved as two topics are consumed —
//! run as `weir test` runs a case, for `inner`, `left` and `outer`, several
//! `within`, `allowed_lateness` and bounds, and compared with a batch
//! computation written here: a nested loop over every pair of records
//! that were not late on arrival (late: older than min(left watermark,
//! right watermark) − allowed_lateness, the watermarks replayed over the
//! arrival order), plus every such record without a partner for
//! `left`/`outer`. Outputs are compared as multisets (emission order
//! follows arrival). Seeded; the seed is in the failure message and
//! `WEIR_JOIN_SEED` overrides the base seed.

mod seeded;
use seeded::Rng;
use serde_json::{json, Value};
use std::path::Path;
use weir::expr::CelEnv;
use weir::spec::{parse_text, PipelineSpec};
use weir::testing::{run, Case, InputRecord};

const CASES: u64 = 200;

/// One input: `(left?, id, key, event time ms)`.
type In = (bool, u64, Option<String>, i64);

fn pipeline(kind: &str, within: i64, lateness: i64, bound: i64) -> String {
    format!(
        "name: sj
source:
  topics: [l]
  event_time: {{path: $.ts, unit: ms}}
  watermark: {{max_out_of_orderness: {bound}ms}}
stages:
  - join:
      stream: {{topics: [r], event_time: {{path: $.ts, unit: ms}}, key: value.k}}
      on: value.k
      within: {within}ms
      allowed_lateness: {lateness}ms
      type: {kind}
      into: j
sinks:
  - topic: out
"
    )
}

fn gen(rng: &mut Rng, bound: i64) -> Vec<In> {
    let keys = 1 + rng.below(4);
    let (mut lt, mut rt) = (rng.below(30) as i64, rng.below(30) as i64);
    let n = 4 + rng.below(40);
    (0..n)
        .map(|id| {
            let left = rng.below(2) == 0;
            let clock = if left { &mut lt } else { &mut rt };
            *clock += rng.below(12) as i64;
            // Within the bound, or now and then far behind it (late).
            let back = if rng.below(10) == 0 {
                bound + 10 + rng.below(40) as i64
            } else {
                rng.below(bound as u64 + 1) as i64
            };
            let t = (*clock - back).max(0);
            let k = (rng.below(8) != 0).then(|| format!("k{}", rng.below(keys)));
            (left, id, k, t)
        })
        .collect()
}

fn case(inputs: &[In]) -> Case {
    Case {
        name: "generated".into(),
        input: inputs
            .iter()
            .map(|(left, id, k, t)| InputRecord {
                topic: if *left { "l" } else { "r" }.into(),
                key: None,
                payload: Some(json!({"id": id, "k": k, "ts": t}).to_string().into_bytes()),
                timestamp: 0,
            })
            .collect(),
        expect: Vec::new(),
    }
}

fn value((_, id, k, t): &In) -> Value {
    json!({"id": id, "k": k, "ts": t})
}

/// The batch reference, sorted by JSON text, and how many records were late.
fn reference(
    inputs: &[In],
    kind: &str,
    within: i64,
    lateness: i64,
    bound: i64,
) -> (Vec<Value>, usize) {
    let (mut lmax, mut rmax) = (i64::MIN, i64::MIN);
    let wm = |max: i64| {
        if max == i64::MIN {
            i64::MIN
        } else {
            max - bound
        }
    };
    let mut taken: Vec<&In> = Vec::new();
    let mut late = 0;
    for i in inputs {
        let join_wm = wm(lmax).min(wm(rmax));
        if join_wm != i64::MIN && i.3 < join_wm - lateness {
            late += 1;
        } else {
            taken.push(i);
        }
        let max = if i.0 { &mut lmax } else { &mut rmax };
        *max = (*max).max(i.3);
    }
    let partner =
        |a: &In, b: &In| a.0 != b.0 && a.2.is_some() && a.2 == b.2 && (a.3 - b.3).abs() <= within;
    let mut out = Vec::new();
    for l in taken.iter().filter(|i| i.0) {
        let mut matched = false;
        for r in taken.iter().filter(|i| !i.0) {
            if partner(l, r) {
                matched = true;
                let mut v = value(l);
                v["j"] = value(r);
                out.push(v);
            }
        }
        if !matched && kind != "inner" {
            let mut v = value(l);
            v["j"] = Value::Null;
            out.push(v);
        }
    }
    if kind == "outer" {
        for r in taken.iter().filter(|i| !i.0) {
            if !taken.iter().any(|l| partner(l, r)) {
                out.push(json!({ "j": value(r) }));
            }
        }
    }
    out.sort_by_key(|v| v.to_string());
    (out, late)
}

#[test]
fn stream_stream_joins_match_a_nested_loop_over_the_records_not_late() {
    let base = seeded::base_seed("WEIR_JOIN_SEED", 0x55_1a);
    let (mut pairs, mut nulls, mut right_only, mut late_total) = (0, 0, 0, 0);
    for c in 0..CASES {
        let seed = base + c;
        let mut rng = Rng(seed);
        let bound = [0, 3, 10][rng.below(3) as usize];
        let within = [0, 5, 20][rng.below(3) as usize];
        let lateness = [0, 10][rng.below(2) as usize];
        let inputs = gen(&mut rng, bound);
        for kind in ["inner", "left", "outer"] {
            let text = pipeline(kind, within, lateness, bound);
            let loaded = parse_text::<PipelineSpec>(Path::new("sj.yaml"), &text).expect("yaml");
            let plan = weir::plan::compile(&loaded, &CelEnv::new()).expect("plan");
            let result = run(&plan, &case(&inputs));
            let mut got: Vec<Value> = result
                .outputs
                .iter()
                .map(|o| {
                    assert_eq!(o.topic, "out", "seed {seed}: only sink records");
                    o.value.clone()
                })
                .collect();
            got.sort_by_key(|v| v.to_string());
            let (want, late) = reference(&inputs, kind, within, lateness, bound);
            assert_eq!(
                got, want,
                "seed {seed}, type {kind}, within {within}ms, lateness {lateness}ms, bound {bound}ms, inputs {inputs:?}"
            );
            late_total += late;
            match kind {
                "inner" => pairs += want.len(),
                "left" => nulls += want.iter().filter(|v| v["j"].is_null()).count(),
                _ => right_only += want.iter().filter(|v| v.get("id").is_none()).count(),
            }
        }
    }
    println!("{CASES} cases × 3 types: {pairs} pairs (inner), {nulls} unmatched left (left), {right_only} unmatched right (outer), {late_total} late records");
    assert!(
        pairs > 0 && nulls > 0 && right_only > 0 && late_total > 0,
        "every outcome occurs"
    );
}
