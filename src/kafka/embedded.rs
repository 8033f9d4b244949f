//! The embedded broker for `weir dev` and integration tests: librdkafka's
//! in-process mock cluster, real Kafka protocol over loopback TCP.
//! Its logs are bounded (a few MB per partition): keep inputs small.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock cluster; stops when dropped.
pub struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

/// Errors of the mock cluster.
#[derive(Debug, thiserror::Error)]
#[error("embedded broker: {0}")]
pub struct EmbeddedError(#[from] rdkafka::error::KafkaError);

impl Embedded {
    /// Starts a one-broker cluster on a free loopback port.
    ///
    /// # Errors
    /// [`EmbeddedError`] when librdkafka cannot start it.
    pub fn start() -> Result<Self, EmbeddedError> {
        Ok(Embedded {
            cluster: MockCluster::new(1)?,
        })
    }

    /// `host:port` of the broker.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates `topic` with `partitions` partitions (the mock cluster does
    /// not implement CreateTopics through the admin API).
    ///
    /// # Errors
    /// [`EmbeddedError`] when the cluster refuses.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        Ok(self.cluster.create_topic(topic, partitions, 1)?)
    }

    /// Takes the broker down (connections fail) until [`Embedded::broker_up`];
    /// for tests of broker trouble.
    ///
    /// # Errors
    /// [`EmbeddedError`] when the cluster refuses.
    pub fn broker_down(&self) -> Result<(), EmbeddedError> {
        Ok(self.cluster.broker_down(1)?)
    }

    /// Brings the broker back.
    ///
    /// # Errors
    /// [`EmbeddedError`] when the cluster refuses.
    pub fn broker_up(&self) -> Result<(), EmbeddedError> {
        Ok(self.cluster.broker_up(1)?)
    }
}
