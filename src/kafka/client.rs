//! librdkafka client configuration: weir's defaults, then the daemon's
//! `kafka.client`, then a pipeline's `source.consumer`.
//! Property reference: librdkafka `CONFIGURATION.md`.

use crate::spec::daemon::{property_value, KafkaConfig};
use crate::spec::StartFrom;
use rdkafka::ClientConfig;
use std::collections::BTreeMap;

/// Common settings for every client weir creates.
pub fn base(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    for (k, v) in &kafka.client {
        c.set(k, property_value(v));
    }
    c
}

/// Consumer settings for a pipeline's group.
///
/// Offsets are committed only by weir (auto commit and auto offset store
/// off), after everything derived from them is acknowledged.
/// `fetch.queue.backoff.ms` is lowered from librdkafka's 1000 ms, which
/// stalls a full second whenever the prefetch queue fills.
pub fn consumer(
    kafka: &KafkaConfig,
    group_id: &str,
    start_from: StartFrom,
    overrides: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    c.set("fetch.queue.backoff.ms", "10");
    // Bound the prefetch. librdkafka keeps each fetch response's buffer
    // while any of its messages waits in the queue, plus ~250 bytes per
    // queued message, so the defaults (64 MB queued, 50 MB fetches) held
    // over 60 MB in a window job; 4 MB queued, 4 MB fetches of at most
    // 512 KB a partition keep it near 10 MB, which on loopback still
    // fetches ahead of one processing thread (`make bench`, issue 11).
    c.set("queued.max.messages.kbytes", "4096");
    c.set("queued.min.messages", "20000");
    c.set("fetch.max.bytes", "4194304");
    c.set("max.partition.fetch.bytes", "524288");
    c.set("partition.assignment.strategy", "range,roundrobin");
    for (k, v) in &kafka.client {
        c.set(k, property_value(v));
    }
    c.set("group.id", group_id);
    c.set("enable.auto.commit", "false");
    c.set("enable.auto.offset.store", "false");
    c.set(
        "auto.offset.reset",
        match start_from {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        },
    );
    for (k, v) in overrides {
        c.set(k, v);
    }
    c
}

/// Makes a producer config transactional with `id`: transactions time out
/// after 60 s, and records wait at most that long (librdkafka requires
/// `message.timeout.ms` ≤ `transaction.timeout.ms`), unless set in
/// `kafka.client`.
pub fn transactional(c: &mut ClientConfig, id: &str) {
    c.set("transactional.id", id);
    if c.get("transaction.timeout.ms").is_none() {
        c.set("transaction.timeout.ms", "60000");
    }
    let t = c
        .get("transaction.timeout.ms")
        .unwrap_or("60000")
        .to_owned();
    if c.get("message.timeout.ms").is_none_or(|m| m == "0") {
        c.set("message.timeout.ms", t);
    }
}

/// Producer settings: idempotent (ordered, no duplicates from retries),
/// acks from all in-sync replicas, no delivery timeout (a record is never
/// given up on; broker trouble stalls instead of losing), Java-compatible
/// key partitioning.
pub fn producer(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    c.set("enable.idempotence", "true");
    c.set("acks", "all");
    c.set("linger.ms", "5");
    c.set("message.timeout.ms", "0");
    c.set("partitioner", "murmur2_random");
    c.set("queue.buffering.max.messages", "1000000");
    for (k, v) in kafka.client.iter().filter(|(k, _)| !consumer_only(k)) {
        c.set(k, property_value(v));
    }
    c
}

/// librdkafka properties that only consumers read (librdkafka warns when a
/// producer is given one), so `kafka.client` can hold them for every pipeline.
fn consumer_only(key: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "group.",
        "fetch.",
        "session.",
        "heartbeat.",
        "auto.",
        "enable.auto.",
    ];
    const KEYS: [&str; 5] = [
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || KEYS.contains(&key)
}

/// Enqueues `rec`; while librdkafka's queue is full, calls `wait` and serves
/// delivery reports for 10 ms until there is room (backpressure).
///
/// # Errors
/// Any other enqueue error (unknown topic, record too large).
pub fn send_waiting<C, K, P>(
    producer: &rdkafka::producer::BaseProducer<C>,
    mut rec: rdkafka::producer::BaseRecord<'_, K, P, C::DeliveryOpaque>,
    mut wait: impl FnMut(),
) -> Result<(), rdkafka::error::KafkaError>
where
    C: rdkafka::producer::ProducerContext,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                wait();
                producer.poll(std::time::Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits until every record `producer` holds is acknowledged (its delivery
/// report served), or `timeout` has passed. rust-rdkafka's own
/// `BaseProducer::flush` serves delivery reports in steps of 100 ms whose
/// `poll` waits each step out in full, so any flush with a record in flight
/// took at least 100 ms (three of them per at-least-once commit stalled a
/// window job for 300 ms a second); here the steps are 1 ms.
///
/// # Errors
/// librdkafka's `Flush` error (timed out) when records are still in flight
/// at the deadline.
pub fn flush<C: rdkafka::producer::ProducerContext>(
    producer: &rdkafka::producer::BaseProducer<C>,
    timeout: std::time::Duration,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::producer::Producer;
    let until = std::time::Instant::now() + timeout;
    loop {
        // With no time to wait, librdkafka sends what lingers at once and
        // reports whether anything is still outstanding.
        match producer.flush(std::time::Duration::ZERO) {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= until => return Err(e),
            Err(_) => producer.poll(std::time::Duration::from_millis(1)),
        }
    }
}

/// Settings of a consumer that reads whole partitions to their end outside
/// any group (changelogs, tables): `group.id` only names it (nothing is
/// committed), the end of each partition is reported, and with
/// `read_committed` only committed transactions are read.
pub fn end_reader(base: &ClientConfig, group_id: &str, read_committed: bool) -> ClientConfig {
    let mut cfg = base.clone();
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.queue.backoff.ms", "10")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    cfg
}

/// The context of the consumers that read partitions to their end
/// (changelogs, tables) with `enable.partition.eof`: librdkafka also
/// reports each end of partition as a client error, which is how these
/// readers work, not an error to log; every other error is logged as
/// rust-rdkafka's default context does.
#[derive(Debug, Default, Clone, Copy)]
pub struct EndReader;

impl rdkafka::ClientContext for EndReader {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EndReader {}
