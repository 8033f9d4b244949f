//! Crash-and-replay property test of the at-least-once recovery, with no
//! broker: a first run with acknowledgements arriving late and out of order,
//! checkpoints taken as the runtime takes them, a crash at a random point,
//! and a second run resumed from the last checkpoint. Every output of either
//! run must be a whole, correct window of the uninterrupted run, and every
//! window of the uninterrupted run must be acknowledged in one of them.
//! Seeded; the seed is printed on failure.

use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use weir::codec::RawMessage;
use weir::expr::CelEnv;
use weir::kafka::checkpoint::Checkpoint;
use weir::operator::Chain;
use weir::plan::Plan;
use weir::record::Origin;
use weir::runtime::progress::Progress;
use weir::spec::{parse_text, PipelineSpec};

const PIPELINE: &str = "name: replay
source:
  topics: [in]
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 3s}
stages:
  - key_by: value.k
  - window:
      hopping: {size: 10s, advance: 5s}
      allowed_lateness: 1s
      aggregate:
        n: count()
        sum: sum(value.x)
        last_ts: max(value.ts)
sinks: [{topic: out}]
";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
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

fn plan() -> Arc<Plan> {
    let loaded = parse_text::<PipelineSpec>(Path::new("replay.yaml"), PIPELINE).unwrap();
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

fn step(
    plan: &Plan,
    chain: &mut Chain,
    offset: i64,
    payload: &str,
) -> (
    Vec<Value>,
    Option<weir::operator::window::FirstSeen>,
    i64,
    i64,
) {
    let rec = plan
        .decoder
        .decode(
            RawMessage {
                key: None,
                payload: Some(payload.as_bytes()),
                timestamp: 0,
            },
            Origin {
                topic: Arc::from("in"),
                partition: 0,
                offset,
            },
        )
        .unwrap();
    let before = chain.watermark();
    let r = chain.process(rec);
    (
        r.emits.into_iter().map(|(_, rec)| rec.value).collect(),
        r.closed,
        before,
        chain.watermark(),
    )
}

fn uninterrupted(plan: &Plan, input: &[String]) -> BTreeSet<String> {
    let mut c = chain(plan);
    let mut out = BTreeSet::new();
    for (o, p) in input.iter().enumerate() {
        out.extend(
            step(plan, &mut c, o as i64, p)
                .0
                .iter()
                .map(Value::to_string),
        );
    }
    out.extend(
        c.flush()
            .emits
            .into_iter()
            .map(|(_, r)| r.value.to_string()),
    );
    out
}

fn run_case(seed: u64) -> Result<(), String> {
    let plan = plan();
    let mut rng = Rng(seed);
    let input = events(&mut rng, 300);
    let expected = uninterrupted(&plan, &input);

    // First run: acks arrive 0..8 steps later, in random order; checkpoints every few records.
    let crash_at = rng.below(input.len() as u64) as usize;
    let mut c = chain(&plan);
    let mut progress = Progress::new(i64::MIN);
    let mut in_flight: VecDeque<(usize, i64, String)> = VecDeque::new();
    let mut delivered = BTreeSet::new();
    let mut last_cp: Option<Checkpoint> = None;
    for (o, p) in input.iter().enumerate().take(crash_at) {
        let (outs, closed, before, after) = step(&plan, &mut c, o as i64, p);
        progress.record(o as i64, outs.len() as u32, before, after, closed);
        for v in outs {
            in_flight.push_back((o + rng.below(8) as usize, o as i64, v.to_string()));
        }
        let mut still = VecDeque::new();
        while let Some((due, unit, v)) = in_flight.pop_front() {
            if due <= o && rng.below(3) != 0 {
                progress.ack(unit);
                delivered.insert(v);
            } else {
                still.push_back((due, unit, v));
            }
        }
        in_flight = still;
        if rng.below(5) == 0 {
            last_cp = Some(progress.checkpoint(o as i64 + 1, c.watermark(), c.oldest_open()));
        }
    }
    // Crash: in-flight records are lost; restart from the last checkpoint.
    let cp = last_cp.unwrap_or(Checkpoint {
        offset: 0,
        watermark: i64::MIN,
        emitted_through: i64::MIN,
    });
    let mut c2 = chain(&plan);
    c2.restore(plan.max_out_of_orderness, cp.watermark, cp.emitted_through);
    let mut second = BTreeSet::new();
    for (o, p) in input.iter().enumerate().skip(cp.offset as usize) {
        second.extend(
            step(&plan, &mut c2, o as i64, p)
                .0
                .iter()
                .map(Value::to_string),
        );
    }
    second.extend(
        c2.flush()
            .emits
            .into_iter()
            .map(|(_, r)| r.value.to_string()),
    );

    for v in delivered.iter().chain(&second) {
        if !expected.contains(v) {
            return Err(format!("seed {seed}: crash at {crash_at}, checkpoint {cp:?}: output not in the uninterrupted run: {v}"));
        }
    }
    for v in &expected {
        if !delivered.contains(v) && !second.contains(v) {
            return Err(format!(
                "seed {seed}: crash at {crash_at}, checkpoint {cp:?}: window lost: {v}"
            ));
        }
    }
    Ok(())
}

#[test]
fn crash_and_replay_gives_only_whole_correct_windows_and_loses_none() {
    let base: u64 = std::env::var("WEIR_REPLAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_131_101);
    let cases = 400;
    let failures: Vec<String> = (0..cases)
        .filter_map(|i| run_case(base + i).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed (base seed {base}); first: {}",
        failures.len(),
        failures[0]
    );
}
