//! The stream–table join of contenders (16) and (17): its table, topic
//! `bench-pages`, and the check of a join's output against it.
//!
//! The table holds two versions of each of the input's 10,000 pages
//! ([`crate::records::PAGES`]): version 1 at the input's base time and
//! version 2 at the middle of the input's time range ([`version2_ms`]),
//! each `{"page": "/product/N", "category": "c<N % 20>", "version": 1 | 2,
//! "ts": <version time>}`, keyed by the page, with the Kafka timestamp set
//! to the version time (Kafka Streams' version time; weir reads `$.ts`).
//! The topic has the input's partition count, and the producer picks a
//! key's partition as Java's default partitioner does (librdkafka's
//! `murmur2_random`), so that Kafka Streams' repartition topic, keyed by
//! page, is co-partitioned with it.
//!
//! A joined record is the input record's JSON with the table value under
//! `page_info`: version 2 when its `ts` is at or after version 2's time,
//! else version 1 (never null: version 1 is at the base time, before every
//! record). [`check`] reads an output topic back and compares every record
//! with that reference.

use crate::broker::Broker;
use crate::data::{self, Tally};
use crate::records::{BASE_TS_MS, PAGES, TS_STEP_MS};
use crate::verify::{self, Contents};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The table's topic (named in `join-pages.yaml` too, and passed to the
/// Kafka Streams peer as `--table=`).
pub const TOPIC: &str = "bench-pages";

/// Versions per page.
const VERSIONS: u64 = 2;

/// Version 2's time for an input of `n` records, ms: the middle of the
/// input's `ts` range (base + n × 3 ms / 2).
pub fn version2_ms(n: u64) -> u64 {
    BASE_TS_MS + n * TS_STEP_MS / 2
}

/// The time of `version` (1 or 2), ms.
fn version_ms(version: u64, n: u64) -> u64 {
    if version == 1 {
        BASE_TS_MS
    } else {
        version2_ms(n)
    }
}

/// The version a record at event time `ts` joins with: the greatest
/// version time ≤ `ts`.
pub fn version_at(ts: u64, n: u64) -> u64 {
    if ts >= version2_ms(n) {
        2
    } else {
        1
    }
}

/// The table value of page `page` (its number), version `version`.
pub fn value(page: u64, version: u64, n: u64) -> Value {
    json!({
        "page": format!("/product/{page}"),
        "category": format!("c{}", page % 20),
        "version": version,
        "ts": version_ms(version, n),
    })
}

