//! End to end: the built `weir` binary against Apache Kafka (a separate
//! process, DESIGN.md §6), running `pipelines/flight-delays.yaml` over the
//! first 100,000 flights of 2013; the exact-output run also on Tansu, a
//! second, independent implementation of the protocol.
//!
//! Needs `WEIR_KAFKA` and `WEIR_TANSU` (set by `make test`) and
//! `target/data/flights-2013.jsonl` (`make data-full`). Run:
//! `cargo test --test e2e -- --nocapture --test-threads=1`
//!
//! The expected output is computed here in plain Rust, independently of
//! weir. Windows are per key within a partition (no repartition yet), so each
//! origin airport goes to its own partition of `flights`. Windows still open
//! at the end of the input are never emitted by `weir run`, so each partition
//! ends with a sentinel flight 48 h after its last one, which pushes the
//! watermark (max event time − 24 h) past every real window. Completeness is
//! decided by reading the sinks, never by lag (Tansu's high watermark is
//! wrong).

#[path = "common/broker.rs"]
mod broker;
#[path = "common/flights.rs"]
mod flights;

use broker::{free_port, wait_exit, wait_for_port, Broker, Kind, SinkReader, SinkRecord, Weir};
use flights::{flights_case, FlightsCase, Tally, WindowId, ALERTS, HOURLY, ORIGINS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The flights of the year 2013, of which the test reads the first
/// [`INPUT_LINES`].
const INPUT: &str = "target/data/flights-2013.jsonl";
const INPUT_LINES: usize = 100_000;
const SINKS: [&str; 2] = [HOURLY, ALERTS];
/// Generous: a debug build on a small machine.
const COMPLETE_WITHIN: Duration = Duration::from_secs(180);
/// `shutdown_timeout` in the daemon config.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// [`flights::tally`] of the sinks of `pipelines/flight-delays.yaml`, whose
/// topics are the sink names.
fn tally(expected: &BTreeMap<WindowId, Value>, records: &[SinkRecord]) -> Tally {
    flights::tally(expected, records, |topic| Some(topic.to_owned()))
}

/// The daemon config for `weir run`.
fn write_config(dir: &Path, bootstrap: &str, metrics_port: u16, pipelines: &[PathBuf]) -> PathBuf {
    let list: Vec<String> = pipelines
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let cfg = format!(
        "kafka:\n  bootstrap_servers: \"{bootstrap}\"\n  client:\n    session.timeout.ms: \"{}\"\n\
         metrics:\n  listen: \"127.0.0.1:{metrics_port}\"\n\
         log:\n  format: json\n  level: info\n\
         commit_interval: 1s\n\
         shutdown_timeout: {}s\n\
         pipelines: [{}]\n",
        broker::SESSION_TIMEOUT_MS,
        SHUTDOWN_TIMEOUT.as_secs(),
        list.join(", ")
    );
    let path = dir.join("weir.yaml");
    std::fs::write(&path, cfg).expect("write config");
    path
}

/// A broker holding the input, a config for the flights pipeline, and the
/// expectation.
struct Setup {
    dir: tempfile::TempDir,
    broker: Broker,
    case: FlightsCase,
    config: PathBuf,
    metrics_port: u16,
}

/// The broker tests run one at a time even under plain `cargo test` (as in
/// `make test`): two 100k-record runs at once on a small machine would only
/// slow each other down towards their deadlines.
static ONE_BROKER_TEST_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    ONE_BROKER_TEST_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn setup(kind: Kind) -> Setup {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = match kind {
        Kind::Kafka => Broker::kafka(dir.path()),
        Kind::Tansu => Broker::tansu(dir.path()),
    };
    let input = repo().join(INPUT);
    assert!(
        input.is_file(),
        "{}: no such file; generate it with `make data-full` (a prerequisite of `make test`)",
        input.display()
    );
    let case = flights_case(&input, Some(INPUT_LINES));
    broker.create_topic("flights", ORIGINS.len() as i32);
    broker::produce_all(&broker, "flights", &case.records);
    let metrics_port = free_port();
    let config = write_config(
        dir.path(),
        &broker.bootstrap(),
        metrics_port,
        &[repo().join("pipelines/flight-delays.yaml")],
    );
    println!(
        "setup: {} input records ({} cancelled, 3 sentinels) on {kind:?} {}; expecting {} {HOURLY} + {} {ALERTS} records; {:.1?}",
        case.records.len(),
        case.cancelled,
        broker.bootstrap(),
        case.hourly_windows,
        case.alert_windows,
        t0.elapsed()
    );
    Setup {
        dir,
        broker,
        case,
        config,
        metrics_port,
    }
}

impl Setup {
    fn start_weir(&self, name: &str) -> Weir {
        let mut w = Weir::start(self.dir.path(), name, &self.config, &[], self.metrics_port);
        let port = self.metrics_port;
        wait_for_port(port, Duration::from_secs(30), || w.assert_alive());
        w
    }

    fn reader(&self, weir: &mut Weir) -> SinkReader {
        SinkReader::new(&self.broker, &SINKS, Duration::from_secs(60), || {
            weir.assert_alive()
        })
    }

    /// Reads until every expected record is present.
    fn read_all_expected(&self, reader: &mut SinkReader, weir: &mut Weir) {
        let expected = &self.case.expected;
        reader.read_until(
            COMPLETE_WITHIN,
            |recs| tally(expected, recs).present_total() == expected.len(),
            || weir.assert_alive(),
            |recs| tally(expected, recs).summary(),
        );
    }
}

/// The metric counters of the flights pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    records_in: u64,
    out: u64,
    filtered: u64,
    error: u64,
    late: u64,
    dlq: u64,
    sink: u64,
}

