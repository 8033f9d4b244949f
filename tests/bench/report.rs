//! The benchmark's report: the Markdown results table, the ratios of weir to
//! its hand-written counterparts, the PASS/SHORT goal checks and the
//! details behind them. Printed, and written to `target/bench/results.md`.

use crate::measure::Measurement;
use crate::verify::SpotCheck;
use std::fmt::Write as _;

/// Everything the report shows.
pub struct Report<'a> {
    /// Date, commit, machine; warnings about the setup.
    pub header: Vec<String>,
    /// The input and how long producing it took.
    pub produce: String,
    /// One per contender.
    pub rows: &'a [Row],
    /// weir against the peers, per job.
    pub peer_jobs: &'a [PeerJob],
    /// weir's window jobs against the hand-written window ceiling:
    /// (weir row, ceiling row).
    pub ceiling: &'a [(usize, usize)],
    /// weir's goals.
    pub goals: &'a [Goal],
    /// Goal lines that are not ratios (memory, restore time).
    pub extra_goals: &'a [String],
    /// Spot checks of outputs: what was compared, and the result.
    pub checks: &'a [(String, SpotCheck)],
    /// Input records.
    pub records: u64,
    /// The whole bench, seconds.
    pub wall_seconds: f64,
}

impl Report<'_> {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let n = self.records;
        let mut md = String::from("# weir pipeline benchmark (`make bench`)\n\n");
        for h in &self.header {
            let _ = writeln!(md, "{h}\n");
        }
        let _ = writeln!(
            md,
            "{}\n\n{}\n## weir against Kafka Streams and Flink\n\n{}",
            self.produce,
            table(self.rows, n),
            peer_table(self.rows, self.peer_jobs, n)
        );
        md += "Ratios are weir's value over the peer's: throughput above 1 and CPU per record or \
               RSS below 1 are in weir's favour. A peer whose output is wrong or that failed is \
               marked so in the table above and its ratios are still shown (or n/a).\n\n";
        if !self.ceiling.is_empty() {
            let _ = writeln!(
                md,
                "## weir's window jobs against the hand-written window ceiling\n\n{}",
                ceiling_table(self.rows, self.ceiling, n)
            );
            md += "The ceiling (14) is one consumer with in-memory counts and weir's watermark \
                   rule, without repartition, changelog or checkpoints (tests/bench/window_ceiling.rs); \
                   issue 11's target is (5) and (6) at ≥ 0.40× its throughput.\n\n";
        }
        md += "Records/s: steady state, from the first output to all input read and all \
               output produced. (1), (2) time themselves: first message consumed → every \
               output acknowledged. (3), (4): weir's /metrics sampled every 100 ms; records \
               counted between the first sample showing input and the first showing all of \
               it and every expected output (weir counts an output when it hands it to the \
               producer). CPU: user + system time of the whole process, start-up and group \
               join included, per input record. Peak RSS: VmHWM. Ratios: (3) against (1), \
               (4) and (5) against (2), (6) against (5); (5) and (6) also against (14) \
               (above). (5)–(7) and (14) are done when every input record is in (their window \
               results are counted as they are produced); weir's steady state starts when the \
               partitions are assigned. (8)–(13), the Kafka Streams and Flink peers (JVM \
               processes), time themselves like (1) and (2): first input record counted → every \
               input record in and, for filter + transform, every expected output in the output \
               topic; CPU and RSS are the JVM's. (14), the hand-written window ceiling, times itself \
               from its first input record to every input record in (results handed to its \
               producer as windows close). Output: exact ids for (1)–(4), (8), (9); the batch \
               reference for the tumbling counts (5), (6), (10)–(14). (16) and (17), the \
               stream–table join (tests/bench/pages.rs), are timed like (3) and (8) (done when every \
               input record is in and every joined record out; weir's table is read before its \
               first record counts, Kafka Streams' during its run) and checked record by record: \
               exact ids, each record its input record plus the version of its page valid at its \
               ts.\n\n## Goals\n\n```\n";
        for g in goal_lines(self.rows, self.goals, n) {
            let _ = writeln!(md, "{g}");
        }
        for g in self.extra_goals {
            let _ = writeln!(md, "{g}");
        }
        md += "```\n\n## Checks\n\n";
        for (what, sc) in self.checks {
            let verdict = if sc.ok() { "ok" } else { "WRONG" };
            let _ = writeln!(md, "- {what}: {verdict}, {}", sc.summary());
        }
        let _ = write!(
            md,
            "\n## Details\n\n{}\n\"other CPU\": busy CPU time of the machine during the run \
             minus the contender, the broker and the bench itself (e.g. a compiler running \
             meanwhile); 2 cores give 2 CPU-seconds per second.\n\n\
             Total bench wall time: {:.1} s (broker start, produce, every run, output checks).\n",
            details(self.rows),
            self.wall_seconds
        );
        md
    }
}

