//! librdkafka callbacks: the producers' delivery callbacks (latency, and
//! failures that must stop the pipeline) and the consumer's rebalance,
//! error and statistics callbacks. Callbacks only update shared state; the
//! rebalance callback does bounded blocking work (restore state on assign;
//! drain, write state and commit on revoke), which librdkafka requires to
//! happen before the assignment changes.

use super::pipeline::Shared;
use crate::metrics::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first delivery that failed for good; the pipeline stops on it
/// before committing past it.
pub type Failure = Arc<Mutex<Option<String>>>;

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
                fail(&self.failure, format!("to `{}`: {e}", m.topic()));
            }
        }
    }
}

fn fail(f: &Failure, message: String) {
    f.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert(message);
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
            fail(&self.failure, format!("to `{}`: {e}", m.topic()));
        }
    }
}

/// Consumer context of a pipeline.
pub struct WeirContext {
    /// The pipeline's shared state (weak: the pipeline owns it).
    pub shared: Weak<Shared>,
    /// Metrics.
    pub metrics: Metrics,
    /// Pipeline name.
    pub pipeline: String,
}

impl ClientContext for WeirContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(s) = self.shared.upgrade() {
            if matches!(
                error.rdkafka_error_code(),
                Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown)
            ) {
                s.brokers_down();
            }
        }
        tracing::warn!(pipeline = %self.pipeline, %error, reason, "consumer error");
    }

    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (id, p) in &t.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.pipeline, topic, &id.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WeirContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                shared.on_assign(base, tpl);
                let r = if cooperative {
                    base.incremental_assign(tpl)
                } else {
                    base.assign(tpl)
                };
                if let Err(e) = r {
                    tracing::error!(pipeline = %self.pipeline, error = %e, "assign failed");
                }
                self.metrics
                    .rebalances
                    .with_label_values(&[&self.pipeline, "assign"])
                    .inc();
                shared.set_ready(true);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                shared.on_revoke(base, tpl);
                let r = if cooperative {
                    base.incremental_unassign(tpl)
                } else {
                    base.unassign()
                };
                if let Err(e) = r {
                    tracing::error!(pipeline = %self.pipeline, error = %e, "unassign failed");
                }
                self.metrics
                    .rebalances
                    .with_label_values(&[&self.pipeline, "revoke"])
                    .inc();
            }
            other => {
                tracing::error!(pipeline = %self.pipeline, error = ?other, "rebalance error");
                shared.on_revoke(base, tpl);
                let _ = base.unassign();
            }
        }
    }
}
