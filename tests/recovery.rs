//! Crash-and-restore property test of window state, with no broker: a first
//! run that commits its state at random points (changed entries through a
//! simulated compacted changelog, JSON as weir writes it; sometimes a
//! commit dies between the changelog write and the checkpoint, leaving
//! unconfirmed entries), a crash at a random point, and a second run
//! restored from the last confirmed commit. The second run must produce
//! exactly the results the uninterrupted run produced after that commit:
//! no window lost, none partial, none counted twice. Every window kind and
//! emit mode. Seeded; the seed is printed on failure and `WEIR_RECOVERY_SEED`
//! overrides the base seed.

mod seeded;
use seeded::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use weir::expr::CelEnv;
use weir::operator::window::{StateChange, WindowEntry};
use weir::operator::Chain;
use weir::plan::Plan;
use weir::spec::{parse_text, PipelineSpec};

const WINDOWS: [&str; 5] = [
    "hopping: {size: 10s, advance: 5s}\n      emit: final",
    "tumbling: 4s\n      emit: {every: 1s}",
    "session: {gap: 3s}\n      emit: final",
    "session: {gap: 2s}\n      emit: update",
    "session: {gap: 5s}\n      emit: {every: 2s}",
];

fn pipeline(window: &str) -> String {
    format!(
        "name: recovery
source:
  topics: [in]
  event_time: {{path: $.ts, unit: ms}}
  watermark: {{max_out_of_orderness: 3s}}
stages:
  - key_by: value.k
  - window:
      {window}
      allowed_lateness: 1s
      aggregate:
        n: count()
        sum: sum(value.x)
        firsts: collect(value.x, 4)
        p90: percentile(value.x, 0.9)
        tags: count_distinct(value.x)
sinks: [{{topic: out}}]
"
    )
}

/// Events with bounded disorder, a few very late ones, and gaps.
fn events(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut t = 1_000_000i64;
    (0..n)
        .map(|_| {
            t += rng.below(700) as i64;
            if rng.below(40) == 0 {
                t += 20_000; // a gap that closes windows
            }
            let ts = if rng.below(25) == 0 {
                t - 15_000
            } else {
                t - rng.below(3_000) as i64
            };
            json!({"k": format!("k{}", rng.below(4)), "ts": ts, "x": rng.below(10)}).to_string()
        })
        .collect()
}

fn plan(window: &str) -> Arc<Plan> {
    let loaded = parse_text::<PipelineSpec>(Path::new("recovery.yaml"), &pipeline(window)).unwrap();
    Arc::new(weir::plan::compile(&loaded, &CelEnv::new()).unwrap())
}

fn chain(plan: &Plan) -> Chain {
    Chain::new(
        &plan.env,
        Arc::clone(&plan.stages),
        Arc::clone(&plan.sinks),
        plan.max_out_of_orderness,
    )
}

fn step(plan: &Plan, chain: &mut Chain, offset: usize, payload: &str) -> Vec<String> {
    let rec = seeded::decode(plan, payload, offset as i64);
    chain
        .process(rec)
        .emits
        .into_iter()
        .map(|(_, r)| r.value.to_string())
        .collect()
}

/// A changelog partition as written (not compacted: the topic's
/// `min.compaction.lag.ms` keeps a confirmed entry until the next owner has
/// overwritten any unconfirmed one): (stage, key JSON, start), seq, payload.
type Log = Vec<((usize, String, i64), u64, Option<String>)>;

/// A confirmed commit: (offset, watermark, seq).
type Checkpoint = (usize, i64, u64);

fn write(log: &mut Log, seq: u64, changes: Vec<(usize, StateChange)>) {
    for (stage, c) in changes {
        let (k, v) = match c {
            StateChange::Put(e) => (
                (stage, e.key.to_string(), e.start),
                Some(serde_json::to_string(&e).unwrap()),
            ),
            StateChange::Remove { key, start } => ((stage, key, start), None),
        };
        log.push((k, seq, v));
    }
}

fn run_case(window: &str, seed: u64) -> Result<(), String> {
    let plan = plan(window);
    let mut rng = Rng(seed);
    let input = events(&mut rng, 300);
    // Outputs of the uninterrupted run, by the offset that caused them.
    let mut c = chain(&plan);
    let mut after: Vec<Vec<String>> = Vec::new();
    for (o, p) in input.iter().enumerate() {
        after.push(step(&plan, &mut c, o, p));
    }
    let tail = c
        .flush()
        .emits
        .into_iter()
        .map(|(_, r)| r.value.to_string())
        .collect::<Vec<_>>();

    // First run with commits at random points, some dying half-way.
    let crash_at = rng.below(input.len() as u64) as usize;
    let mut c = chain(&plan);
    let mut log = Log::new();
    let (mut seq, mut cp): (u64, Checkpoint) = (0, (0, i64::MIN, 0));
    for (o, p) in input.iter().enumerate().take(crash_at) {
        step(&plan, &mut c, o, p);
        if rng.below(6) == 0 {
            let changes = c.take_changes();
            if !changes.is_empty() {
                seq += 1;
                write(&mut log, seq, changes);
            }
            if rng.below(4) != 0 {
                cp = (o + 1, c.watermark(), seq); // confirmed
            }
        }
    }
    // Restore from the log as the runtime does, then resume at the checkpoint.
    let mut c2 = chain(&plan);
    c2.restore_watermark(plan.max_out_of_orderness, cp.1);
    let mut confirmed: BTreeMap<(usize, String, i64), Option<String>> = BTreeMap::new();
    let mut unconfirmed = Vec::new();
    for (k, s, v) in log {
        if s <= cp.2 {
            confirmed.insert(k, v);
        } else {
            unconfirmed.push(k);
        }
    }
    for ((stage, _, _), v) in &confirmed {
        if let Some(v) = v {
            let e: WindowEntry = serde_json::from_str(v).unwrap();
            c2.restore_window(*stage, e);
        }
    }
    for (stage, key, start) in &unconfirmed {
        let key: Value = serde_json::from_str(key).unwrap();
        c2.mark_unconfirmed(*stage, &key, *start);
    }
    let mut second = Vec::new();
    for (o, p) in input.iter().enumerate().skip(cp.0) {
        second.extend(step(&plan, &mut c2, o, p));
    }
    second.extend(
        c2.flush()
            .emits
            .into_iter()
            .map(|(_, r)| r.value.to_string()),
    );
    let mut expected: Vec<String> = after.into_iter().skip(cp.0).flatten().collect();
    expected.extend(tail);
    if second != expected {
        let first_diff = second
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(second.len().min(expected.len()));
        return Err(format!(
            "window `{window}`, seed {seed}: crash at {crash_at}, checkpoint {cp:?}: {} results after restore, {} expected; first difference at {first_diff}: {:?} vs {:?}",
            second.len(),
            expected.len(),
            second.get(first_diff),
            expected.get(first_diff)
        ));
    }
    Ok(())
}

#[test]
fn restored_state_continues_exactly_where_the_checkpoint_stood() {
    let base: u64 = std::env::var("WEIR_RECOVERY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0003);
    let mut failures = Vec::new();
    let mut cases = 0;
    for window in WINDOWS {
        for i in 0..80 {
            cases += 1;
            if let Err(e) = run_case(window, base.wrapping_add(i)) {
                failures.push(e);
            }
        }
    }
    println!("recovery: {cases} cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} failures; first: {}",
        failures.len(),
        failures[0]
    );
}
