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
pub fn partition_counts(
    client: &BaseConsumer,
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
