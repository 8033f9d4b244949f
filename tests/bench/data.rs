//! The benchmark's input: the seeded records of [`crate::records`] and the
//! producer that writes them to the input topic.

use crate::broker::Broker;
use rdkafka::client::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::records::{record, PARTITIONS};

/// Record `id` parsed, for comparisons.
pub fn value(id: u64) -> Value {
    serde_json::from_slice(&record(id).payload).expect("generated JSON")
}

/// What producing the input took.
#[derive(Debug, Clone)]
pub struct Produced {
    /// Payload bytes.
    pub bytes: u64,
    /// Generation, produce and flush until every record is acknowledged.
    pub seconds: f64,
    /// Per id: status 200 (so (2) and (4) must output it).
    pub ok: Vec<bool>,
}

impl Produced {
    /// Records with status 200.
    pub fn ok_count(&self) -> u64 {
        self.ok.iter().filter(|b| **b).count() as u64
    }
}

/// Delivery reports of a producer, counted (the input's, the join table's).
#[derive(Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    /// Records acknowledged and records failed so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

impl ClientContext for Tally {}

impl ProducerContext for Tally {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Produces records `0..n` to `topic` (idempotent, acks=all, the records of a
/// partition in id order) and waits until all are acknowledged.
pub fn produce(broker: &Broker, topic: &str, n: u64) -> Result<Produced, String> {
    let mut cfg = broker.client_config();
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    let producer: BaseProducer<Tally> = cfg
        .create_with_context(Tally::default())
        .map_err(|e| format!("input producer: {e}"))?;
    let t0 = Instant::now();
    let mut ok = Vec::with_capacity(n as usize);
    let mut bytes = 0;
    for id in 0..n {
        let r = record(id);
        ok.push(r.ok);
        bytes += r.payload.len() as u64;
        let mut rec = BaseRecord::to(topic)
            .partition(r.partition)
            .key(&r.key)
            .payload(&r.payload);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    rec = back;
                }
                Err((e, _)) => return Err(format!("produce to {topic}: {e}")),
            }
        }
        if id % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("flush {topic}: {e}"))?;
    let seconds = t0.elapsed().as_secs_f64();
    let (acked, failed) = producer.context().counts();
    if failed > 0 || acked != n {
        return Err(format!(
            "input: {acked} of {n} records acknowledged, {failed} failed"
        ));
    }
    Ok(Produced { bytes, seconds, ok })
}
