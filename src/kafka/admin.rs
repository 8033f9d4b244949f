//! Topic administration: create the topics a pipeline writes to when they
//! are missing (sinks, DLQ, the compacted checkpoint topic).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::time::Duration;

/// A topic weir wants to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub configs: Vec<(String, String)>,
}

/// Errors of topic administration.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The broker could not be reached or refused.
    #[error("{op}: {source}")]
    Kafka {
        /// The operation.
        op: &'static str,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// Creating one topic failed.
    #[error("creating topic `{topic}`: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// Broker error code.
        code: RDKafkaErrorCode,
    },
}

/// Partition counts of every topic in the cluster.
///
/// # Errors
/// [`AdminError::Kafka`] when metadata cannot be fetched.
pub fn topic_partitions(
    config: &ClientConfig,
    timeout: Duration,
) -> Result<HashMap<String, i32>, AdminError> {
    let consumer: BaseConsumer = config.create().map_err(|source| AdminError::Kafka {
        op: "create metadata client",
        source,
    })?;
    partition_counts(&consumer, timeout).map_err(|source| AdminError::Kafka {
        op: "fetch metadata",
        source,
    })
}

/// Partition count of every topic `client` sees in the cluster metadata
/// (topics with an error left out).
///
/// # Errors
/// librdkafka's error when metadata cannot be fetched.
pub fn partition_counts<C: rdkafka::consumer::ConsumerContext>(
    client: &BaseConsumer<C>,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<HashMap<String, i32>> {
    let md = client.fetch_metadata(None, timeout)?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}

/// Creates every topic of `topics` that does not exist yet. A topic created
/// meanwhile by another instance is fine.
///
/// # Errors
/// [`AdminError`] when metadata or creation fails.
pub async fn ensure_topics(
    config: &ClientConfig,
    topics: &[TopicSpec],
    timeout: Duration,
) -> Result<(), AdminError> {
    let existing = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || topic_partitions(&config, timeout))
            .await
            .expect("metadata task does not panic")?
    };
    let missing: Vec<&TopicSpec> = topics
        .iter()
        .filter(|t| !existing.contains_key(&t.name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|source| AdminError::Kafka {
            op: "create admin client",
            source,
        })?;
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|t| {
            let mut n = NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1));
            for (k, v) in &t.configs {
                n = n.set(k, v);
            }
            n
        })
        .collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new().operation_timeout(Some(timeout)))
        .await
        .map_err(|source| AdminError::Kafka {
            op: "create topics",
            source,
        })?;
    for r in results {
        if let Err((topic, code)) = r {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(AdminError::Create { topic, code });
            }
        }
    }
    Ok(())
}

/// Context of the metadata client that waits for the cluster: keeps the
/// last connection failure librdkafka logged (facility `FAIL`: refused
/// connection, failed TLS handshake, failed SASL authentication), which a
/// consumer's error events do not carry, and logs librdkafka's other lines
/// at their level.
#[derive(Default)]
struct CauseContext {
    cause: std::sync::Mutex<Option<String>>,
}

impl rdkafka::client::ClientContext for CauseContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if fac == "FAIL" {
            // Reported once by `wait_topic_partitions`, not once per retry.
            tracing::debug!(target: "librdkafka", fac, "{message}");
            *self.cause.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure_cause(message));
            return;
        }
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            L::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            L::Notice | L::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
            L::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for CauseContext {}

/// librdkafka's `FAIL` log line without what changes from one attempt to
/// the next (thread, elapsed time, suppression count), so a repeated cause
/// compares equal: `[thrd:…]: sasl_ssl://h:p/bootstrap: SASL authentication
/// error: … (after 3ms in state AUTH_REQ)` →
/// `sasl_ssl://h:p/bootstrap: SASL authentication error: …`.
fn failure_cause(message: &str) -> String {
    static VARYING: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = VARYING.get_or_init(|| {
        regex::Regex::new(
            r"^\[thrd:[^\]]*\]: |\s*\(after \d+ms in state [A-Z_]+(, \d+ identical error\(s\) suppressed)?\)|\s*\(\d+ identical error\(s\) suppressed\)",
        )
        .expect("valid regex")
    });
    re.replace_all(message, "").trim().to_owned()
}

/// How often an unchanged cause is logged again while the cluster stays
/// unreachable.
const REPEAT_CAUSE_EVERY: Duration = Duration::from_secs(60);

/// Partition counts of every topic in the cluster, waiting as long as it
/// takes for the cluster to answer (a broker down, wrong credentials, an
/// untrusted certificate): `stop` is asked between attempts (1 s, then
/// doubling up to 8 s), and `None` returned once it holds. Each attempt
/// uses a new client, so certificate files replaced meanwhile are read
/// again.
///
/// While the cluster does not answer, the cause librdkafka gives
/// (`SASL authentication error: …`, `SSL handshake failed: …`) is logged
/// as an error naming `pipeline`: once, again when it changes, and at most
/// once a minute while it lasts.
///
/// # Errors
/// [`AdminError::Kafka`] when the client cannot be created (an invalid
/// property in `kafka.client`); that does not get better by waiting.
pub fn wait_topic_partitions(
    config: &ClientConfig,
    pipeline: &str,
    stop: impl Fn() -> bool,
) -> Result<Option<HashMap<String, i32>>, AdminError> {
    let started = std::time::Instant::now();
    let mut reported: Option<(String, std::time::Instant)> = None;
    let mut attempt = Duration::from_secs(1);
    loop {
        if stop() {
            return Ok(None);
        }
        let consumer: BaseConsumer<CauseContext> = config
            .create_with_context(CauseContext::default())
            .map_err(|source| AdminError::Kafka {
                op: "create metadata client",
                source,
            })?;
        let error = match partition_counts(&consumer, attempt) {
            Ok(counts) => {
                if reported.is_some() {
                    tracing::info!(pipeline, "Kafka reached");
                }
                return Ok(Some(counts));
            }
            Err(e) => e,
        };
        attempt = (attempt * 2).min(Duration::from_secs(8));
        // Serve the log lines librdkafka queued for this client.
        while consumer.poll(Duration::ZERO).is_some() {}
        let cause = consumer
            .context()
            .cause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Without a cause from librdkafka (a slow broker), say so only
        // after as long as the metadata request used to wait.
        let cause = match cause {
            Some(c) => c,
            None if started.elapsed() >= Duration::from_secs(30) => error.to_string(),
            None => continue,
        };
        let due = reported
            .as_ref()
            .is_none_or(|(last, at)| *last != cause || at.elapsed() >= REPEAT_CAUSE_EVERY);
        if due {
            tracing::error!(pipeline, %cause, "cannot reach Kafka, retrying");
            reported = Some((cause, std::time::Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failure_cause;

    #[test]
    fn failure_cause_drops_what_varies_between_attempts() {
        let line = "[thrd:sasl_ssl://127.0.0.1:9093/bootstrap]: sasl_ssl://127.0.0.1:9093/bootstrap: \
                    SASL authentication error: Authentication failed during authentication due to invalid \
                    credentials with SASL mechanism SCRAM-SHA-512 (after 3ms in state AUTH_REQ, 4 identical \
                    error(s) suppressed)";
        assert_eq!(
            failure_cause(line),
            "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed during \
             authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert_eq!(
            failure_cause("[thrd:ssl://h:1/bootstrap]: ssl://h:1/bootstrap: SSL handshake failed: x (after 5ms in state SSL_HANDSHAKE)"),
            "ssl://h:1/bootstrap: SSL handshake failed: x"
        );
    }
}
