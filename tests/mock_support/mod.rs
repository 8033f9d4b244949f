//! Shared helpers of the mock-cluster integration tests: an embedded broker,
//! producing records, running pipelines through the library, reading sinks.

#![allow(dead_code)]

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::expr::CelEnv;
use weir::http::Health;
use weir::kafka::embedded::Embedded;
use weir::metrics::Metrics;
use weir::plan::Plan;
use weir::runtime::daemon::shutdown_channel;
use weir::runtime::{run_pipeline, RunOptions, RuntimeError, Summary};
use weir::spec::daemon::KafkaConfig;
use weir::spec::{parse_text, PipelineSpec};

/// Compiles pipeline YAML text.
pub fn plan(yaml: &str) -> Arc<Plan> {
    let loaded = parse_text::<PipelineSpec>(Path::new("test.yaml"), yaml).expect("pipeline parses");
    Arc::new(weir::plan::compile(&loaded, &CelEnv::new()).expect("pipeline compiles"))
}

/// A mock cluster with the source topic (`partitions` partitions) and every
/// output topic of `plan` created.
pub fn cluster(plan: &Plan, partitions: i32) -> Embedded {
    let b = Embedded::start().expect("mock cluster starts");
    for t in &plan.topics {
        b.create_topic(t, partitions).expect("source topic");
    }
    for t in plan
        .changelog_topics()
        .into_iter()
        .chain(plan.repartition_topic().map(str::to_owned))
    {
        b.create_topic(&t, partitions).expect("state topic");
    }
    for t in plan.output_topics() {
        b.create_topic(&t, 1).expect("output topic");
    }
    b
}

/// Client config for `b`.
pub fn config(b: &Embedded) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", b.bootstrap_servers());
    c
}

/// Produces `(partition, key, payload)` records to `topic` and waits for them.
pub fn produce(b: &Embedded, topic: &str, records: &[(i32, Option<String>, String)]) {
    let p: BaseProducer = config(b).set("linger.ms", "1").create().expect("producer");
    for (part, key, payload) in records {
        let mut r = BaseRecord::to(topic)
            .partition(*part)
            .payload(payload.as_str());
        if let Some(k) = key {
            r = r.key(k.as_str());
        }
        let mut r = r;
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// High watermark of every partition of `topic`.
pub fn ends(b: &Embedded, topic: &str, partitions: i32) -> HashMap<(String, i32), i64> {
    let c: BaseConsumer = config(b).create().expect("consumer");
    (0..partitions)
        .map(|p| {
            (
                (topic.to_owned(), p),
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1,
            )
        })
        .collect()
}

/// Run options against `b`. The mock cluster holds a departed member's
/// partitions until its session times out even after LeaveGroup, so a short
/// session keeps restarts quick.
pub fn options(b: &Embedded, finish_at: Option<HashMap<(String, i32), i64>>) -> RunOptions {
    RunOptions {
        kafka: KafkaConfig {
            bootstrap_servers: b.bootstrap_servers(),
            client: [(
                "session.timeout.ms".to_owned(),
                serde_yaml::Value::from("6000"),
            )]
            .into_iter()
            .collect(),
        },
        commit_interval: Duration::from_millis(200),
        shutdown_timeout: Duration::from_secs(10),
        commit_timeout: Duration::from_secs(10),
        finish_at,
        instance: "test".to_owned(),
    }
}

/// Reads `topic` (one partition) from the beginning until it has `n` records
/// or `timeout` passes; returns (key, value) pairs in order.
pub fn read(
    b: &Embedded,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<(Option<String>, Value)> {
    read_full(b, topic, n, timeout)
        .into_iter()
        .map(|r| {
            (
                r.key,
                serde_json::from_slice(&r.payload).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// Runs `plan` on `b` until `topic` (`partitions` partitions) is drained and
/// its windows are flushed, as `weir dev` does.
pub async fn run_to_end(
    plan: &Arc<Plan>,
    b: &Embedded,
    topic: &str,
    partitions: i32,
) -> Result<Summary, RuntimeError> {
    let (_tx, rx) = shutdown_channel();
    let opts = options(b, Some(ends(b, topic, partitions)));
    run_pipeline(
        Arc::clone(plan),
        opts,
        Metrics::new(),
        Arc::new(Health::default()),
        rx,
    )
    .await
}

/// Number of records in partition 0 of `topic`.
pub fn count(b: &Embedded, topic: &str) -> i64 {
    let c: BaseConsumer = config(b).create().expect("consumer");
    c.fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .1
}

/// A record read back with its headers.
pub struct Full {
    /// Key text.
    pub key: Option<String>,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Headers as text.
    pub headers: Vec<(String, String)>,
}

/// Reads `n` records of partition 0 of `topic` with payload bytes and headers.
pub fn read_full(b: &Embedded, topic: &str, n: usize, timeout: Duration) -> Vec<Full> {
    use rdkafka::message::Headers;
    let c = reader(b, topic, "read_uncommitted");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Full {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    out
}

/// Reads partition 0 of `topic` as a `read_committed` consumer: every
/// record of committed transactions, waiting at most `timeout` for `n`.
pub fn read_committed(b: &Embedded, topic: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let c = reader(b, topic, "read_committed");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null),
            );
        }
    }
    out
}

/// A consumer of partition 0 of `topic` from the beginning.
fn reader(b: &Embedded, topic: &str, isolation: &str) -> BaseConsumer {
    let c: BaseConsumer = config(b)
        .set("group.id", "test-reader")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    c
}