/// One contender's line of the report.
pub struct Row {
    /// `(1) raw rdkafka loop`, …
    pub label: String,
    /// What it measured, or why it could not.
    pub run: Result<Measurement, String>,
    /// The output check, one line.
    pub output: String,
    /// The output holds exactly the expected records.
    pub output_ok: bool,
    /// The output was checked (else `output_ok` says nothing).
    pub checked: bool,
    /// The group's committed offsets after the stop: `Ok` when at the end
    /// of the input.
    pub committed: Result<String, String>,
    /// Index of the row it is compared with, if any.
    pub baseline: Option<usize>,
    /// A Kafka Streams or Flink peer.
    pub peer: bool,
}

/// One job that weir and the peers both run: their rows.
pub struct PeerJob {
    /// The job, for the table.
    pub job: &'static str,
    /// weir's row.
    pub weir: usize,
    /// Kafka Streams' and Flink's rows; `None` when that peer has no
    /// contender for the job (reported as not applicable).
    pub peers: [Option<usize>; 2],
}

/// The peers of [`PeerJob::peers`], in order.
const PEER_NAMES: [&str; 2] = ["Kafka Streams", "Flink"];

/// A goal: weir's throughput at least, or CPU per record at most, a multiple
/// of its counterpart's.
pub struct Goal {
    /// Row of weir.
    pub row: usize,
    /// Throughput (true) or CPU per record (false).
    pub throughput: bool,
    /// The multiple.
    pub limit: f64,
    /// Row it is compared with, instead of the row's own baseline.
    pub against: Option<usize>,
}

/// Throughput and CPU ratios of row `i` to its baseline.
pub fn ratios(rows: &[Row], i: usize, records: u64) -> Option<(f64, f64)> {
    ratios_to(rows, i, rows[i].baseline?, records)
}

/// Throughput and CPU ratios of row `i` to row `b`.
pub fn ratios_to(rows: &[Row], i: usize, b: usize, records: u64) -> Option<(f64, f64)> {
    let m = rows[i].run.as_ref().ok()?;
    let b = rows[b].run.as_ref().ok()?;
    Some((
        m.records_per_s() / b.records_per_s(),
        m.cpu_us_per_record(records) / b.cpu_us_per_record(records),
    ))
}

fn short_label(label: &str) -> &str {
    label.split(' ').next().unwrap_or(label)
}

/// Output check of a row, one word.
fn verdict(r: &Row) -> &'static str {
    match (&r.run, r.checked, r.output_ok, &r.committed) {
        (Err(_), ..) => "FAILED",
        (_, true, false, _) => "WRONG",
        (_, _, _, Err(_)) => "WRONG (offsets)",
        (_, false, ..) => "not checked",
        _ => "ok",
    }
}

/// The results table (Markdown).
pub fn table(rows: &[Row], records: u64) -> String {
    let mut s = String::from(
        "| contender | records/s | CPU µs/record | peak RSS MB | output | ratio |\n|---|---:|---:|---:|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let ratio = match (r.baseline, ratios(rows, i, records)) {
            (Some(b), Some((t, c))) => format!(
                "{t:.2}× throughput, {c:.2}× CPU of {}",
                short_label(&rows[b].label)
            ),
            (Some(_), None) => "n/a".into(),
            (None, _) if r.peer => "peer".into(),
            (None, _) => "baseline".into(),
        };
        let ok = verdict(r);
        match &r.run {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} | {:.1} | {ok} | {ratio} |",
                    r.label,
                    thousands(m.records_per_s()),
                    m.cpu_us_per_record(records),
                    m.peak_rss_kib as f64 / 1024.0,
                );
            }
            Err(_) => {
                let _ = writeln!(s, "| {} | FAILED | – | – | {ok} | {ratio} |", r.label);
            }
        }
    }
    s
}

