//! Crash-and-restore property test of window state, with no broker: a first
//! run that commits its state at random points through the state layer's
//! commit step (`weir::state::commit`, the records weir writes, into a
//! simulated changelog partition; sometimes a commit dies between the
//! changelog write and the checkpoint, leaving unconfirmed entries, or
//! under exactly-once an aborted transaction), a crash at a random point,
//! and a second run restored by the runtime's own restore step
//! (`weir::state::restore`) from the last confirmed commit. The second run must produce
//! exactly the results the uninterrupted run produced after that commit:
//! no window lost, none partial, none counted twice. Every window kind and
//! emit mode. Seeded; the seed is printed on failure and `WEIR_RECOVERY_SEED`
//! overrides the base seed.

mod seeded;
use seeded::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use weir::expr::CelEnv;
use weir::operator::Chain;
use weir::plan::Plan;
use weir::spec::{parse_text, PipelineSpec};
use weir::state::{self, Checkpoint, LogRecord};

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

const SRC: &str = "in/0";

/// How the restore finds where a partition stands.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// At-least-once: the checkpoint record of the last confirmed commit.
    AtLeastOnce,
    /// Exactly-once on Kafka: an aborted commit's records are invisible
    /// (read_committed) and the group holds the committed offset; the
    /// markers say the rest.
    ExactlyOnce,
}

/// One commit through the state layer's commit step, into `log` (a
/// changelog partition as written, not compacted: the topic's
/// `min.compaction.lag.ms` keeps a confirmed entry until the next owner
/// has overwritten any unconfirmed one). Returns the checkpoint written.
fn commit(
    c: &mut Chain,
    offset: usize,
    last: Option<&Checkpoint>,
    seq: &mut u64,
    log: &mut Vec<LogRecord>,
) -> Option<Checkpoint> {
    let up = BTreeMap::new();
    let at = state::commit::Position {
        offset: offset as i64,
        watermark: c.watermark(),
        upstream: &up,
        changed: c.has_changes(),
    };
    let cp = state::commit::next_checkpoint(last, seq, at)?;
    let stages = c.window_stages();
    let s = *seq;
    state::commit::Encoder::default().partition(
        SRC,
        &stages,
        &cp,
        |f| c.drain_changes(f),
        &mut |r| {
            log.push(LogRecord {
                topic: format!("recovery.{}.changelog", r.stage),
                partition: 0,
                key: r.key.as_bytes().to_vec(),
                payload: r.value.map(<[u8]>::to_vec),
                seq: s,
            })
        },
    );
    Some(cp)
}

fn run_case(window: &str, seed: u64, mode: Mode) -> Result<(), String> {
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
    let mut log = Vec::new();
    let mut seq = 0;
    let (mut last, mut cp): (Option<Checkpoint>, Option<Checkpoint>) = (None, None);
    for (o, p) in input.iter().enumerate().take(crash_at) {
        step(&plan, &mut c, o, p);
        if rng.below(6) == 0 {
            let before = log.len();
            let Some(next) = commit(&mut c, o + 1, last.as_ref(), &mut seq, &mut log) else {
                continue;
            };
            if rng.below(4) != 0 {
                // confirmed
                cp = Some(next.clone());
                last = Some(next);
            } else if let Mode::ExactlyOnce = mode {
                // The transaction aborted: its records are invisible, and
                // the pipeline stops (its state is ahead of what committed).
                log.truncate(before);
                break;
            }
        }
    }
    // Restore as the runtime does (the same function), then resume at the
    // checkpoint.
    let committed: std::collections::HashMap<String, i64> =
        cp.iter().map(|c| (SRC.to_owned(), c.offset)).collect();
    let assigned = [(SRC.to_owned(), cp.clone())].into();
    let mut restored = match mode {
        Mode::AtLeastOnce => state::restore(assigned, log, None),
        Mode::ExactlyOnce => state::restore(assigned, log, Some(&committed)),
    }
    .remove(SRC)
    .unwrap();
    if restored.checkpoint != cp {
        return Err(format!(
            "{mode:?} window `{window}`, seed {seed}: restored checkpoint {:?}, confirmed {cp:?}",
            restored.checkpoint
        ));
    }
    let mut c2 = chain(&plan);
    state::restore::apply(&mut c2, &mut restored, plan.max_out_of_orderness);
    let resume = cp.as_ref().map_or(0, |c| c.offset as usize);
    let mut second = Vec::new();
    for (o, p) in input.iter().enumerate().skip(resume) {
        second.extend(step(&plan, &mut c2, o, p));
    }
    second.extend(
        c2.flush()
            .emits
            .into_iter()
            .map(|(_, r)| r.value.to_string()),
    );
    let mut expected: Vec<String> = after.into_iter().skip(resume).flatten().collect();
    expected.extend(tail);
    if second != expected {
        let first_diff = second
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(second.len().min(expected.len()));
        return Err(format!(
            "{mode:?} window `{window}`, seed {seed}: crash at {crash_at}, checkpoint {cp:?}: {} results after restore, {} expected; first difference at {first_diff}: {:?} vs {:?}",
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
    let base = seeded::base_seed("WEIR_RECOVERY_SEED", 0x5eed_0003);
    let mut failures = Vec::new();
    let mut cases = 0;
    for mode in [Mode::AtLeastOnce, Mode::ExactlyOnce] {
        for window in WINDOWS {
            for i in 0..80 {
                cases += 1;
                if let Err(e) = run_case(window, base.wrapping_add(i), mode) {
                    failures.push(e);
                }
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