fn counts(m: &broker::Metrics) -> Counts {
    Counts {
        records_in: m.sum("weir_records_in_total"),
        out: m.sum("weir_records_out_total"),
        filtered: m.sum("weir_records_filtered_total"),
        error: m.sum("weir_records_error_total"),
        late: m.sum("weir_late_records_total"),
        dlq: m.sum("weir_dlq_records_total"),
        sink: m.sum("weir_sink_records_total"),
    }
}

impl Counts {
    fn balanced(&self) -> bool {
        self.records_in == self.out + self.filtered + self.error + self.late
    }
}

/// Polls /metrics until every record read is accounted for (in = out +
/// filtered + error + late) and, if given, `records_in` is `want_in`: the
/// counters may trail the sink outputs a little.
fn settled_counts(weir: &mut Weir, want_in: Option<u64>) -> Counts {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = weir.metrics();
        let c = counts(&m);
        if c.balanced() && want_in.is_none_or(|n| c.records_in == n) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "metrics did not settle: {c:?} (want records_in {want_in:?} = out + filtered + error + late)\n\
             filtered {:?}\nerror {:?}\nlate {:?}",
            m.series("weir_records_filtered_total"),
            m.series("weir_records_error_total"),
            m.series("weir_late_records_total"),
        );
        weir.assert_alive();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn flights_100k_exact_output() {
    flights_100k_exact_output_on(Kind::Kafka);
}

#[test]
fn flights_100k_exact_output_on_tansu() {
    flights_100k_exact_output_on(Kind::Tansu);
}

