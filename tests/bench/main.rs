//! `make bench`: weir against hand-written Rust on a real broker.
//!
//! On a Tansu broker of its own, 1,000,000 JSON records of about 200 bytes
//! in 8 partitions are consumed, one contender after another, by four
//! separate OS processes, each in its own consumer group, writing its own
//! output topic, all at-least-once with weir's client defaults:
//!
//! 1. a raw rdkafka consume → produce loop ([`raw`]),
//! 2. a hand-written serde_json filter + transform ([`handwritten`]),
//! 3. `weir run` with a passthrough pipeline (`passthrough.yaml`),
//! 4. `weir run` with the same filter + transform as (2)
//!    (`filter-transform.yaml`),
//!
//! then every output topic is read back and checked. Throughput, CPU per
//! record and peak RSS go to a Markdown table on stdout and in
//! `target/bench/results.md` ([`driver`] runs it all).
//!
//! The binary has three modes, chosen by its arguments:
//! - `--role=raw|handwritten …`: one contender process; the bench re-executes
//!   itself (`std::env::current_exe()`) this way for (1) and (2);
//! - `--bench` (what `cargo bench` passes): the benchmark; needs `WEIR_TANSU`
//!   and `target/release/weir` (`make bench` provides both);
//! - anything else (`cargo test --all-targets` runs every bench target as a
//!   test): prints one line and exits 0.
//!
//! `WEIR_BENCH_RECORDS` overrides the record count (for a quick try).

#[path = "../common/broker.rs"]
mod broker;

mod at_least_once;
mod data;
mod driver;
mod handwritten;
mod measure;
mod raw;
mod report;
mod verify;
mod weir;

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
