//! `weir run --config CONFIG [PIPELINE…]`: the daemon. Every file is checked
//! before any connection to Kafka (exit 2 on a mistake). On SIGHUP the
//! pipeline files are read again ([`crate::runtime::supervisor`]); the
//! daemon config itself is read only at start.

use super::{load_plans, logging, EXIT_USER_ERROR};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::runtime::daemon::{hangup_signals, shutdown_channel, start_http, termination_signal};
use crate::runtime::supervisor::{supervise, Loaded, ReloadReport, Reloads};
use crate::runtime::RunOptions;
use crate::spec::{load_file, DaemonConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs the daemon; returns the exit code.
pub fn run(config: &Path, pipelines: &[PathBuf]) -> i32 {
    let cfg = match load_file::<DaemonConfig>(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USER_ERROR;
        }
    };
    let paths = match super::pipeline_paths(&cfg, config, pipelines) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let plans = match load_plans(&paths) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = super::refuse_stream_joins(&plans, "weir run") {
        return code;
    }
    let d = cfg.doc;
    logging::init(d.log.format, d.log.level.as_deref(), "info");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weir: cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        match start_http(&d.metrics.listen, metrics.clone(), Arc::clone(&health)).await {
            Ok(addr) => tracing::info!(%addr, "serving /metrics, /healthz, /readyz"),
            Err(e) => {
                eprintln!("weir: {e}");
                return 1;
            }
        }
        let (tx, _rx) = shutdown_channel();
        let signal_tx = tx.clone();
        let bound = d.shutdown_timeout.as_duration();
        tokio::spawn(async move {
            termination_signal().await;
            tracing::info!("shutdown requested");
            let _ = signal_tx.send(true);
            // One deadline bounds the whole shutdown: past it, exit.
            tokio::time::sleep(bound).await;
            tracing::error!(shutdown_timeout = ?bound, "shutdown not done within shutdown_timeout; exiting");
            eprintln!("weir: shutdown not done within shutdown_timeout ({}); exiting", humantime::format_duration(bound));
            std::process::exit(1);
        });
        let instance = d.instance();
        tracing::info!(%instance, "instance id (exactly_once transactional ids are <group id>.<instance id>)");
        let opts = RunOptions {
            kafka: d.kafka,
            commit_interval: d.commit_interval.as_duration(),
            shutdown_timeout: d.shutdown_timeout.as_duration(),
            commit_timeout: d.commit_timeout.as_duration(),
            finish_at: None,
            instance,
        };
        let initial = plans
            .into_iter()
            .map(|plan| {
                let text = std::fs::read_to_string(&plan.file).unwrap_or_default();
                (plan.file.clone(), Loaded { plan, text })
            })
            .collect();
        let (hup_tx, hup_rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(hangup_signals(hup_tx));
        let reloads = metrics.config_reloads.clone();
        let on_reload = move |r: &ReloadReport| {
            for (file, name) in &r.started {
                tracing::info!(pipeline = %name, file = %file.display(), "reload: pipeline (re)started");
            }
            for (file, name) in &r.stopped {
                tracing::info!(pipeline = %name, file = %file.display(), "reload: file gone, pipeline stopped");
            }
            for (file, errors) in &r.rejected {
                tracing::error!(file = %file.display(), %errors, "reload: invalid file, running version kept");
                eprintln!("weir: reload rejected:\n{errors}");
            }
            let result = if r.rejected.is_empty() { "success" } else { "failure" };
            reloads.with_label_values(&[result]).inc();
            tracing::info!(result, started = r.started.len(), stopped = r.stopped.len(), rejected = r.rejected.len(), "reload done");
        };
        let reloads = Reloads {
            paths,
            requests: hup_rx,
            report: on_reload,
        };
        let result = supervise(initial, opts, metrics.clone(), health, tx.subscribe(), reloads).await;
        match result {
            Ok(_) => 0,
            Err(e) => {
                tracing::error!(error = %e, "weir stopped");
                eprintln!("weir: {e}");
                1
            }
        }
    })
}
