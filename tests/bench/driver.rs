//! The benchmark run (`--bench`): start Tansu, produce the input once (timed
//! on its own), run the four contenders one after another, read back and
//! check every output topic, compare (2) with (4), and report.
//!
//! Logs, configs and the broker's log stay in `target/bench/run/` for a look
//! afterwards; the report goes to stdout and `target/bench/results.md`.
//! Exit code 1 only when a contender failed or an output is wrong; goals
//! that are not met are reported (SHORT), not failed.

use crate::at_least_once::measure_role;
use crate::broker::Broker;
use crate::data::{self, Produced};
use crate::measure::{clk_tck, cpus, find_pid, RunEnv};
use crate::report::{self, Goal, Report, Row};
use crate::verify::{self, Contents, SpotCheck};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const INPUT: &str = "bench-input";

/// Bound on one contender's run (start-up included).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// How a contender runs.
enum How {
    /// This binary as `--role=NAME`.
    Role { role: &'static str },
    /// `weir run` with `tests/bench/PIPELINE.yaml`.
    Weir { pipeline: &'static str },
}

/// One contender and what its output topic must hold.
struct Contender {
    label: &'static str,
    how: How,
    /// Output topic (for weir, as in its pipeline file).
    topic: &'static str,
    /// Consumer group (for weir, `weir.<pipeline name>`).
    group: &'static str,
    /// Output holds only the status-200 records (else every record).
    filtered: bool,
    /// Row it is compared with.
    baseline: Option<usize>,
    /// Its outputs are window results (not checked record by record here:
    /// tests/differential.rs and tests/crash_tansu.rs check them).
    windowed: bool,
}

const CONTENDERS: [Contender; 7] = [
    Contender {
        label: "(1) raw rdkafka loop",
        how: How::Role { role: "raw" },
        topic: "bench-out-raw",
        group: "bench-raw",
        filtered: false,
        baseline: None,
        windowed: false,
    },
    Contender {
        label: "(2) hand-written serde_json",
        how: How::Role {
            role: "handwritten",
        },
        topic: "bench-out-handwritten",
        group: "bench-handwritten",
        filtered: true,
        baseline: None,
        windowed: false,
    },
    Contender {
        label: "(3) weir passthrough",
        how: How::Weir {
            pipeline: "passthrough",
        },
        topic: "bench-out-weir-passthrough",
        group: "weir.bench-passthrough",
        filtered: false,
        baseline: Some(0),
        windowed: false,
    },
    Contender {
        label: "(4) weir filter+transform",
        how: How::Weir {
            pipeline: "filter-transform",
        },
        topic: "bench-out-weir-filter-transform",
        group: "weir.bench-filter-transform",
        filtered: true,
        baseline: Some(1),
        windowed: false,
    },
    Contender {
        label: "(5) weir tumbling count, 10k keys",
        how: How::Weir {
            pipeline: "tumbling-count",
        },
        topic: "bench-out-weir-tumbling",
        group: "weir.bench-tumbling",
        filtered: false,
        baseline: Some(1),
        windowed: true,
    },
    Contender {
        label: "(6) weir tumbling count, exactly_once",
        how: How::Weir {
            pipeline: "tumbling-count-eos",
        },
        topic: "bench-out-weir-tumbling-eos",
        group: "weir.bench-tumbling-eos",
        filtered: false,
        baseline: Some(4),
        windowed: true,
    },
    Contender {
        label: "(7) weir 100k open windows",
        how: How::Weir {
            pipeline: "open-windows",
        },
        topic: "bench-out-weir-open-windows",
        group: "weir.bench-open-windows",
        filtered: false,
        baseline: None,
        windowed: true,
    },
];

/// Row of the 100k open windows run.
const OPEN_WINDOWS_ROW: usize = 6;
/// Peak RSS goal of 100k open windows, MB.
const OPEN_WINDOWS_RSS_MB: f64 = 100.0;
/// Restore goal for 100k windows, s.
const RESTORE_SECONDS: f64 = 5.0;

/// weir against (1) and (2): throughput at least, CPU per record at most.
const GOALS: [Goal; 6] = [
    Goal {
        row: 2,
        throughput: true,
        limit: 0.9,
    },
    Goal {
        row: 2,
        throughput: false,
        limit: 1.2,
    },
    Goal {
        row: 3,
        throughput: true,
        limit: 0.9,
    },
    Goal {
        row: 3,
        throughput: false,
        limit: 1.5,
    },
    Goal {
        row: 4,
        throughput: true,
        limit: 0.8,
    },
    Goal {
        row: 5,
        throughput: true,
        limit: 0.5,
    },
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Input record count: `WEIR_BENCH_RECORDS` or 1,000,000.
fn records() -> u64 {
    std::env::var("WEIR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1_000_000)
}

/// The benchmark; the process exit code.
pub fn run() -> i32 {
    let t_start = Instant::now();
    let n = records();
    let weir_bin = repo().join("target/release/weir");
    if !weir_bin.is_file() {
        eprintln!(
            "bench: {} is missing; build it with `cargo build --release --bins` (`make bench` does)",
            weir_bin.display()
        );
        return 1;
    }
    let work = repo().join("target/bench/run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create target/bench/run");

    let tansu = Broker::tansu(&work);
    let broker_pid = find_pid(&["broker", &format!("tcp://127.0.0.1:{}", tansu.port)]);
    let mut header = context_lines(&weir_bin);
    if broker_pid.is_none() {
        header.push("broker pid not found: its CPU time is not reported".into());
    }
    println!(
        "bench: Tansu on {} (logs in {})",
        tansu.bootstrap(),
        work.display()
    );

    tansu.create_topic(INPUT, data::PARTITIONS);
    for c in &CONTENDERS {
        tansu.create_topic(c.topic, data::PARTITIONS);
    }
    println!(
        "bench: producing {n} records to {INPUT} ({} partitions)…",
        data::PARTITIONS
    );
    let input = match data::produce(&tansu, INPUT, n) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            return 1;
        }
    };
    let produce_line = format!(
        "input: {n} records, {:.1} MB ({:.0} bytes/record), {} with status 200; produced in {:.2} s ({} records/s, acks=all, idempotent)",
        input.bytes as f64 / 1e6,
        input.bytes as f64 / n as f64,
        input.ok_count(),
        input.seconds,
        report::thousands(n as f64 / input.seconds)
    );
    println!("bench: {produce_line}");

    let env = RunEnv {
        dir: work,
        bootstrap: tansu.bootstrap(),
        broker_pid,
        input: INPUT.into(),
        records: n,
        timeout: RUN_TIMEOUT,
    };
    let mut rows = Vec::new();
    let mut contents = Vec::new();
    for c in &CONTENDERS {
        let (row, got) = run_one(c, &env, &weir_bin, &tansu, &input);
        rows.push(row);
        contents.push(got);
    }
    let checks = spot_checks(&contents, &input);
    let mut extra = Vec::new();
    if let Ok(m) = &rows[OPEN_WINDOWS_ROW].run {
        let mb = m.peak_rss_kib as f64 / 1024.0;
        extra.push(format!(
            "{} {}: peak RSS {mb:.1} MB (goal < {OPEN_WINDOWS_RSS_MB} MB)",
            if mb < OPEN_WINDOWS_RSS_MB {
                "PASS "
            } else {
                "SHORT"
            },
            rows[OPEN_WINDOWS_ROW].label
        ));
    }
    println!("bench: restore of (7)'s windows from the changelog …");
    let restore = crate::weir::measure_restore(
        &env,
        &weir_bin,
        &repo().join("tests/bench/open-windows.yaml"),
        "weir-open-windows-restore",
    );
    match &restore {
        Ok(r) => extra.push(format!(
            "{} restore of {} windows from the changelog ({} records, {:.1} MB): {:.2} s (goal < {RESTORE_SECONDS} s)",
            if r.seconds < RESTORE_SECONDS { "PASS " } else { "SHORT" },
            r.windows,
            r.records,
            r.bytes as f64 / 1e6,
            r.seconds
        )),
        Err(e) => extra.push(format!("FAIL  restore of (7)'s windows: {e}")),
    }
    println!("bench: {}", extra.join("\nbench: "));

    let failed = rows
        .iter()
        .any(|r| r.run.is_err() || !r.output_ok || r.committed.is_err())
        || checks.iter().any(|(_, sc)| !sc.ok())
        || restore.is_err();
    let md = Report {
        header,
        produce: produce_line,
        rows: &rows,
        goals: &GOALS,
        extra_goals: &extra,
        checks: &checks,
        records: n,
        wall_seconds: t_start.elapsed().as_secs_f64(),
    }
    .markdown();
    println!("\n{md}");
    let out = repo().join("target/bench/results.md");
    match std::fs::write(&out, &md) {
        Ok(()) => println!("bench: report written to {}", out.display()),
        Err(e) => eprintln!("bench: cannot write {}: {e}", out.display()),
    }
    if failed {
        eprintln!("bench: a contender failed or an output is wrong (see above)");
        1
    } else {
        0
    }
}

/// Runs contender `c`, then reads back and checks its output topic.
fn run_one(
    c: &Contender,
    env: &RunEnv,
    weir_bin: &Path,
    tansu: &Broker,
    input: &Produced,
) -> (Row, Option<Contents>) {
    let n = env.records;
    let expected = if c.windowed {
        0 // window results: done when every input record is in
    } else if c.filtered {
        input.ok_count()
    } else {
        n
    };
    println!("bench: {} …", c.label);
    let run = match c.how {
        How::Role { role } => measure_role(env, role, c.group, c.topic),
        How::Weir { pipeline } => crate::weir::measure(
            env,
            weir_bin,
            &repo().join(format!("tests/bench/{pipeline}.yaml")),
            &format!("weir-{pipeline}"),
            expected,
            c.windowed,
        ),
    };
    match &run {
        Ok(m) => println!(
            "bench: {}: {} records/s over {:.2} s after {:.2} s start-up; CPU {:.2} s ({:.2} µs/record); peak RSS {:.1} MB; stopped: {}",
            c.label,
            report::thousands(m.records_per_s()),
            m.steady_seconds,
            m.startup_seconds,
            m.cpu_seconds,
            m.cpu_us_per_record(n),
            m.peak_rss_kib as f64 / 1024.0,
            m.exit
        ),
        Err(e) => println!("bench: {}: FAILED: {e}", c.label),
    }
    let wanted = if c.filtered {
        input.ok.clone()
    } else {
        vec![true; n as usize]
    };
    let (output, output_ok, got) = if c.windowed {
        (
            "window results, not checked record by record here (tests/differential.rs, tests/crash_tansu.rs check them)".to_owned(),
            true,
            None,
        )
    } else {
        match verify::read_topic(tansu, c.topic, &wanted, Duration::from_secs(300)) {
            Ok(got) => (got.summary(expected), got.exact(expected), Some(got)),
            Err(e) => (format!("cannot read: {e}"), false, None),
        }
    };
    println!("bench: {} output {}: {output}", c.label, c.topic);
    let committed = verify::committed(tansu, c.group, &env.input, n);
    println!(
        "bench: {} committed offsets: {}",
        c.label,
        committed.as_ref().unwrap_or_else(|e| e)
    );
    let row = Row {
        label: c.label.into(),
        run,
        output,
        output_ok,
        committed,
        baseline: c.baseline,
    };
    (row, got)
}

/// Sampled records: passthrough outputs against the input, (2) against (4).
fn spot_checks(contents: &[Option<Contents>], input: &Produced) -> Vec<(String, SpotCheck)> {
    let n = input.ok.len() as u64;
    let mut checks = Vec::new();
    for (c, got) in CONTENDERS.iter().zip(contents) {
        if let (false, Some(got)) = (c.filtered, got) {
            let what = format!("{} output vs input, key and parsed JSON", c.label);
            checks.push((what, verify::against_input(got, n)));
        }
    }
    if let (Some(a), Some(b)) = (&contents[1], &contents[3]) {
        checks.push((
            "(2) vs (4) for the same ids, key and parsed JSON".to_owned(),
            verify::against_each_other(a, b, &input.ok),
        ));
    }
    checks
}

/// When, on what, and with which binary the bench ran.
fn context_lines(weir_bin: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let (tck, tck_read) = clk_tck();
    lines.push(format!(
        "{} · commit {}{} · {} CPUs · load average at start {} · CLK_TCK {tck}{}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command_output("git", &["rev-parse", "--short", "HEAD"]),
        if command_output("git", &["status", "--porcelain", "--", "src"]).is_empty() {
            ""
        } else {
            " + uncommitted changes in src/"
        },
        cpus(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if tck_read { "" } else { " (assumed)" },
    ));
    let bin_time = std::fs::metadata(weir_bin).and_then(|m| m.modified()).ok();
    if let (Some(b), Some(s)) = (bin_time, newest_mtime(&repo().join("src"))) {
        if s > b {
            lines.push(format!(
                "WARNING: a file under src/ is {:.0} s newer than target/release/weir: the binary measured may not be the current source",
                s.duration_since(b).unwrap_or_default().as_secs_f64()
            ));
        }
    }
    lines
}

/// Newest modification time of any file under `dir`.
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let t = if e.file_type().ok()?.is_dir() {
            newest_mtime(&e.path())
        } else {
            e.metadata().ok()?.modified().ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// Trimmed stdout of a command run in the repository (empty on failure).
fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .current_dir(repo())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