/// Produces the table for an input of `n` records to [`TOPIC`] (which must
/// exist with [`crate::records::PARTITIONS`] partitions): every page's version 1, then
/// every page's version 2, idempotent, acks=all; returns the records and
/// the seconds it took once all are acknowledged.
pub fn produce(broker: &Broker, n: u64) -> Result<(u64, f64), String> {
    let mut cfg = broker.client_config();
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // Java's default partitioner for a non-null key:
        // murmur2(key) & 0x7fffffff % partitions.
        .set("partitioner", "murmur2_random");
    let producer: BaseProducer<Tally> = cfg
        .create_with_context(Tally::default())
        .map_err(|e| format!("table producer: {e}"))?;
    let t0 = Instant::now();
    let total = PAGES * VERSIONS;
    for version in 1..=VERSIONS {
        for page in 0..PAGES {
            let key = format!("/product/{page}");
            let payload = value(page, version, n).to_string();
            let mut rec = BaseRecord::to(TOPIC)
                .key(&key)
                .payload(&payload)
                .timestamp(version_ms(version, n) as i64);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        producer.poll(Duration::from_millis(10));
                        rec = back;
                    }
                    Err((e, _)) => return Err(format!("produce to {TOPIC}: {e}")),
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flush {TOPIC}: {e}"))?;
    let (acked, failed) = producer.context().counts();
    if failed > 0 || acked != total {
        return Err(format!(
            "{TOPIC}: {acked} of {total} records acknowledged, {failed} failed"
        ));
    }
    Ok((total, t0.elapsed().as_secs_f64()))
}

/// What a join's output topic holds, against the reference.
#[derive(Debug, Default)]
pub struct JoinCheck {
    /// Ids: every input id once, nothing else ([`Contents::exact`]).
    pub ids: Contents,
    /// Records whose `page_info` is null or missing.
    pub unmatched: u64,
    /// Records joined with the other version.
    pub wrong_version: u64,
    /// Records with the right version whose `page_info` differs otherwise.
    pub wrong_info: u64,
    /// Records that, without `page_info`, differ from their input record.
    pub wrong_body: u64,
    /// Records joined with version 1 and with version 2 (as expected).
    pub right: [u64; 2],
    /// The first differences, described.
    pub diffs: Vec<String>,
}

impl JoinCheck {
    /// Every input id exactly once, each record its input record plus the
    /// version of its page valid at its `ts`.
    pub fn ok(&self, n: u64) -> bool {
        self.ids.exact(n)
            && self.unmatched + self.wrong_version + self.wrong_info + self.wrong_body == 0
    }

    /// One line for the report.
    pub fn summary(&self, n: u64) -> String {
        let mut s = format!(
            "{}; page_info right in {} records (version 1: {}, version 2: {}), null in {}, the other version in {}, otherwise wrong in {}; {} records differ from their input record",
            self.ids.summary(n),
            self.right[0] + self.right[1],
            self.right[0],
            self.right[1],
            self.unmatched,
            self.wrong_version,
            self.wrong_info,
            self.wrong_body
        );
        for d in &self.diffs {
            s += &format!("; {d}");
        }
        s
    }

    fn diff(&mut self, d: impl FnOnce() -> String) {
        if self.diffs.len() < 3 {
            self.diffs.push(d());
        }
    }
}

/// Reads `topic` whole and checks it as the join of the `n` input records
/// with the table: exact ids (as [`verify::read_topic`] counts them) and
/// every record against its reference.
pub fn check(broker: &Broker, topic: &str, n: u64, timeout: Duration) -> Result<JoinCheck, String> {
    let v2 = version2_ms(n);
    let mut seen = vec![0u8; n as usize];
    let mut c = JoinCheck::default();
    verify::for_each_record(broker, topic, false, timeout, |_, payload| {
        c.ids.records += 1;
        let got: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(_) => {
                c.ids.unparsable += 1;
                return;
            }
        };
        let Some(id) = got.get("id").and_then(Value::as_u64) else {
            c.ids.unparsable += 1;
            return;
        };
        if id >= n {
            c.ids.unexpected += 1;
            return;
        }
        let s = &mut seen[id as usize];
        if *s == 0 {
            c.ids.distinct += 1;
        }
        *s = s.saturating_add(1);
        let Value::Object(mut body) = got else {
            c.ids.unparsable += 1;
            return;
        };
        let info = body.remove("page_info").unwrap_or(Value::Null);
        let input = data::value(id);
        if body != *input.as_object().expect("an input record is an object") {
            c.wrong_body += 1;
            c.diff(|| format!("id {id}: {body:?} is not its input record {input}"));
        }
        let ts = input["ts"].as_u64().expect("an input record has a ts");
        let page: u64 = input["page"]
            .as_str()
            .and_then(|p| p.strip_prefix("/product/"))
            .and_then(|p| p.parse().ok())
            .expect("an input record has a page");
        let version = version_at(ts, n);
        let want = value(page, version, n);
        if info.is_null() {
            c.unmatched += 1;
            c.diff(|| format!("id {id} (ts {ts}, version 2 at {v2}): page_info null"));
        } else if info.get("version").and_then(Value::as_u64) != Some(version) {
            c.wrong_version += 1;
            c.diff(|| {
                format!("id {id} (ts {ts}, version 2 at {v2}): page_info {info}, want {want}")
            });
        } else if info != want {
            c.wrong_info += 1;
            c.diff(|| format!("id {id}: page_info {info}, want {want}"));
        } else {
            c.right[version as usize - 1] += 1;
        }
    })?;
    c.ids.missing = seen.iter().filter(|s| **s == 0).count() as u64;
    Ok(c)
}
