//! The sink side of a pipeline: the producers' contexts (delivery
//! callbacks: latency, and failures that must stop the pipeline) and the
//! typed failure they report. Callbacks only update shared state.

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a running pipeline must stop (the first such failure wins).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineFailure {
    /// A record could not be enqueued or delivered, ever.
    #[error("to `{topic}`: {error}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's message.
        error: String,
    },
    /// An exactly-once transaction failed (fenced, or the broker refused
    /// it): the state in memory is ahead of what committed.
    #[error("{0}")]
    Transaction(String),
    /// State could not be read back at assignment (checkpoints or
    /// changelogs): restoring without it would not be exact.
    #[error("{0}")]
    Restore(String),
}

/// The first failure of a pipeline; set once, by callbacks and the
/// commit sequence, read by the processing loop before every commit.
pub type Failure = Arc<OnceLock<PipelineFailure>>;

/// Records `f` unless a failure is already recorded.
pub fn fail(failure: &Failure, f: PipelineFailure) {
    let _ = failure.set(f);
}

/// The delivery opaque of a changelog or checkpoint record sent through
/// the transactional output producer (no latency to observe).
pub const STATE_RECORD: usize = usize::MAX;

/// Producer context of the output producer: acknowledgements feed the
/// latency histogram; a failure is kept in [`Failure`]. The delivery opaque
/// is the source record's Kafka timestamp (ms), no allocation per record.
pub struct AckContext {
    /// Latency histogram of the pipeline.
    pub latency: prometheus::Histogram,
    /// Wall clock (ms) as of the current producer poll: delivery callbacks
    /// run inside `poll`, which sets it, so no clock is read per record.
    pub clock: Arc<std::sync::atomic::AtomicI64>,
    /// Pipeline name for logs.
    pub pipeline: String,
    /// Where a failed delivery is reported.
    pub failure: Failure,
}

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(pipeline = %self.pipeline, %error, reason, "producer error");
    }
}

/// Wall clock, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, source_timestamp: usize) {
        match result {
            Ok(_) if source_timestamp == STATE_RECORD => {}
            Ok(_) => {
                let now = self.clock.load(std::sync::atomic::Ordering::Relaxed);
                let age = (now - source_timestamp as i64).max(0) as f64 / 1000.0;
                self.latency.observe(age);
            }
            Err((e, m)) => {
                use rdkafka::message::Message as _;
                tracing::error!(pipeline = %self.pipeline, error = %e, topic = m.topic(), "delivery failed for good");
                fail(
                    &self.failure,
                    PipelineFailure::Delivery {
                        topic: m.topic().to_owned(),
                        error: e.to_string(),
                    },
                );
            }
        }
    }
}

/// Producer context of the state producer (changelog and checkpoint
/// records): a failed delivery is kept in [`Failure`].
pub struct StateContext {
    /// Pipeline name for logs.
    pub pipeline: String,
    /// Where a failed delivery is reported.
    pub failure: Failure,
}

impl ClientContext for StateContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(pipeline = %self.pipeline, %error, reason, "state producer error");
    }
}

impl ProducerContext for StateContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            use rdkafka::message::Message as _;
            tracing::error!(pipeline = %self.pipeline, error = %e, topic = m.topic(), "state delivery failed for good");
            fail(
                &self.failure,
                PipelineFailure::Delivery {
                    topic: m.topic().to_owned(),
                    error: e.to_string(),
                },
            );
        }
    }
}
