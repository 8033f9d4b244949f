//! The daemon: runs every pipeline of a config as its own consumer group
//! member, serves HTTP, and shuts down gracefully on SIGTERM/SIGINT (stop
//! fetching, drain, checkpoint, commit, leave the group).

use super::pipeline::{run_pipeline, RunOptions, RuntimeError, Summary};
use crate::http::{serve, Health};
use crate::metrics::Metrics;
use crate::plan::Plan;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A shutdown signal shared by every task: `true` once shutdown began.
pub fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `plans` until `shutdown` fires or one fails; returns each summary.
///
/// # Errors
/// The first [`RuntimeError`] of any pipeline; the others are then stopped.
pub async fn run_all(
    plans: Vec<Arc<Plan>>,
    opts: RunOptions,
    metrics: Metrics,
    health: Arc<Health>,
    shutdown_tx: watch::Sender<bool>,
) -> Result<Vec<(String, Summary)>, RuntimeError> {
    let mut set = JoinSet::new();
    for plan in plans {
        let (opts, metrics, health, rx) = (
            opts.clone(),
            metrics.clone(),
            Arc::clone(&health),
            shutdown_tx.subscribe(),
        );
        set.spawn(async move {
            let name = plan.name.clone();
            (name, run_pipeline(plan, opts, metrics, health, rx).await)
        });
    }
    let mut out = Vec::new();
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((name, Ok(s))) => out.push((name, s)),
            Ok((_, Err(e))) => {
                tracing::error!(error = %e, "pipeline failed; stopping the others");
                let _ = shutdown_tx.send(true);
                first_err.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "pipeline task panicked");
                let _ = shutdown_tx.send(true);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Binds and serves the HTTP endpoint in the background.
///
/// # Errors
/// The bind error, naming the address.
pub async fn start_http(
    listen: &str,
    metrics: Metrics,
    health: Arc<Health>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, metrics, health).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(addr)
}
