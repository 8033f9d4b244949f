//! `weir dev` end to end on its embedded broker: the README's example runs
//! to the end of its input and exits by itself; `--follow` runs on until
//! SIGTERM; and what a user sees when a window result fails at the
//! end-of-input flush under `errors.policy: fail`; and the joins of
//! `pipelines/flight-weather.yaml` with its tables read from their topics.

#[path = "common/flight_weather.rs"]
mod flight_weather;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a `weir dev` run may take before the test kills it and fails.
const DEADLINE: Duration = Duration::from_secs(120);

const README_ARGS: [&str; 4] = [
    "dev",
    "pipelines/flight-delays.yaml",
    "--input",
    "flights=pipelines/data/flights-2013-01-01-02.jsonl",
];
const HOURLY: &str = r#"{"topic":"departures-hourly","#;
const ALERTS: &str = r#"{"topic":"delay-alerts","#;
const README_SUMMARY: &str = "weir dev: records in 1785, out 1773, filtered 12, late 0, errors 0; produced 131 to sinks, 0 to the DLQ; printed 131";
const README_FIRST: &str = r#"{"topic":"departures-hourly","key":"EWR","value":{"key":"EWR","window":{"start":1357034400000,"end":1357038000000},"flights":5,"avg_dep_delay":-2.0,"max_dep_delay":2,"delayed":0}}"#;
const README_LAST_ALERT: &str = r#"{"topic":"delay-alerts","key":"JFK","value":{"key":"JFK","window":{"start":1357192800000,"end":1357196400000},"flights":1,"avg_dep_delay":156.0,"max_dep_delay":156,"delayed":1}}"#;

/// A running `weir dev`: stdout comes line by line through `lines`, stderr
/// is collected by a thread until the process closes it (at exit). Killed
/// when dropped still running (a failed assertion).
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<String>>,
}

impl Dev {
    fn start(args: &[&str]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weir dev");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(out).lines() {
                let line = line.expect("stdout is UTF-8");
                let _ = tx.send(line.clone());
                all.push(line);
            }
            all
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Dev {
            child,
            lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits for the next stdout line until `deadline`; `None` at the end
    /// of stdout or when the deadline passes.
    fn next_line(&self, deadline: Instant) -> Option<String> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// What the process wrote, once it closed stdout and stderr.
    fn output(&mut self) -> (Vec<String>, String) {
        let out = self.stdout.take().map(|h| h.join().expect("stdout reader"));
        let err = self.stderr.take().map(|h| h.join().expect("stderr reader"));
        (out.unwrap_or_default(), err.unwrap_or_default())
    }

    /// Waits until the process exits by itself, at most until `deadline`
    /// (the end of its stdout and stderr, then its status); past it, kills
    /// the process and fails with what it wrote.
    fn wait(mut self, deadline: Instant) -> (ExitStatus, Vec<String>, String) {
        // stdout closes when the process exits; drain the lines not read yet.
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let (out, err) = self.output();
                    panic!(
                        "weir dev did not exit within {DEADLINE:?} (killed); {} stdout lines, stderr:\n{err}",
                        out.len()
                    );
                }
            }
        }
        let (out, err) = self.output();
        let status = self.child.wait().expect("wait for weir dev");
        (status, out, err)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks the README's 131 records: 114 hourly results, whose first is the
/// README's first line, and 17 alerts, whose last is the README's last line
/// (the two topics interleave as the printer fetches them).
fn assert_readme_records(out: &[String]) {
    assert_eq!(out.len(), 131, "{out:#?}");
    let hourly: Vec<&String> = out.iter().filter(|l| l.starts_with(HOURLY)).collect();
    let alerts: Vec<&String> = out.iter().filter(|l| l.starts_with(ALERTS)).collect();
    assert_eq!((hourly.len(), alerts.len()), (114, 17), "{out:#?}");
    assert_eq!(hourly[0], README_FIRST);
    assert_eq!(alerts[alerts.len() - 1], README_LAST_ALERT);
}

#[test]
fn the_readme_example_prints_its_records_and_exits_by_itself() {
    let started = Instant::now();
    let (status, out, err) = Dev::start(&README_ARGS).wait(started + DEADLINE);
    assert_eq!(status.code(), Some(0), "{err}");
    assert_readme_records(&out);
    assert_eq!(err.lines().last(), Some(README_SUMMARY), "{err}");
    eprintln!("weir dev exited after {:?}", started.elapsed());
}

/// With `--follow` the input's end flushes nothing: only the 59 hours the
/// watermark (24h behind the last departure) has passed are printed.
const FOLLOW_SUMMARY: &str = "weir dev: records in 1785, out 1773, filtered 12, late 0, errors 0; produced 59 to sinks, 0 to the DLQ; printed 59";