fn flights_100k_exact_output_on(kind: Kind) {
    let _one_at_a_time = serialize();
    let t0 = Instant::now();
    let s = setup(kind);
    let mut weir = s.start_weir("weir");
    let mut reader = s.reader(&mut weir);
    s.read_all_expected(&mut reader, &mut weir);
    let t_complete = t0.elapsed();

    // Every input record has been read once the last window closed (the
    // sentinels closed it).
    let c = settled_counts(&mut weir, Some(s.case.records.len() as u64));
    println!(
        "metrics: records in {}, out {}, filtered {}, error {}, late {}, dlq {}, produced to sinks {}",
        c.records_in, c.out, c.filtered, c.error, c.late, c.dlq, c.sink
    );
    assert_eq!(
        c.filtered, s.case.cancelled as u64,
        "filtered = cancelled flights"
    );
    assert_eq!(
        c.error + c.late + c.dlq,
        0,
        "no errors, late records or DLQ records: {c:?}"
    );

    let t_term = Instant::now();
    let status = weir.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    println!("SIGTERM: {status} after {:.1?}", t_term.elapsed());
    assert!(status.success(), "weir exit status after SIGTERM: {status}");

    reader.read_to_end(&s.broker, Duration::from_secs(30));
    let t = tally(&s.case.expected, &reader.records);
    println!(
        "windows emitted: {} records read from the sinks ({} {HOURLY}, {} {ALERTS} expected); {}",
        reader.records.len(),
        s.case.hourly_windows,
        s.case.alert_windows,
        t.summary()
    );
    assert!(
        t.missing.is_empty() && t.wrong.is_empty() && t.unexpected.is_empty(),
        "{}",
        t.summary()
    );
    assert_eq!(t.repeats, 0, "duplicates without a crash: {}", t.summary());
    assert!(t.bad_meta.is_empty(), "{}", t.summary());
    assert_eq!(
        c.sink,
        reader.records.len() as u64,
        "weir_sink_records_total vs records in the sinks"
    );
    println!(
        "flights_100k_exact_output on {kind:?}: all complete after {t_complete:.1?}, total {:.1?}",
        t0.elapsed()
    );
}

#[test]
fn kill_9_mid_stream_loses_nothing() {
    let _one_at_a_time = serialize();
    let t0 = Instant::now();
    let s = setup(Kind::Kafka);
    let mut first = s.start_weir("weir-1");
    let mut reader = s.reader(&mut first);
    let hourly = s.case.hourly_windows;
    let target = hourly * 3 / 10;
    let expected = &s.case.expected;
    reader.read_until(
        COMPLETE_WITHIN,
        |recs| {
            tally(expected, recs)
                .present
                .get(HOURLY)
                .copied()
                .unwrap_or(0)
                >= target
        },
        || first.assert_alive(),
        |recs| tally(expected, recs).summary(),
    );
    first.kill9();
    let at_kill = tally(expected, &reader.records);
    println!(
        "SIGKILL after {:.1?}: {} of {hourly} {HOURLY} windows present, {} sink records read",
        t0.elapsed(),
        at_kill.present.get(HOURLY).copied().unwrap_or(0),
        reader.records.len()
    );
    if at_kill.present_total() == expected.len() {
        println!("warning: every window was already out when weir-1 was killed");
    }
    drop(first);

    let t_restart = Instant::now();
    let mut second = s.start_weir("weir-2");
    s.read_all_expected(&mut reader, &mut second);
    println!(
        "weir-2 completed the sinks {:.1?} after its start",
        t_restart.elapsed()
    );
    // weir-2 replays from the checkpoints, so its records_in is not known
    // in advance; it must still account for every record, none late.
    let c = settled_counts(&mut second, None);
    println!(
        "weir-2 metrics: records in {}, out {}, filtered {}, error {}, late {}, dlq {}, produced to sinks {}",
        c.records_in, c.out, c.filtered, c.error, c.late, c.dlq, c.sink
    );
    assert_eq!(
        c.error + c.late + c.dlq,
        0,
        "weir-2: no errors, late records or DLQ records: {c:?}"
    );
    println!(
        "weir-2 resumed from the checkpoints: read {} of the {} input records",
        c.records_in,
        s.case.records.len()
    );

    let status = second.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    assert!(
        status.success(),
        "weir-2 exit status after SIGTERM: {status}"
    );
    reader.read_to_end(&s.broker, Duration::from_secs(30));
    let t = tally(expected, &reader.records);
    println!(
        "after kill -9 and restart: {} sink records, {} identical repeats; {}",
        reader.records.len(),
        t.repeats,
        t.summary()
    );
    assert!(
        t.missing.is_empty() && t.wrong.is_empty() && t.unexpected.is_empty(),
        "{}",
        t.summary()
    );
    assert!(t.bad_meta.is_empty(), "{}", t.summary());
    println!(
        "kill_9_mid_stream_loses_nothing: total {:.1?}",
        t0.elapsed()
    );
}

