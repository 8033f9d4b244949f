//! The daemon config (`config/weir.yaml`, DESIGN.md §2).

use super::duration::DurationMs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Settings of one `weir run` process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Broker connection.
    pub kafka: KafkaConfig,
    /// Pipeline files or directories, relative to the config file.
    #[serde(default)]
    pub pipelines: Vec<PathBuf>,
    /// HTTP endpoint for /metrics, /healthz, /readyz.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// How often offsets and checkpoints are committed.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: DurationMs,
    /// Upper bound on a whole graceful shutdown, from the signal to the
    /// exit (the last commit of every pipeline, leaving the groups); a
    /// shutdown not done by then exits with code 1.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: DurationMs,
    /// Upper bound on one commit (flushing outputs, writing state,
    /// committing the transaction); one not done by then is retried at the
    /// next `commit_interval`.
    #[serde(default = "default_commit_timeout")]
    pub commit_timeout: DurationMs,
    /// Name of this instance: with `delivery: exactly_once` the
    /// transactional id is `<group id>.<instance_id>`, so it must be unique
    /// among the running instances; a restart under the same name fences
    /// its predecessor at once (its open transaction is aborted). Default:
    /// [`default_instance_id`], unique per running process.
    #[serde(default)]
    pub instance_id: Option<String>,
}

impl DaemonConfig {
    /// `instance_id`, else [`default_instance_id`].
    pub fn instance(&self) -> String {
        self.instance_id.clone().unwrap_or_else(default_instance_id)
    }
}

/// The default instance id: `<host name>-<process id>`, with the host name
/// from `$HOSTNAME`, else the kernel's (`/proc/sys/kernel/hostname`), else
/// `weir`.
///
/// Two processes on one host get different ids, so their transactional ids
/// never fence each other. In a container (process id 1, `$HOSTNAME` = the
/// pod name) it is the pod name plus `-1`: stable across restarts of a
/// StatefulSet pod, so a restarted pod fences its predecessor at once. A
/// restart under a new id (a new Deployment pod, a new process on a host)
/// cannot fence by transactional id; its predecessor's offset commits are
/// still refused, because `send_offsets_to_transaction` carries the consumer
/// group generation (KIP-447), and its open transaction is aborted by the
/// broker after `transaction.timeout.ms`.
pub fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weir".to_owned());
    format!("{host}-{}", std::process::id())
}

fn default_commit_interval() -> DurationMs {
    DurationMs(1_000)
}

fn default_commit_timeout() -> DurationMs {
    DurationMs(10_000)
}

fn default_shutdown_timeout() -> DurationMs {
    DurationMs(30_000)
}

/// Broker connection for every client weir creates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// librdkafka properties for every client (TLS, SASL, timeouts).
    #[serde(default)]
    pub client: BTreeMap<String, serde_yaml::Value>,
}

/// Metrics endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address, default `0.0.0.0:9464`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:9464".into()
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `info` or `weir=debug`; `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Renders a YAML scalar as a librdkafka property value.
pub fn property_value(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}
