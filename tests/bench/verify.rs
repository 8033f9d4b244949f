//! Checking the contenders' outputs: each output topic is read back from the
//! beginning with a plain consumer (all partitions assigned, no group),
//! until an end marker appended to every partition comes back (Tansu's high
//! watermark is wrong, DESIGN.md §6). Every record is identified by its
//! `id`; the check is exact (every expected id once, nothing else), and a
//! few hundred sampled records are kept whole for spot checks: unchanged
//! input for (1) and (3), (2) and (4) equal as parsed JSON.

use crate::broker::{partition_count, Broker};
use crate::data;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Key of the end markers appended to every output partition.
const END_MARKER_KEY: &str = "__weir_bench_end__";

/// About this many records are sampled per topic.
const SAMPLES: u64 = 400;

/// A sampled output record: key and parsed value.
pub type Sample = (Option<String>, Value);

/// What an output topic holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// Records read (end markers excluded).
    pub records: u64,
    /// Distinct ids among them.
    pub distinct: u64,
    /// Expected ids never seen.
    pub missing: u64,
    /// Records whose id should not be there.
    pub unexpected: u64,
    /// Records without a readable `id`.
    pub unparsable: u64,
    /// Sampled records by id (first occurrence).
    pub samples: BTreeMap<u64, Sample>,
}

impl Contents {
    /// Every expected id exactly once and nothing else.
    pub fn exact(&self, expected: u64) -> bool {
        self.records == expected
            && self.distinct == expected
            && self.missing == 0
            && self.unexpected == 0
            && self.unparsable == 0
    }

    /// One line for the report.
    pub fn summary(&self, expected: u64) -> String {
        format!(
            "{} records ({} expected): {} distinct ids, {} duplicates, {} missing, {} unexpected, {} unreadable",
            self.records,
            expected,
            self.distinct,
            self.records.saturating_sub(self.distinct),
            self.missing,
            self.unexpected,
            self.unparsable
        )
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

/// Whether record `id` is one of the sampled ones.
pub fn sampled(id: u64, n: u64) -> bool {
    id % (n / SAMPLES).max(1) == 0
}

/// Reads `topic` whole. `expected[id]` says whether record `id` should be
/// in it.
pub fn read_topic(
    broker: &Broker,
    topic: &str,
    expected: &[bool],
    timeout: Duration,
) -> Result<Contents, String> {
    let n = expected.len() as u64;
    let mut seen = vec![0u8; expected.len()];
    let mut c = Contents::default();
    for_each_record(broker, topic, false, timeout, |key, payload| {
        c.records += 1;
        let Ok(IdOnly { id }) = serde_json::from_slice(payload) else {
            c.unparsable += 1;
            return;
        };
        if id >= n || !expected[id as usize] {
            c.unexpected += 1;
            return;
        }
        let s = &mut seen[id as usize];
        if *s == 0 {
            c.distinct += 1;
            if sampled(id, n) {
                let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
                let value = serde_json::from_slice(payload).unwrap_or(Value::Null);
                c.samples.insert(id, (key, value));
            }
        }
        *s = s.saturating_add(1);
    })?;
    c.missing = expected
        .iter()
        .zip(&seen)
        .filter(|(e, s)| **e && **s == 0)
        .count() as u64;
    Ok(c)
}

/// Reads `topic` from the beginning of every partition until the end
/// markers it appends first come back, handing every other record's key
/// and payload to `f`; with `read_committed`, only records of committed
/// transactions. Returns the records read (markers excluded).
pub fn for_each_record(
    broker: &Broker,
    topic: &str,
    read_committed: bool,
    timeout: Duration,
    mut f: impl FnMut(Option<&[u8]>, &[u8]),
) -> Result<u64, String> {
    let cfg = broker.reader_config(&format!("weir-bench-verify-{topic}"), read_committed);
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("reader: {e}"))?;
    let partitions = partition_count(&consumer, topic)? as i32;

    let mut pcfg = broker.client_config();
    pcfg.set("acks", "all");
    let producer: BaseProducer = pcfg.create().map_err(|e| format!("marker producer: {e}"))?;
    for p in 0..partitions {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(p)
                    .key(END_MARKER_KEY)
                    .payload("end"),
            )
            .map_err(|(e, _)| format!("end marker: {e}"))?;
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("flush end markers: {e}"))?;

    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;