/// A small valid pipeline; `broken_pipeline_exits_2_with_line` breaks it.
const PIPELINE: &str = "\
name: flight-delays-broken
source:
  topics: [flights]
  format: json
  event_time: {path: $.dep_ts, unit: ms}
  watermark: {max_out_of_orderness: 24h}
stages:
  - filter: has(value.dep_time) && value.dep_time != null
  - transform:
      set:
        delayed: value.dep_delay > 15
  - key_by: value.origin
  - window:
      tumbling: 1h
      aggregate:
        flights: count()
sinks:
  - topic: departures-hourly
";

/// `file:line:col: ` of the first occurrence of `needle` in `text`.
fn location(file: &str, text: &str, needle: &str) -> String {
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the pipeline"));
    format!("{file}:{}:{}: ", i + 1, line.find(needle).unwrap() + 1)
}

/// Runs weir with `args`, expecting exit code 2 within a few seconds;
/// returns stderr.
fn expect_exit_2(dir: &Path, args: &[&str]) -> String {
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("spawn weir");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("weir {args:?} still running after 10 s; stderr:\n{stderr}");
    };
    println!(
        "weir {args:?}: {status} after {:.1?}\n{stderr}",
        t0.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(2),
        "exit code of weir {args:?}; stderr:\n{stderr}"
    );
    stderr
}

#[test]
fn broken_pipeline_exits_2_with_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let broken = PIPELINE.replace("value.dep_delay > 15", "value.dep_delay > > 15");
    let unknown = PIPELINE.replace(
        "      tumbling: 1h\n",
        "      tumbling: 1h\n      bogus_field: 3\n",
    );
    std::fs::write(d.join("broken.yaml"), &broken).unwrap();
    std::fs::write(d.join("unknown.yaml"), &unknown).unwrap();
    let want_broken = format!(
        "{}stages[1].transform.set.delayed: ",
        location("broken.yaml", &broken, "value.dep_delay > > 15")
    );
    let want_unknown = format!(
        "{}stages[3].window: ",
        location("unknown.yaml", &unknown, "bogus_field")
    );

    // A listener that would see any connection attempt; the config also
    // names a valid pipeline, which the files on the command line override.
    let broker = TcpListener::bind("127.0.0.1:0").unwrap();
    broker.set_nonblocking(true).unwrap();
    let config = write_config(
        d,
        &broker.local_addr().unwrap().to_string(),
        free_port(),
        &[repo().join("pipelines/flight-delays.yaml")],
    );
    let config = config.to_str().unwrap();

    for args in [
        vec!["run", "--config", config, "broken.yaml"],
        vec!["run", "--config", config, "broken.yaml", "unknown.yaml"],
        vec!["lint", "broken.yaml", "unknown.yaml"],
    ] {
        let stderr = expect_exit_2(d, &args);
        assert!(
            stderr.contains(&want_broken),
            "want {want_broken:?} in stderr of {args:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("CEL"),
            "CEL syntax error expected in:\n{stderr}"
        );
        if args.contains(&"unknown.yaml") {
            assert!(
                stderr.contains(&want_unknown),
                "want {want_unknown:?} in stderr of {args:?}:\n{stderr}"
            );
            assert!(stderr.contains("bogus_field"), "{stderr}");
        }
    }
    match broker.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("weir connected to the broker address ({peer}) despite the errors"),
        Err(e) => panic!("accept: {e}"),
    }
}
