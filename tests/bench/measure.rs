//! Shared measurement helpers: what one contender's run measured, and how
//! it is read from Linux (`/proc/<pid>/stat` for CPU time, `/proc/<pid>/status`
//! for peak RSS, `/proc/stat` for what else the machine was doing meanwhile),
//! plus child-process handling (logs to files, SIGTERM, bounded waits).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What every contender run shares: where logs go, the broker, the input.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// Directory for configs and logs.
    pub dir: PathBuf,
    /// The broker, `127.0.0.1:PORT`.
    pub bootstrap: String,
    /// The broker's pid, for its CPU time.
    pub broker_pid: Option<u32>,
    /// Input topic.
    pub input: String,
    /// Input records.
    pub records: u64,
    /// Bound on one contender's run.
    pub timeout: Duration,
}

/// What one contender's run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Input records the contender read (distinct offsets).
    pub records_in: u64,
    /// Output records it reports producing.
    pub records_out: u64,
    /// Records counted in the steady-state window.
    pub steady_records: u64,
    /// Length of the steady-state window: first output (or first sample
    /// showing output) to all input read and all output produced.
    pub steady_seconds: f64,
    /// Spawn to the start of the steady-state window (group join, start-up).
    pub startup_seconds: f64,
    /// CPU time (user + system, all threads) of the whole process when done.
    pub cpu_seconds: f64,
    /// Peak resident set (VmHWM) when done, KiB.
    pub peak_rss_kib: u64,
    /// What else used the CPU while it ran.
    pub load: LoadWindow,
    /// Exit status after the bench asked it to stop, and how long that took.
    pub exit: String,
    /// Anything worth reporting (warnings, odd counters).
    pub notes: Vec<String>,
}

impl Measurement {
    /// Steady-state records per second.
    pub fn records_per_s(&self) -> f64 {
        self.steady_records as f64 / self.steady_seconds.max(1e-9)
    }

    /// CPU microseconds per input record (whole process, start-up included).
    pub fn cpu_us_per_record(&self, records: u64) -> f64 {
        self.cpu_seconds * 1e6 / records.max(1) as f64
    }
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`), and
/// whether it was read or assumed (100).
pub fn clk_tck() -> (f64, bool) {
    static TCK: OnceLock<(f64, bool)> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .map_or((100.0, false), |t| (t, true))
    })
}

/// CPU seconds (utime + stime, every thread) of a live process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds per thread name of a live process (threads of the same
/// name summed), busiest first.
pub fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let Some(cpu) = std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|stat| stat_cpu_seconds(&stat))
        else {
            continue;
        };
        let name = comm.trim().to_owned();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += cpu,
            None => by_name.push((name, cpu)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

/// utime + stime of a `/proc/…/stat` line, seconds.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clk_tck().0)
}

/// The threads of a live process that used CPU, busiest first, as text
/// for the report (threads of the same name summed).
pub fn thread_summary(pid: u32) -> String {
    let shown: Vec<String> = thread_cpu(pid)
        .iter()
        .filter(|(_, c)| *c >= 0.01)
        .map(|(n, c)| format!("{n} {c:.2}"))
        .collect();
    format!("CPU s by thread name: {}", shown.join(", "))
}

/// Peak resident set size (VmHWM) of a live process, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Busy CPU seconds of the whole machine since boot (`/proc/stat`: user,
/// nice, system, irq, softirq, steal).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum();
    busy as f64 / clk_tck().0
}

/// CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU used on the machine during a contender's run, split by who used it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadWindow {
    /// Busy CPU seconds of the whole machine.
    pub machine: f64,
    /// CPU seconds of the broker.
    pub broker: f64,
    /// CPU seconds of the bench's own process (metrics polling, waiting).
    pub harness: f64,
}

impl LoadWindow {
    /// CPU seconds of everything else (e.g. a compiler running meanwhile),
    /// given the contender's own CPU seconds.
    pub fn other(&self, contender: f64) -> f64 {
        (self.machine - self.broker - self.harness - contender).max(0.0)
    }
}

/// Start of a [`LoadWindow`].
pub struct LoadMeter {
    broker_pid: Option<u32>,
    machine0: f64,
    broker0: f64,
    harness0: f64,
}

impl LoadMeter {
    /// Starts measuring now.
    pub fn start(broker_pid: Option<u32>) -> LoadMeter {
        LoadMeter {
            broker_pid,
            machine0: machine_busy_seconds(),
            broker0: broker_pid.and_then(cpu_seconds).unwrap_or(0.0),
            harness0: cpu_seconds(std::process::id()).unwrap_or(0.0),
        }
    }

    /// The window from the start to now.
    pub fn stop(&self) -> LoadWindow {
        LoadWindow {
            machine: machine_busy_seconds() - self.machine0,
            broker: self.broker_pid.and_then(cpu_seconds).unwrap_or(0.0) - self.broker0,
            harness: cpu_seconds(std::process::id()).unwrap_or(0.0) - self.harness0,
        }
    }
}

/// A contender process with stdout and stderr in files (unless piped),
/// killed on drop if still running.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Label for messages.
    pub name: String,
    /// Its stderr file.
    pub stderr: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stderr to `dir/NAME.stderr`; stdout to
    /// `dir/NAME.stdout` unless `cmd` already pipes it.
    pub fn spawn(
        mut cmd: Command,
        dir: &Path,
        name: &str,
        pipe_stdio: bool,
    ) -> Result<Proc, String> {
        let stderr = dir.join(format!("{name}.stderr"));
        let err = File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        cmd.stderr(err);
        if pipe_stdio {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            let out = dir.join(format!("{name}.stdout"));
            let out = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            cmd.stdin(Stdio::null()).stdout(out);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Proc {
            child,
            name: name.to_owned(),
            stderr,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` (with the stderr tail) if it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!(
                "{} exited early ({st}); stderr tail:\n{}",
                self.name,
                self.stderr_tail(20)
            )),
            Err(e) => Err(format!("{}: wait: {e}", self.name)),
        }
    }

    /// Last `n` lines of its stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        crate::broker::tail(&self.stderr, n)
    }

    /// Sends SIGTERM (unless `sigterm` is false: the caller has already
    /// asked it to stop another way) and waits up to `timeout`; SIGKILL after
    /// that. Returns a description of how it ended.
    pub fn stop(&mut self, sigterm: bool, timeout: Duration) -> String {
        let t = Instant::now();
        if sigterm {
            let pid = self.pid().to_string();
            if let Err(e) = Command::new("kill").args(["-TERM", &pid]).status() {
                return format!("kill -TERM {pid} failed: {e}");
            }
        }
        match crate::broker::wait_exit(&mut self.child, timeout) {
            Some(st) => format!("{st} after {:.1} s", t.elapsed().as_secs_f64()),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                format!("did not exit within {timeout:?}; killed (SIGKILL)")
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
