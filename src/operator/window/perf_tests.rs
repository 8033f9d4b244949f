//! Timing and memory harness of the window operator (ignored by default):
//! `cargo test --release --lib operator::window::perf_tests -- --ignored
//! --nocapture --test-threads 1`. It mimics the `make bench` tumbling job
//! (tests/bench/tumbling-count.yaml: 10,000 pages, 1-minute windows, count
//! and sum, 2 s of out-of-orderness, `ts` 3 ms apart with up to 1 s of
//! jitter) and the open-windows job (100,000 numeric keys in a day-long
//! window). For exact counts on a busy machine, run the binary under
//! `valgrind --tool=cachegrind` with `WEIR_PERF_N=100000`.

use super::aggregate::parse_aggregate;
use super::watermark::Watermark;
use super::*;
use crate::expr::CelEnv;
use serde_json::json;
use std::time::{Duration, Instant};

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn def(env: &CelEnv, size: i64) -> Arc<WindowDef> {
    def_with(
        env,
        size,
        &[("views", "count()"), ("revenue", "sum(value.price)")],
    )
}

fn def_with(env: &CelEnv, size: i64, aggs: &[(&str, &str)]) -> Arc<WindowDef> {
    Arc::new(WindowDef {
        kind: WindowKind::Aligned(Assigner::tumbling(size)),
        allowed_lateness: 0,
        aggregates: aggs
            .iter()
            .map(|(n, c)| parse_aggregate(env, n, c).unwrap())
            .collect(),
        late: LatePolicy::Drop,
        emit: EmitMode::Final,
    })
}

fn page_record(id: u64) -> Record {
    let r1 = mix(id);
    let r2 = mix(r1);
    let ts = 1_767_225_600_000 + id as i64 * 3 + (r2 >> 54) as i64;
    let mut r = Record::new(
        json!(format!("/product/{}", (r1 >> 32) % 10_000)),
        json!({"id": id, "ts": ts, "price": (r2 % 100_000) as f64 / 100.0}),
    );
    r.event_time = ts;
    r
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
#[ignore = "timing harness"]
fn perf_tumbling_count_sum_1m_records_10k_keys() {
    let env = CelEnv::new();
    let root = env.root();
    // WEIR_PERF_N records (default 1,000,000); fewer under valgrind.
    let n: u64 = std::env::var("WEIR_PERF_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let recs: Vec<Record> = (0..n).map(page_record).collect();
    // count + sum (the bench job), then count alone (no CEL evaluation:
    // the operator's own cost).
    let count_sum = def(&env, 60_000);
    let count = def_with(&env, 60_000, &[("views", "count()")]);
    for (round, d) in [&count_sum, &count_sum, &count_sum, &count, &count]
        .into_iter()
        .enumerate()
    {
        let mut op = WindowOperator::new(Arc::clone(d));
        let mut wm = Watermark::new(2_000);
        let mut out = Vec::new();
        let (mut t_add, mut t_adv) = (Duration::ZERO, Duration::ZERO);
        let mut results = 0;
        for chunk in recs.chunks(1024) {
            let t0 = Instant::now();
            let mut marks = Vec::with_capacity(chunk.len());
            for r in chunk {
                let before = wm.current();
                op.add(&root, r, before, &mut out).unwrap();
                if wm.observe(r.event_time) {
                    marks.push((before, wm.current()));
                }
            }
            let t1 = Instant::now();
            // Closing in a second pass over the chunk's watermark moves gives
            // the same windows (nothing late here) and separates the costs.
            for (from, to) in marks {
                op.advance(from, to, &mut out);
            }
            let t2 = Instant::now();
            t_add += t1 - t0;
            t_adv += t2 - t1;
            results += out.len();
            out.clear();
        }
        let t0 = Instant::now();
        results += op.flush(&mut out);
        let t_flush = t0.elapsed();
        println!(
            "round {round} ({} aggregates): add {:.0} ns/record, advance {:.0} ns/record, \
             total {:.0} ns/record; {results} results, flush {t_flush:?}",
            d.aggregates.len(),
            t_add.as_nanos() as f64 / n as f64,
            t_adv.as_nanos() as f64 / n as f64,
            (t_add + t_adv).as_nanos() as f64 / n as f64,
        );
    }
}

#[test]
#[ignore = "memory harness"]
fn perf_100k_open_windows_memory() {
    let env = CelEnv::new();
    let root = env.root();
    for (name, string_keys) in [("numeric keys", false), ("string keys", true)] {
        let mut op = WindowOperator::new(def(&env, 86_400_000));
        let mut out = Vec::new();
        let before = rss_bytes();
        let t0 = Instant::now();
        for id in 0..200_000u64 {
            let k = id % 100_000;
            let key = if string_keys {
                json!(format!("user-{k}"))
            } else {
                json!(k)
            };
            let mut r = Record::new(key, json!({"price": (id % 1000) as f64 / 10.0}));
            r.event_time = 1_767_225_600_000 + id as i64;
            op.add(&root, &r, i64::MIN, &mut out).unwrap();
        }
        let took = t0.elapsed();
        let after = rss_bytes();
        let t0 = Instant::now();
        let mut changes = 0;
        op.drain_changes(|_| changes += 1);
        let drain = t0.elapsed();
        println!(
            "{name}: {} open windows, RSS +{:.1} MB ({} B/window), approx_bytes {} B/window, \
             add {:.0} ns/record, drain of {changes} changes {drain:?}",
            op.open_windows(),
            (after - before) as f64 / 1e6,
            (after - before) / op.open_windows(),
            op.approx_bytes() / op.open_windows(),
            took.as_nanos() as f64 / 200_000.0,
        );
        let t0 = Instant::now();
        let closed = op.flush(&mut out);
        println!("{name}: flush of {closed} windows {:?}", t0.elapsed());
    }
}
