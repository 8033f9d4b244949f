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
//!   target: ≥ 1,000,000 records/s. The plan has a repartition (the
//!   `key_by`), which here is not crossed: the whole pipeline runs as one
//!   chain, the re-keyed record going straight to the window, as on a single
//!   partition; so this measures the engine's work per record, not the
//!   repartition topic's extra encode/decode.
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
//! the timing. Everything the bench calls of weir's API is in [`feed`] and
//! [`Engine::new`]. Under `cargo test --all-targets` criterion runs each
//! case once, on 2,000 records.

#[path = "../tests/bench/records.rs"]
#[allow(dead_code)]
mod records;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use records::Input;
use std::path::Path;
use std::sync::Arc;
use weir::codec::RawMessage;
use weir::expr::CelEnv;
use weir::operator::Chain;
use weir::plan::Plan;
use weir::record::Origin;
use weir::runtime::output::{collect, Dest, Original, OutMsg};
use weir::spec::{parse_text, PipelineSpec};

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

/// One pipeline instantiated for one input partition.
struct Engine<'p> {
    plan: &'p Plan,
    chain: Chain,
    topic: Arc<str>,
    offset: i64,
    out: Vec<OutMsg>,
}

impl<'p> Engine<'p> {
    /// A fresh partition of `plan`: the whole pipeline as one chain.
    fn new(plan: &'p Plan) -> Self {
        Engine {
            plan,
            chain: Chain::new(
                &plan.env,
                Arc::clone(&plan.stages),
                Arc::clone(&plan.sinks),
                plan.max_out_of_orderness,
            ),
            topic: Arc::from("bench-input"),
            offset: 0,
            out: Vec::with_capacity(64),
        }
    }
}

/// The per-record path, as the runtime runs it (`runtime::pipeline`):
/// raw forwarding when nothing reads the payload, else decode → chain →
/// sink messages (`output::collect`: key and payload encoded). Returns the
/// sink messages made; they are dropped as the producer would after copying
/// them. Decode errors count nothing (the input has none).
fn feed(e: &mut Engine<'_>, records: &[Input]) -> u64 {
    let plan = e.plan;
    let mut made = 0u64;
    for r in records {
        let key = Some(r.key.as_bytes());
        let payload = Some(r.payload.as_slice());
        e.offset += 1;
        if plan.raw_passthrough {
            for sink in 0..plan.sinks.len() {
                e.out.push(OutMsg {
                    dest: Dest::Sink(sink),
                    key: key.map(<[u8]>::to_vec),
                    payload: r.payload.clone(),
                    timestamp: KAFKA_TS,
                    headers: None,
                });
            }
        } else {
            let raw = RawMessage {
                key,
                payload,
                timestamp: KAFKA_TS,
            };
            let origin = Origin {
                topic: Arc::clone(&e.topic),
                partition: 0,
                offset: e.offset,
            };
            let Ok(rec) = plan.decoder.decode(raw, origin) else {
                continue;
            };
            let step = e.chain.process(rec);
            let original = Original {
                key,
                payload,
                timestamp: KAFKA_TS,
            };
            collect(plan, step, original, &mut e.out);
        }
        made += e.out.len() as u64;
        e.out.clear();
    }
    made
}

fn engine(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: u64 = if benchmarking { 200_000 } else { 2_000 };
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

criterion_group!(benches, engine);
criterion_main!(benches);