/// weir against each peer, per job: throughput, CPU per record and peak
/// RSS ratios (weir over peer), with the peer's output verdict.
pub fn peer_table(rows: &[Row], jobs: &[PeerJob], records: u64) -> String {
    let mut s = String::from(
        "| job | weir | peer | peer output | throughput weir/peer | CPU per record weir/peer | peak RSS weir/peer |\n|---|---|---|---|---:|---:|---:|\n",
    );
    for j in jobs {
        let w = &rows[j.weir];
        for (p, name) in j.peers.iter().zip(PEER_NAMES) {
            let Some(p) = *p else {
                let _ = writeln!(
                    s,
                    "| {} | {} | {name}: no peer for this job | not applicable | n/a | n/a | n/a |",
                    j.job,
                    short_label(&w.label)
                );
                continue;
            };
            let peer = &rows[p];
            let (t, c, m) = match (&w.run, &peer.run) {
                (Ok(a), Ok(b)) => (
                    format!("{:.2}×", a.records_per_s() / b.records_per_s()),
                    format!(
                        "{:.2}×",
                        a.cpu_us_per_record(records) / b.cpu_us_per_record(records)
                    ),
                    format!(
                        "{:.2}×",
                        a.peak_rss_kib as f64 / (b.peak_rss_kib as f64).max(1.0)
                    ),
                ),
                _ => ("n/a".into(), "n/a".into(), "n/a".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {t} | {c} | {m} |",
                j.job,
                short_label(&w.label),
                peer.label,
                verdict(peer)
            );
        }
    }
    s
}

/// weir's window jobs against the window ceiling: throughput and CPU per
/// record ratios (weir over ceiling), with both output verdicts.
pub fn ceiling_table(rows: &[Row], pairs: &[(usize, usize)], records: u64) -> String {
    let mut s = String::from(
        "| weir | output | ceiling | output | throughput weir/ceiling | CPU per record weir/ceiling |\n|---|---|---|---|---:|---:|\n",
    );
    for &(w, c) in pairs {
        let (t, cpu) = match ratios_to(rows, w, c, records) {
            Some((t, cpu)) => (format!("{t:.2}×"), format!("{cpu:.2}×")),
            None => ("n/a".into(), "n/a".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {t} | {cpu} |",
            rows[w].label,
            verdict(&rows[w]),
            rows[c].label,
            verdict(&rows[c])
        );
    }
    s
}

/// PASS/SHORT (or n/a) lines for the goals.
pub fn goal_lines(rows: &[Row], goals: &[Goal], records: u64) -> Vec<String> {
    goals
        .iter()
        .map(|g| {
            let r = &rows[g.row];
            let against = g.against.or(r.baseline);
            let base = against.map_or("?", |b| short_label(&rows[b].label));
            let what = if g.throughput {
                "throughput"
            } else {
                "CPU per record"
            };
            let op = if g.throughput { "≥" } else { "≤" };
            match against.and_then(|b| ratios_to(rows, g.row, b, records)) {
                Some((t, c)) => {
                    let v = if g.throughput { t } else { c };
                    let pass = if g.throughput {
                        v >= g.limit
                    } else {
                        v <= g.limit
                    };
                    format!(
                        "{} {}: {what} {v:.2}× {base} (goal {op} {:.2}×)",
                        if pass { "PASS " } else { "SHORT" },
                        r.label,
                        g.limit
                    )
                }
                None => format!(
                    "n/a   {}: {what} (goal {op} {:.2}× {base}): not measured",
                    r.label, g.limit
                ),
            }
        })
        .collect()
}

/// Per-contender details: output check, timings, load, exit, notes.
pub fn details(rows: &[Row]) -> String {
    let mut s = String::from(
        "| contender | read / produced (own count) | output check | start-up s | steady s | CPU s | broker CPU s | other CPU s | exit after stop |\n\
         |---|---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let check = format!("{} {}", verdict(r), r.output);
        match &r.run {
            Ok(m) => {
                let _ = writeln!(
                    s,
                    "| {} | {} / {} | {check} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    r.label,
                    m.records_in,
                    m.records_out,
                    m.startup_seconds,
                    m.steady_seconds,
                    m.cpu_seconds,
                    m.load.broker,
                    m.load.other(m.cpu_seconds),
                    m.exit
                );
            }
            Err(_) => {
                let _ = writeln!(s, "| {} | – | {check} | – | – | – | – | – | – |", r.label);
            }
        }
    }
    for r in rows {
        match &r.committed {
            Ok(c) => {
                let _ = writeln!(s, "- {}: committed offsets ok: {c}", short_label(&r.label));
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "- {}: committed offsets WRONG: {e}",
                    short_label(&r.label)
                );
            }
        }
        match &r.run {
            Ok(m) => {
                for n in &m.notes {
                    let _ = writeln!(s, "- {}: {n}", short_label(&r.label));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "- {}: FAILED: {e}", short_label(&r.label));
            }
        }
    }
    s
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
