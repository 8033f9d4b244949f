//! `make bench`: weir against hand-written Rust, Kafka Streams and Flink on
//! a real broker.
//!
//! On a broker of its own (Apache Kafka 4.4, one KRaft node, by default;
//! Tansu with `WEIR_BENCH_BROKER=tansu`), 1,000,000 JSON records of about
//! 200 bytes in 8 partitions are consumed, one contender after another, by
//! separate OS processes, each in its own consumer group, writing its own
//! output topic:
//!
//! 1. a raw rdkafka consume → produce loop ([`raw`]),
//! 2. a hand-written serde_json filter + transform ([`handwritten`]),
//! 3. `weir run` with a passthrough pipeline (`passthrough.yaml`),
//! 4. `weir run` with the same filter + transform as (2)
//!    (`filter-transform.yaml`),
//! 5. –7. `weir run` with tumbling windows (`tumbling-count.yaml`,
//!    `tumbling-count-eos.yaml`, `open-windows.yaml`),
//! 8. –13. the Java peers ([`peers`], `tests/bench/peers/`): Kafka Streams
//!    and Flink doing (4), (5) and (6)'s jobs,
//! 14. a hand-written single-process window program ([`window_ceiling`]):
//!     (5)'s counts with one consumer, in memory, no repartition, no
//!     durable state: the ceiling for (5) and (6),
//! 15. `weir run` with 1,000,000 open windows (`open-windows-1m.yaml`),
//!     then a second run that restores them from the changelog,
//! 16. `weir run` with a versioned stream–table join at event time
//!     (`join-pages.yaml`) against a table of two versions of each page
//!     ([`pages`], topic `bench-pages`, produced once after the input),
//! 17. Kafka Streams doing (16)'s join over a versioned store (KIP-914)
//!     (no Flink peer for this job),
//!
//! then every output topic is read back and checked (exact ids, the
//! batch reference of the window counts: [`windows`], or, for the joins,
//! every record against the table's versions: [`pages`]). Throughput, CPU per
//! record and peak RSS go to a Markdown table on stdout and in
//! `target/bench/results.md` ([`driver`] runs it all), with weir's ratios to
//! Kafka Streams and Flink per job.
//!
//! The binary has three modes, chosen by its arguments:
//! - `--role=raw|handwritten|window …`: one contender process; the bench
//!   re-executes itself (`std::env::current_exe()`) this way for (1), (2)
//!   and (14);
//! - `--bench` (what `cargo bench` passes): the benchmark; needs `WEIR_KAFKA`
//!   (or `.kafka/libs`), `target/release/weir` (under `CARGO_TARGET_DIR`
//!   when set) and the peers built by `scripts/bench-peers.sh` (`make bench`
//!   provides all three);
//! - anything else (`cargo test --all-targets` runs every bench target as a
//!   test): prints one line and exits 0 (no broker, Java or Maven needed).
//!
//! `WEIR_BENCH_RECORDS` overrides the record count (for a quick try);
//! `WEIR_BENCH_ONLY=4,8,9` runs only those contenders (the rest are
//! reported as not run).

#[path = "../common/broker.rs"]
mod broker;

mod at_least_once;
mod data;
mod driver;
mod handwritten;
mod measure;
mod pages;
mod peers;
mod raw;
mod records;
mod report;
mod verify;
mod weir;
mod window_ceiling;
mod windows;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = if let Some(role) = args.iter().find_map(|a| a.strip_prefix("--role=")) {
        at_least_once::role_main(role, &args)
    } else if args.iter().any(|a| a == "--bench") {
        driver::run()
    } else {
        println!("bench: skipped (run make bench)");
        0
    };
    std::process::exit(code);
}
