//! `cargo bench --bench engine` (part of `make bench`): weir's per-record
//! path alone, no Kafka, on one core: decode → stages → sink encoding, over
//! the Kafka bench's own seeded 200-byte JSON records
//! (`tests/bench/records.rs`, included below). Throughput is records/s of
//! input (criterion's `Throughput::Elements`).
//!
//! Cases (each pipeline compiled from YAML by `weir::plan::compile`, as
//! `weir run` does):
//! - `filter+transform+tumbling`: the filter and transform of contender (4)
//!   (`tests/bench/filter-transform.yaml`), then contender (5)'s per-page
//!   1-minute tumbling count and sum (`key_by: value.page`). Issue 11's
//!   target: ≥ 1,000,000 records/s. The `key_by` repartitions: the records
//!   cross the repartition topic in-process, encoded and read back as the
//!   runtime does, with no broker in between.
//! - `filter+transform`: `tests/bench/filter-transform.yaml` itself.
//! - `passthrough decode+encode`: `tests/bench/passthrough.yaml` with its
//!   raw forwarding turned off, so every record is decoded as JSON, goes
//!   through the (empty) chain and is encoded again.
//! - `passthrough raw`: `tests/bench/passthrough.yaml` as weir runs it
//!   (bytes forwarded, never decoded).
//!
//! Each iteration feeds the same pre-generated records (200,000 under
//! `--bench`: about 10 minutes of event time, so windows open and close as
//! in the Kafka bench) through a fresh chain; building the chain is outside
//! the timing. Every case runs the runtime's own per-record path
//! (`weir::runtime::processor::PartitionProcessor`), as `weir run`, `weir
//! dev` and `weir test` do. The `restore` group times the pure restore
//! step of 1,000,000 windows ([`restore`]). Under `cargo test --all-targets` criterion runs each
//! case once, on 2,000 records. `WEIR_ENGINE_ONCE=<case name>` feeds one
//! case once (200,000 records under `--bench`) and exits, for profilers;
//! `WEIR_ENGINE_RECORDS=<n>` sets the number of records of every case.

/// The allocator `weir run` uses (`src/main.rs`), so that the per-record
/// path's allocations cost here what they cost in the daemon (with glibc's
/// allocator, malloc and free are about a fifth of this bench's
/// instructions).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../tests/bench/records.rs"]
#[allow(dead_code)]
mod records;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use records::Input;
use std::path::Path;
use weir::expr::CelEnv;
use weir::operator::window::aggregate::AggState;
use weir::operator::window::WindowEntryRef;
use weir::plan::Plan;
use weir::runtime::output::{Dest, Original, OutMsg};
use weir::runtime::processor::{PartitionProcessor, SourceMessage};
use weir::runtime::repartition;
use weir::spec::{parse_text, PipelineSpec};
use weir::state::{self, codec, Checkpoint, LogRecord};

/// (4)'s filter and transform, then (5)'s window.
const WINDOW_PIPELINE: &str = "\
name: engine-filter-transform-tumbling
source:
  topics: [bench-input]
  format: json
  event_time: {path: $.ts, unit: ms}
  watermark: {max_out_of_orderness: 2s}