#[cfg(unix)]
#[test]
fn follow_runs_on_after_the_input_until_sigterm() {
    let deadline = Instant::now() + DEADLINE;
    let mut dev = Dev::start(&[
        "dev",
        "--follow",
        README_ARGS[1],
        README_ARGS[2],
        README_ARGS[3],
    ]);
    for n in 0..59 {
        assert!(
            dev.next_line(deadline).is_some(),
            "stdout ended or timed out after {n} records"
        );
    }
    // Without --follow, the end of the input flushes the open windows and
    // the run exits right after; with it, nothing more comes and it stays up.
    assert_eq!(
        dev.next_line(Instant::now() + Duration::from_secs(3)),
        None,
        "no flush at the end of the input"
    );
    assert!(
        dev.child.try_wait().expect("try_wait").is_none(),
        "weir dev --follow exited before SIGTERM"
    );
    let term = Command::new("kill")
        .args(["-TERM", &dev.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let (status, out, err) = dev.wait(Instant::now() + DEADLINE);
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(out.len(), 59, "{out:#?}");
    let first_hourly = out.iter().find(|l| l.starts_with(HOURLY));
    assert_eq!(first_hourly.map(String::as_str), Some(README_FIRST));
    assert_eq!(err.lines().last(), Some(FOLLOW_SUMMARY), "{err}");
}

#[test]
fn policy_fail_stops_on_a_result_that_fails_when_windows_are_flushed() {
    let (status, out, stderr) = Dev::start(&[
        "dev",
        "tests/fixtures/dev/fail-at-flush.yaml",
        "--input",
        "in=tests/fixtures/dev/fail-at-flush.jsonl",
    ])
    .wait(Instant::now() + DEADLINE);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "weir dev: pipeline `failp` stopped (errors.policy: fail): window result (key null, window {\"start\":0,\"end\":60000}) failed in stage 1:transform: `value.n / 0`: Division by zero of Int(2)"
        ),
        "{stderr}"
    );
    assert!(out.is_empty(), "no result reaches the sink");
}

/// `pipelines/flight-weather.yaml` as its header shows: the weather and
/// planes tables are read from their topics (`--input` for table topics)
/// before any flight is joined (T1), flights wait for the weather (T4),
/// and every hourly window equals the batch reference computed in the test.
#[test]
fn flight_weather_joins_the_tables_given_as_input() {
    let dev = Dev::start(&[
        "dev",
        "pipelines/flight-weather.yaml",
        "--input",
        "flights=pipelines/data/flights-2013-01-01-02.jsonl",
        "--input",
        "weather=pipelines/data/weather-2013-01-01-02.jsonl",
        "--input",
        "planes=pipelines/data/planes.jsonl",
    ]);
    let (status, out, err) = dev.wait(Instant::now() + DEADLINE);
    assert!(status.success(), "{status}: {err}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/data");
    let r = flight_weather::reference(
        &dir.join("flights-2013-01-01-02.jsonl"),
        &dir.join("weather-2013-01-01-02.jsonl"),
        &dir.join("planes.jsonl"),
    );
    assert_eq!(
        (
            r.flights,
            r.filtered,
            r.weather_unmatched,
            r.planes_unmatched
        ),
        (1785, 12, 0, 289)
    );
    let records: Vec<(String, serde_json::Value)> = out
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .map(|v| {
            assert_eq!(v["topic"], flight_weather::SINK, "{v}");
            (
                v["key"].as_str().expect("key").to_owned(),
                v["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        flight_weather::compare(&records, &r.windows, false),
        Ok((109, 0))
    );
    assert_eq!(
        err,
        "weir dev: records in 1785, out 1773, filtered 12, late 0, errors 0; produced 109 to sinks, 0 to the DLQ; printed 109\n"
    );
}

/// An input larger than the embedded broker keeps per partition (the mock
/// cluster drops the oldest records beyond 5 MiB) is refused with exit 2,
/// naming the partitions that would hold it, instead of losing records.
#[test]
fn an_input_the_embedded_broker_cannot_hold_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("big.jsonl");
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1_000));
    std::fs::write(&file, line.repeat(4_000)).expect("write input");
    let input = format!("flights={}", file.display());
    let dev = Dev::start(&["dev", "pipelines/flight-delays.yaml", "--input", &input]);
    let (status, out, err) = dev.wait(Instant::now() + DEADLINE);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        err,
        format!("weir dev: --input {input}: 3.9 MiB over 1 partition(s) is more than the embedded broker keeps per partition (3 MiB of input; librdkafka's mock cluster drops the oldest records beyond 5 MiB); expected --partitions 2 or more, or `weir run` against a Kafka cluster\n")
    );
}
