//! The daemon's pipelines, each with its own stop switch, and their reload
//! on SIGHUP: the pipeline files are read again; a changed or new file that
//! is valid replaces (or adds) its pipeline, which stops gracefully
//! (commit, leave the group) before the new version starts; an invalid one
//! is reported and the running version kept; a pipeline whose file is gone
//! stops. Unchanged files are left alone. (Prometheus and Vector reload on
//! SIGHUP the same way: validate first, keep the old on error.)
//!
//! A pipeline that fails stops every other, as at start-up: the daemon
//! exits with its error.

use super::pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
use crate::expr::CelEnv;
use crate::http::Health;
use crate::metrics::Metrics;
use crate::plan::Plan;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// A pipeline to run: the plan and the file text it was compiled from
/// (the text decides whether a reload changed it).
#[derive(Clone)]
pub struct Loaded {
    /// The compiled pipeline.
    pub plan: Arc<Plan>,
    /// The file's text at load.
    pub text: String,
}

/// The outcome of one reload, for logs and `weir_config_reloads_total`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Files whose pipelines were (re)started, with the pipeline name.
    pub started: Vec<(PathBuf, String)>,
    /// Files left out of the run now (removed), with the pipeline name.
    pub stopped: Vec<(PathBuf, String)>,
    /// Invalid files, with every error (`file:line:col: …`).
    pub rejected: Vec<(PathBuf, String)>,
}

/// One file's compiled pipeline, or every error in it (`file:line:col: …`).
pub type FileLoad = Result<Loaded, String>;

/// Reads and compiles every pipeline file under `paths`, one by one, so
/// one invalid file does not hold back the others: (file, result).
///
/// # Errors
/// The paths themselves cannot be read (a missing directory).
pub fn load_each(paths: &[PathBuf]) -> Result<Vec<(PathBuf, FileLoad)>, String> {
    let files = crate::spec::expand_paths(paths).map_err(|e| e.to_string())?;
    let env = CelEnv::new();
    Ok(files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let r = crate::plan::load_all(std::slice::from_ref(&f), &env)
                .map_err(|e| e.to_string())
                .and_then(|mut plans| {
                    if plans.len() == 1 {
                        Ok(Loaded {
                            plan: Arc::new(plans.remove(0)),
                            text,
                        })
                    } else {
                        Err(format!("{}: not one pipeline", f.display()))
                    }
                });
            (f, r)
        })
        .collect())
}

/// Where reloads come from: the pipeline paths to read again, a message per
/// reload request (SIGHUP), and what to do with each outcome.
pub struct Reloads<F: Fn(&ReloadReport)> {
    /// Pipeline files or directories, as at start.
    pub paths: Vec<PathBuf>,
    /// One message per reload request; a closed channel never reloads.
    pub requests: mpsc::Receiver<()>,
    /// Called with each reload's outcome (logs, metrics).
    pub report: F,
}

struct Running {
    name: String,
    text: String,
    generation: u64,
    stop: watch::Sender<bool>,
}

type Done = (PathBuf, u64, String, Result<Summary, RuntimeError>);