    let mut records = 0;
    let mut markers = 0;
    let deadline = Instant::now() + timeout;
    while markers < partitions {
        if Instant::now() > deadline {
            return Err(format!(
                "{topic}: end markers not all back within {timeout:?} ({markers} of {partitions}, {records} records read)"
            ));
        }
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => return Err(format!("{topic}: read: {e}")),
            Some(Ok(m)) => m,
        };
        if m.key() == Some(END_MARKER_KEY.as_bytes()) {
            markers += 1;
            continue;
        }
        records += 1;
        f(m.key(), m.payload().unwrap_or_default());
    }
    Ok(records)
}

/// Result of a spot check.
#[derive(Debug, Default)]
pub struct SpotCheck {
    /// Records compared.
    pub compared: usize,
    /// Of which equal.
    pub equal: usize,
    /// The first differences, described.
    pub diffs: Vec<String>,
}

impl SpotCheck {
    fn record(&mut self, ok: bool, diff: impl FnOnce() -> String) {
        self.compared += 1;
        if ok {
            self.equal += 1;
        } else if self.diffs.len() < 5 {
            self.diffs.push(diff());
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let mut s = format!("{} of {} sampled records equal", self.equal, self.compared);
        for d in &self.diffs {
            s += &format!("\n    {d}");
        }
        s
    }

    /// Something compared and everything equal.
    pub fn ok(&self) -> bool {
        self.compared > 0 && self.equal == self.compared
    }
}

/// Sampled records of a passthrough output against the input (key and
/// parsed value).
pub fn against_input(c: &Contents, n: u64) -> SpotCheck {
    let mut sc = SpotCheck::default();
    for id in (0..n).filter(|id| sampled(*id, n)) {
        let want: Sample = (Some(data::record(id).key), data::value(id));
        let got = c.samples.get(&id);
        sc.record(got == Some(&want), || {
            format!("id {id}: got {got:?}, want {want:?}")
        });
    }
    sc
}

/// Sampled records of two outputs of the same filter + transform against
/// each other (key and parsed value), over the ids that should be there.
pub fn against_each_other(a: &Contents, b: &Contents, ok: &[bool]) -> SpotCheck {
    let n = ok.len() as u64;
    let mut sc = SpotCheck::default();
    for id in (0..n).filter(|id| sampled(*id, n) && ok[*id as usize]) {
        let (x, y) = (a.samples.get(&id), b.samples.get(&id));
        sc.record(x.is_some() && x == y, || format!("id {id}: {x:?} vs {y:?}"));
    }
    sc
}

/// The group's committed offsets on `topic` against the input's end offsets
/// (records `0..n`, record `id` in partition `id % partitions`, offsets from
/// 0): after a clean stop, an at-least-once consumer has committed
/// everything. `Ok` with a one-line summary when all match.
pub fn committed(broker: &Broker, group: &str, topic: &str, n: u64) -> Result<String, String> {
    let parts = data::PARTITIONS;
    let mut cfg = broker.client_config();
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("offsets client: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| format!("committed offsets of {group}: {e}"))?;
    let mut wrong = Vec::new();
    for p in 0..parts {
        let want = (n + (parts - 1 - p) as u64) / parts as u64;
        let have = got
            .find_partition(topic, p)
            .map(|e| e.offset())
            .unwrap_or(Offset::Invalid);
        if have != Offset::Offset(want as i64) {
            wrong.push(format!("[{p}] {have:?} (end {want})"));
        }
    }
    if wrong.is_empty() {
        Ok(format!(
            "{group}: all {parts} partitions committed at the end"
        ))
    } else {
        Err(format!("{group}: {}", wrong.join(", ")))
    }
}
