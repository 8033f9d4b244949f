//! Contenders (3) and (4): `target/release/weir run --config CFG PIPELINE`
//! with `passthrough.yaml` or `filter-transform.yaml` from this directory.
//!
//! weir is watched from outside through its `/metrics`, sampled every
//! 100 ms: the steady-state window runs from the first sample with
//! `weir_records_in_total > 0` to the first with every input record in and
//! every expected output counted in `weir_sink_records_total`; throughput is
//! the records counted between those two samples over the time between them.
//! (weir counts a sink record when it is handed to the producer, not when it
//! is acknowledged, so the end of the window is "all produced".) CPU time and
//! peak RSS are read from `/proc` at that point; then SIGTERM.

use crate::broker::Metrics;
use crate::measure::{
    cpu_seconds, peak_rss_kib, thread_summary, LoadMeter, Measurement, Proc, RunEnv,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Sampling period of `/metrics`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The daemon config: the bench's broker, weir's defaults otherwise
/// (commit every 1 s), warnings and errors only in the log.
pub fn write_config(dir: &Path, name: &str, bootstrap: &str, metrics_port: u16) -> PathBuf {
    let cfg = format!(
        "# weir daemon config written by the bench (tests/bench/weir.rs)\n\
         kafka:\n  bootstrap_servers: \"{bootstrap}\"\n  client:\n    session.timeout.ms: \"{}\"\n\
         metrics:\n  listen: \"127.0.0.1:{metrics_port}\"\n\
         log:\n  level: warn\n\
         commit_interval: 1s\n",
        crate::broker::SESSION_TIMEOUT_MS
    );
    let cfg = with_client_knob(&cfg, "WEIR_BENCH_CLIENT");
    let path = dir.join(format!("{name}.config.yaml"));
    std::fs::write(&path, cfg).expect("write weir config");
    path
}

/// `cfg` (a daemon config) with the librdkafka properties of the
/// experiment knob `var` added to `kafka.client`:
/// `WEIR_BENCH_CLIENT="linger.ms=20,batch.size=1000000"`.
fn with_client_knob(cfg: &str, var: &str) -> String {
    let extra: String = std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    cfg.replacen("\nmetrics:", &format!("\n{extra}metrics:"), 1)
}

/// `weir run --config CONFIG PIPELINE` in `dir`, without `RUST_LOG`.
fn run_command(weir_bin: &Path, config: &Path, pipeline: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(weir_bin);
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg(pipeline)
        .current_dir(dir)
        .env_remove("RUST_LOG");
    cmd
}

/// `GET /metrics`, parsed; `Err` on any failure (weir may be starting or gone).
fn scrape(port: u16) -> Result<Metrics, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head.lines().next().unwrap_or("").contains(" 200") {
        return Err(format!(
            "GET /metrics: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(Metrics::parse(body))
}

/// One `/metrics` sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    records_in: u64,
    sink: u64,
}

/// The pipeline's counters, for the report.
fn counters(m: &Metrics) -> String {
    [
        ("in", "weir_records_in_total"),
        ("out", "weir_records_out_total"),
        ("filtered", "weir_records_filtered_total"),
        ("error", "weir_records_error_total"),
        ("late", "weir_late_records_total"),
        ("dlq", "weir_dlq_records_total"),
        ("sink", "weir_sink_records_total"),
        ("commits", "weir_commits_total"),
        ("rebalances", "weir_rebalances_total"),
    ]
    .iter()
    .map(|(label, name)| format!("{label} {}", m.sum(name)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Runs `weir run` on `pipeline` until it has read `records` input records
/// and counted `expected_out` sink records, and measures it. With
/// `from_assignment` (a repartitioned pipeline counts a record in only
/// after the repartition topic, and a commit's flush can hold /metrics
/// back), the steady state starts at the first sample after the partitions
/// were assigned.
pub fn measure(
    env: &RunEnv,
    weir_bin: &Path,
    pipeline: &Path,
    name: &str,
    expected_out: u64,
    from_assignment: bool,
) -> Result<Measurement, String> {
    let (dir, records, timeout) = (&env.dir, env.records, env.timeout);
    let port = crate::broker::free_port();
    let config = write_config(dir, name, &env.bootstrap, port);
    let cmd = run_command(weir_bin, &config, pipeline, dir);
    let meter = LoadMeter::start(env.broker_pid);
    let spawned = Instant::now();
    let mut proc = Proc::spawn(cmd, dir, name, false)?;
    let deadline = spawned + timeout;
    let mut first: Option<Sample> = None;
    let mut last_metrics = None;
    let done = loop {
        proc.check_alive()?;
        let at = Instant::now();
        if at > deadline {
            return Err(format!(
                "{name}: not done within {timeout:?}; last counters: {}; stderr tail:\n{}",
                last_metrics.as_ref().map_or("none".into(), counters),
                proc.stderr_tail(20)
            ));
        }
        if let Ok(m) = scrape(port) {
            let s = Sample {
                at,
                records_in: m.sum("weir_records_in_total"),
                sink: m.sum("weir_sink_records_total"),
            };
            let assigned = m.samples.iter().any(|((n, l), v)| {
                n == "weir_rebalances_total" && l.contains("assign") && *v > 0.0
            });
            last_metrics = Some(m);
            if first.is_none() && (s.records_in > 0 || (from_assignment && assigned)) {
                first = Some(s);
            }
            if s.records_in >= records && s.sink >= expected_out {
                break s;
            }
        }
        std::thread::sleep(SAMPLE_EVERY.saturating_sub(at.elapsed()));
    };
    let pid = proc.pid();
    let cpu = cpu_seconds(pid).ok_or("cannot read /proc/<pid>/stat")?;
    let rss = peak_rss_kib(pid).ok_or("cannot read /proc/<pid>/status")?;
    let threads = thread_summary(pid);
    let load = meter.stop();
    let first = first.unwrap_or(done);
    let metrics = last_metrics.expect("a sample was taken");
    let exit = proc.stop(true, Duration::from_secs(40));
    let mut notes = vec![
        format!("counters when done: {}", counters(&metrics)),
        threads,
    ];
    if done.records_in != records || done.sink != expected_out {
        notes.push(format!(
            "counted {} in / {} out, expected {records} / {expected_out}",
            done.records_in, done.sink
        ));
    }
    if first.at == done.at {
        notes.push("first and last sample coincide: window too short to measure".into());
    }
    let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
    if !stderr.trim().is_empty() {
        notes.push(format!(
            "stderr ({}): {} lines, first: {}",
            proc.stderr.display(),
            stderr.lines().count(),
            stderr.lines().next().unwrap_or("")
        ));
    }
    Ok(Measurement {
        records_in: done.records_in,
        records_out: done.sink,
        steady_records: done.records_in - first.records_in,
        steady_seconds: (done.at - first.at).as_secs_f64(),
        startup_seconds: (first.at - spawned).as_secs_f64(),
        cpu_seconds: cpu,
        peak_rss_kib: rss,
        load,
        exit,
        notes,
    })
}

/// What a restore from the changelog took, from weir's log line.
#[derive(Debug, Clone, Copy)]
pub struct Restore {
    /// Windows restored.
    pub windows: u64,
    /// Changelog records read.
    pub records: u64,
    /// Changelog bytes read (keys and payloads).
    pub bytes: u64,
    /// Seconds from the assignment to the state in place.
    pub seconds: f64,
    /// Peak resident set (VmHWM) of the restoring process once the state
    /// is in place, KiB.
    pub peak_rss_kib: u64,
}

/// Starts `weir run` on `pipeline` again (same group: its state is in the
/// changelog), waits for the "state restored from the changelog" log lines
/// of its assignment, reads its peak RSS, and stops it. The figures are
/// those of the first such line (one assignment of every partition).
pub fn measure_restore(
    env: &RunEnv,
    weir_bin: &Path,
    pipeline: &Path,
    name: &str,
) -> Result<Restore, String> {
    let dir = &env.dir;
    let port = crate::broker::free_port();
    let config = dir.join(format!("{name}.config.yaml"));
    let cfg = format!(
        "kafka:\n  bootstrap_servers: \"{}\"\n  client:\n    session.timeout.ms: \"{}\"\n\
         metrics:\n  listen: \"127.0.0.1:{port}\"\n\
         log:\n  format: json\n  level: info\n\
         commit_interval: 1s\n",
        env.bootstrap,
        crate::broker::SESSION_TIMEOUT_MS
    );
    // Experiment knob for the restoring run only (its reader's fetch sizes,
    // say): `WEIR_BENCH_RESTORE_CLIENT="max.partition.fetch.bytes=4194304"`.
    let cfg = with_client_knob(&cfg, "WEIR_BENCH_RESTORE_CLIENT");
    std::fs::write(&config, cfg).map_err(|e| e.to_string())?;
    let cmd = run_command(weir_bin, &config, pipeline, dir);
    let mut proc = Proc::spawn(cmd, dir, name, false)?;
    let deadline = Instant::now() + env.timeout;
    let line = loop {
        proc.check_alive()?;
        let log = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("state restored from the changelog"))
        {
            break l.to_owned();
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name}: no restore logged within {:?}",
                env.timeout
            ));
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    // Nothing is left to process (the first run read the whole input):
    // the peak so far is the restore's.
    let rss = peak_rss_kib(proc.pid()).ok_or("cannot read /proc/<pid>/status")?;
    let _ = proc.stop(true, Duration::from_secs(40));
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    let f = &v["fields"];
    Ok(Restore {
        windows: f["windows"].as_u64().unwrap_or(0),
        records: f["records"].as_u64().unwrap_or(0),
        bytes: f["bytes"].as_u64().unwrap_or(0),
        seconds: f["seconds"].as_f64().unwrap_or(f64::NAN),
        peak_rss_kib: rss,
    })
}