/// Runs `initial` (file → pipeline) until `shutdown` fires or a pipeline
/// fails (or, with `opts.finish_at`, until every pipeline has finished its
/// input); on every request of `reloads`, reloads its paths (see the module
/// doc) and reports the outcome. Returns each pipeline's summary (of the
/// last version of each).
///
/// # Errors
/// The first [`RuntimeError`] of any pipeline; the others are then stopped.
pub async fn supervise<F: Fn(&ReloadReport)>(
    initial: Vec<(PathBuf, Loaded)>,
    opts: RunOptions,
    metrics: Metrics,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
    mut reloads: Reloads<F>,
) -> Result<Vec<(String, Summary)>, RuntimeError> {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut running: BTreeMap<PathBuf, Running> = BTreeMap::new();
    // A new version waiting for its predecessor to stop.
    let mut pending: HashMap<PathBuf, Loaded> = HashMap::new();
    let mut generation = 0u64;
    // With `finish_at` (`weir dev`), pipelines end by themselves at the end
    // of their input, and so does the supervision once none is left.
    let finite = opts.finish_at.is_some();
    let mut start = |file: PathBuf, l: Loaded, running: &mut BTreeMap<PathBuf, Running>| {
        generation += 1;
        let (stop, rx) = watch::channel(false);
        let name = l.plan.name.clone();
        let (opts, metrics, health, done) = (
            opts.clone(),
            metrics.clone(),
            Arc::clone(&health),
            done_tx.clone(),
        );
        let (f, g, n) = (file.clone(), generation, name.clone());
        // Each pipeline on a thread of its own (DESIGN.md §4): its blocking
        // librdkafka calls (flush, commit, transactions, the restore in the
        // rebalance callback) then never hold a worker of the runtime that
        // serves /healthz, /readyz, /metrics and the other pipelines. Its
        // timers, channels and `spawn_blocking` still run on the runtime.
        let runtime = tokio::runtime::Handle::current();
        let refused = (f.clone(), g, n.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name(format!("weir-{name}"))
            .spawn(move || {
                let r = runtime.block_on(run_pipeline(l.plan, opts, metrics, health, rx));
                let _ = done.send((f, g, n, r));
            });
        if let Err(source) = thread {
            let (f, g, n, done) = refused;
            let e = RuntimeError::Thread {
                pipeline: n.clone(),
                source,
            };
            let _ = done.send((f, g, n, Err(e)));
        }
        running.insert(
            file,
            Running {
                name,
                text: l.text,
                generation,
                stop,
            },
        );
    };
    for (file, l) in initial {
        start(file, l, &mut running);
    }
    let mut summaries: BTreeMap<String, Summary> = BTreeMap::new();
    let mut first_err: Option<RuntimeError> = None;
    let mut stopping = *shutdown.borrow();
    loop {
        if running.is_empty() && (stopping || (finite && pending.is_empty())) {
            break;
        }
        tokio::select! {
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() {
                    stopping = true;
                    stop_all(&running, &mut pending);
                }
            }
            Some(()) = reloads.requests.recv(), if !stopping => {
                let report = reload_files(&reloads.paths, &mut running, &mut pending, &health);
                (reloads.report)(&report);
                // New files start at once; changed ones when their
                // predecessor has stopped.
                let new: Vec<PathBuf> = pending
                    .keys()
                    .filter(|f| !running.contains_key(*f))
                    .cloned()
                    .collect();
                for f in new {
                    if let Some(l) = pending.remove(&f) {
                        start(f, l, &mut running);
                    }
                }
            }
            Some((file, g, name, result)) = done_rx.recv() => {
                let current = running.get(&file).is_some_and(|r| r.generation == g);
                if current {
                    running.remove(&file);
                }
                match result {
                    Ok(s) => {
                        summaries.insert(name, s);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "pipeline failed; stopping the others");
                        stopping = true;
                        stop_all(&running, &mut pending);
                        first_err.get_or_insert(e);
                    }
                }
                if !stopping && !running.contains_key(&file) {
                    if let Some(l) = pending.remove(&file) {
                        tracing::info!(pipeline = %l.plan.name, file = %file.display(), "new version starting");
                        start(file, l, &mut running);
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(summaries.into_iter().collect()),
    }
}

/// Stops every running pipeline and drops the versions waiting to start.
fn stop_all(running: &BTreeMap<PathBuf, Running>, pending: &mut HashMap<PathBuf, Loaded>) {
    pending.clear();
    for r in running.values() {
        let _ = r.stop.send(true);
    }
}

/// One reload: compares the files under `paths` with `running`, stops what
/// changed or went away, and queues the new versions in `pending` (started
/// once their predecessor has stopped).
fn reload_files(
    paths: &[PathBuf],
    running: &mut BTreeMap<PathBuf, Running>,
    pending: &mut HashMap<PathBuf, Loaded>,
    health: &Health,
) -> ReloadReport {
    let mut report = ReloadReport::default();
    let loaded = match load_each(paths) {
        Ok(l) => l,
        Err(e) => {
            // The paths themselves could not be read: keep everything.
            report.rejected.push((PathBuf::new(), e));
            return report;
        }
    };
    // Names must stay unique across the files that will run.
    let mut names: BTreeMap<String, PathBuf> = running
        .iter()
        .map(|(f, r)| (r.name.clone(), f.clone()))
        .collect();
    let mut seen: Vec<PathBuf> = Vec::new();
    for (file, result) in loaded {
        seen.push(file.clone());
        let l = match result {
            Ok(l) => l,
            Err(e) => {
                report.rejected.push((file, e));
                continue;
            }
        };
        let old = running.get(&file);
        if old.is_some_and(|r| r.text == l.text) && !pending.contains_key(&file) {
            continue;
        }
        if let Some(other) = names.get(&l.plan.name).filter(|f| **f != file) {
            report.rejected.push((
                file.clone(),
                format!(
                    "{}: pipeline `{}` is also defined in {} (expected unique names)",
                    file.display(),
                    l.plan.name,
                    other.display()
                ),
            ));
            continue;
        }
        names.insert(l.plan.name.clone(), file.clone());
        report.started.push((file.clone(), l.plan.name.clone()));
        if let Some(r) = old {
            if r.name != l.plan.name {
                health.remove(&r.name);
                names.remove(&r.name);
            }
            let _ = r.stop.send(true);
        }
        pending.insert(file, l);
    }
    // Files no longer there: their pipelines stop.
    let gone: Vec<PathBuf> = running
        .keys()
        .filter(|f| !seen.contains(f))
        .cloned()
        .collect();
    for f in gone {
        if let Some(r) = running.get(&f) {
            let _ = r.stop.send(true);
            health.remove(&r.name);
            report.stopped.push((f.clone(), r.name.clone()));
        }
        pending.remove(&f);
    }
    report
}
