//! The daemon: runs every pipeline of a config as its own consumer group
//! member, serves HTTP, shuts down gracefully on SIGTERM/SIGINT (stop
//! fetching, drain, checkpoint, commit, leave the group), and reloads its
//! pipeline files on SIGHUP ([`super::supervisor`]).

use super::pipeline::{RunOptions, RuntimeError, Summary};
use super::supervisor::{supervise, Loaded, Reloads};
use crate::http::{serve, Health};
use crate::metrics::Metrics;
use crate::plan::Plan;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

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

/// Runs `plans` until `shutdown` fires or one fails; returns each summary
/// (no reload: [`super::supervisor::supervise`] without a reload source).
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
    let initial = plans
        .into_iter()
        .map(|plan| {
            (
                plan.file.clone(),
                Loaded {
                    plan,
                    text: String::new(),
                },
            )
        })
        .collect();
    let (_no_reload, requests) = mpsc::channel(1);
    let reloads = Reloads {
        paths: Vec::new(),
        requests,
        report: |_: &_| {},
    };
    let r = supervise(
        initial,
        opts,
        metrics,
        health,
        shutdown_tx.subscribe(),
        reloads,
    )
    .await;
    if r.is_err() {
        let _ = shutdown_tx.send(true);
    }
    r
}

/// Resolves at every SIGHUP (never on platforms without it).
pub async fn hangup_signals(tx: mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            while hup.recv().await.is_some() {
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tx;
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