stages:
  - filter: value.status == 200
  - transform:
      select: [$.id, $.user, $.page, $.ts, $.price]
      set: {cents: \"int(value.price * 100.0)\"}
      drop: [$.price]
  - key_by: value.page
  - window:
      tumbling: 1m
      aggregate:
        views: count()
        revenue: sum(value.cents)
sinks:
  - topic: engine-out
";

/// Kafka timestamp of every input record (event time comes from `$.ts`).
const KAFKA_TS: i64 = 1_767_225_600_000;

fn compile(file: &str, yaml: &str) -> Plan {
    let loaded =
        parse_text::<PipelineSpec>(Path::new(file), yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
    weir::plan::compile(&loaded, &CelEnv::new()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn bench_file(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bench")
        .join(name);
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    compile(name, &yaml)
}

/// One pipeline instantiated for one input partition, through the
/// runtime's own per-record path ([`PartitionProcessor`]): with a
/// repartition, a second processor stands for the repartition partition
/// and the records cross as `weir test` crosses them (encoded as the
/// runtime produces them, read back as it reads them), with a watermark
/// marker every [`MARKER_EVERY`] records (the runtime sends one every
/// 100 ms).
struct Engine<'p> {
    plan: &'p Plan,
    up: PartitionProcessor,
    down: Option<PartitionProcessor>,
    sources: Vec<String>,
    offset: i64,
    out: Vec<OutMsg>,
    crossing: Vec<OutMsg>,
}

/// Records between two watermark markers across the repartition.
const MARKER_EVERY: i64 = 1_000;

impl<'p> Engine<'p> {
    /// A fresh partition 0 of `bench-input`.
    fn new(plan: &'p Plan) -> Self {
        Engine {
            plan,
            up: PartitionProcessor::new(plan, "bench-input", 0),
            down: plan
                .repartition_topic()
                .map(|t| PartitionProcessor::new(plan, t, 0)),
            sources: vec!["bench-input/0".to_owned()],
            offset: 0,
            out: Vec::with_capacity(64),
            crossing: Vec::with_capacity(64),
        }
    }
}

/// Feeds `records`; returns the sink messages made (dropped as the
/// producer would after copying them).
fn feed(e: &mut Engine<'_>, records: &[Input]) -> u64 {
    let plan = e.plan;
    let mut made = 0u64;
    for r in records {
        let m = SourceMessage {
            offset: e.offset,
            key: Some(r.key.as_bytes()),
            payload: Some(r.payload.as_slice()),
            timestamp: KAFKA_TS,
        };
        e.offset += 1;
        e.up.source(plan, m, Vec::new, &mut e.out, &mut |_| {});
        if let Some(down) = e.down.as_mut() {
            if e.offset % MARKER_EVERY == 0 {
                let wm = e.up.chain.watermark();
                e.out
                    .push(repartition::marker("bench-input/0", wm, 0, false));
            }
            e.crossing.clear();
            std::mem::swap(&mut e.crossing, &mut e.out);
            for msg in e.crossing.drain(..) {
                if !matches!(msg.dest, Dest::Repartition(_)) {
                    e.out.push(msg);
                    continue;
                }
                let Some(incoming) = repartition::read_out(&msg) else {
                    continue;
                };
                let original = Original {
                    key: msg.key.as_deref(),
                    payload: Some(&msg.payload),
                    timestamp: msg.timestamp,
                };
                down.downstream(
                    plan,
                    incoming,
                    original,
                    &e.sources,
                    &mut e.out,
                    &mut |_| {},
                );
            }
        }
        made += e.out.len() as u64;
        e.out.clear();
    }
    made
}

/// `n` open windows as one partition's changelog holds them, each written
/// `versions` times (a commit per version), then its marker: what a
/// restore reads.
fn changelog(n: usize, versions: u64) -> Vec<LogRecord> {
    let mut out = Vec::with_capacity(n * versions as usize + 1);
    let mut value = Vec::new();
    for seq in 1..=versions {
        for i in 0..n {
            let key = serde_json::Value::String(format!("/p/{i}"));
            let aggs = [AggState::Count(seq as i64), AggState::Count(i as i64)];
            let entry = WindowEntryRef {
                key: &key,
                start: 1_767_225_600_000,
                end: 1_767_312_000_000,
                aggs: &aggs,
                changed: false,
            };
            codec::encode_entry(&entry, &mut value);
            out.push(LogRecord {
                topic: "weir.bench.0.changelog".into(),
                partition: 0,
                key: codec::entry_key("bench-input/0", 0, &key.to_string(), entry.start)
                    .into_bytes(),
                payload: Some(value.clone()),
                seq,
            });
        }
    }
    out
}

/// The pure restore step of 1,000,000 windows (2 versions each: 2,000,000
/// changelog records) into a window stage, as the runtime runs it: each
/// record borrowed into a `state::restore::Restorer` (as read from the
/// consumer), `finish`, then `state::restore::apply`. Issue 11's target:
/// 1,000,000 windows restored in < 10 s end to end (the Kafka read is on
/// top of this).
fn restore(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: usize = if benchmarking { 1_000_000 } else { 1_000 };
    let plan = compile(
        "engine-restore.yaml",
        "name: bench\nsource:\n  topics: [bench-input]\n  event_time: {path: $.ts}\n\
         stages:\n  - window:\n      tumbling: 1d\n      aggregate:\n        n: count()\n        m: count()\n\
         sinks:\n  - topic: out\n",
    );
    let log = changelog(n, 2);
    let cp = Checkpoint {
        offset: 1,
        watermark: i64::MIN,
        seq: 2,
        upstream: Default::default(),
    };
    let mut g = c.benchmark_group("restore");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(format!("{n} windows, 2 versions each"), |b| {
        b.iter_with_large_drop(|| {
            let assigned = [("bench-input/0".to_owned(), Some(cp.clone()))].into();
            let mut restorer = state::restore::Restorer::new(assigned, None);
            for r in &log {
                restorer.push(r.view());
            }
            let state::restore::Outcome::Restored(mut out) = restorer.finish() else {
                panic!("an at-least-once restore reads once");
            };
            let mut r = out.remove("bench-input/0").expect("restored");
            let mut p = PartitionProcessor::new(&plan, "bench-input", 0);
            let w = state::restore::apply(&mut p.chain, &mut r, plan.max_out_of_orderness);
            assert_eq!(w, n);
            p
        })
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: u64 = match std::env::var("WEIR_ENGINE_RECORDS") {
        Ok(v) => v
            .parse()
            .expect("WEIR_ENGINE_RECORDS is a number of records"),
        Err(_) if benchmarking => 200_000,
        Err(_) => 2_000,
    };
    let input: Vec<Input> = (0..n).map(records::record).collect();

    let window = compile("engine-filter-transform-tumbling.yaml", WINDOW_PIPELINE);
    let filter_transform = bench_file("filter-transform.yaml");
    let raw = bench_file("passthrough.yaml");
    assert!(raw.raw_passthrough, "passthrough.yaml forwards raw bytes");
    let mut decode_encode = raw.clone();
    decode_encode.raw_passthrough = false;

    let cases: [(&str, &Plan); 4] = [
        ("filter+transform+tumbling", &window),
        ("filter+transform", &filter_transform),
        ("passthrough decode+encode", &decode_encode),
        ("passthrough raw", &raw),
    ];
    // `WEIR_ENGINE_ONCE=<case>`: feed that case once and stop (for
    // `valgrind --tool=callgrind` or `perf`: one pass, nothing else timed).
    if let Ok(once) = std::env::var("WEIR_ENGINE_ONCE") {
        let (name, plan) = cases
            .iter()
            .find(|(name, _)| *name == once)
            .unwrap_or_else(|| panic!("WEIR_ENGINE_ONCE={once}: no such case"));
        let outputs = feed(&mut Engine::new(plan), &input);
        eprintln!("engine/{name} once: {n} records in, {outputs} sink messages out");
        std::process::exit(0);
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for (name, plan) in cases {
        // Outputs per input, once, for the log (the window's results).
        let outputs = feed(&mut Engine::new(plan), &input);
        eprintln!(
            "engine/{name}: {n} records in, {outputs} sink messages out ({:.2} per record)",
            outputs as f64 / n as f64
        );
        g.bench_function(name, |b| {
            b.iter_batched(
                || Engine::new(plan),
                |mut e| {
                    black_box(feed(&mut e, &input));
                    e
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, engine, restore);
criterion_main!(benches);
