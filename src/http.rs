//! The HTTP endpoint on `metrics.listen`: `/metrics` (Prometheus text),
//! `/healthz` (the process is alive) and `/readyz` (every pipeline has
//! joined its group and reaches its brokers).

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// Readiness of every pipeline, set by the runtime.
#[derive(Debug, Default)]
pub struct Health {
    ready: Mutex<BTreeMap<String, bool>>,
}

impl Health {
    /// Marks `pipeline` ready or not.
    pub fn set(&self, pipeline: &str, ready: bool) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pipeline.to_owned(), ready);
    }

    /// Forgets `pipeline` (stopped for good, e.g. its file was removed).
    pub fn remove(&self, pipeline: &str) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pipeline);
    }

    /// Ready when at least one pipeline is registered and all are ready;
    /// otherwise the names of those that are not.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let m = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        let not: Vec<String> = m
            .iter()
            .filter(|(_, r)| !**r)
            .map(|(n, _)| n.clone())
            .collect();
        if m.is_empty() {
            Err(vec!["no pipelines".into()])
        } else if !not.is_empty() {
            Err(not)
        } else {
            Ok(())
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    health: Arc<Health>,
}

/// Serves the endpoint on `listener` until the process ends.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: Arc<Health>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health });
    axum::serve(listener, app).await
}

async fn metrics_handler(State(s): State<AppState>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn ready_handler(State(s): State<AppState>) -> (StatusCode, String) {
    match s.health.check() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(not) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", not.join(", ")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_pipeline_is() {
        let h = Health::default();
        assert_eq!(h.check(), Err(vec!["no pipelines".to_owned()]));
        h.set("a", true);
        h.set("b", false);
        assert_eq!(h.check(), Err(vec!["b".to_owned()]));
        h.set("b", true);
        assert_eq!(h.check(), Ok(()));
    }
}
