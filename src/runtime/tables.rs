//! Tables read from Kafka for `weir run` and `weir dev` (DESIGN.md §7): per
//! table topic one consumer outside the group, assigned every partition
//! from the beginning (a table topic is its own changelog, re-read at
//! every start). [`TableReader::load`] reads each partition to the end
//! offset captured at that moment (T1) before the pipeline subscribes;
//! then the pipeline loop polls it without waiting ([`TableReader::poll`])
//! and gives each version to every assigned partition that joins the
//! table, and [`TableReader::idle`] marks a partition idle once it has
//! been at its end for the table's `idle_timeout` (T4). One consumer per
//! topic because librdkafka's end-of-partition event names the partition
//! only.

use super::output::{collect, OutMsg, StepCounts};
use super::processor::SourceMessage;
use crate::kafka::changelog::watermarks;
use crate::kafka::client::EndReader;
use crate::plan::Plan;
use crate::record::Origin;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A table's `idle_timeout` when its file gives none, ms: reference data
/// rarely changes, and without a bound a stream record later than the
/// table's newest version would wait for the next one forever.
pub const DEFAULT_IDLE_TIMEOUT_MS: i64 = 10_000;

/// What reading a table record, or a table partition's idleness, caused.
#[derive(Debug)]
pub(super) enum TableEvent {
    /// A version of `plan.tables[table]` read on `partition`.
    Version {
        /// Index into the plan's tables.
        table: usize,
        /// Table topic partition.
        partition: i32,
        /// The table key.
        key: Value,
        /// Version time, ms.
        time: i64,
        /// `None`: a tombstone (T3).
        value: Option<Value>,
    },
    /// A table record that could not be decoded or keyed: its counts and
    /// DLQ record.
    Error(StepCounts, Vec<OutMsg>),
    /// Partition `partition` of `plan.tables[table]` is idle at its end
    /// (`true`) or has a record again.
    Idle {
        /// Index into the plan's tables.
        table: usize,
        /// Table topic partition.
        partition: i32,
        /// Idle or active.
        idle: bool,
    },
}

/// Why the tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableReadError {
    /// The broker could not be read.
    #[error("reading table topic `{topic}`: {source}")]
    Kafka {
        /// The table topic.
        topic: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The topic does not exist.
    #[error("table topic `{topic}` does not exist (expected the topic of `tables.{table}` to exist before the pipeline starts)")]
    Missing {
        /// The table topic.
        topic: String,
        /// The table's name.
        table: String,
    },
    /// The end captured at the start was not reached in time.
    #[error("reading table topic `{topic}`: its end was not reached within {timeout:?}")]
    Timeout {
        /// The table topic.
        topic: String,
        /// The bound.
        timeout: Duration,
    },
}

/// Where one table partition stands.
#[derive(Debug, Clone)]
struct PartState {
    /// librdkafka reported the end, and no record came since.
    at_end: bool,
    /// When the last record (or the end of the load) was seen, wall ms.
    last_ms: i64,
    /// Per table of the topic: marked idle.
    idle: Vec<bool>,
}

/// The consumer of one table topic.
struct TopicReader {
    topic: String,
    /// Indices into the plan's tables read from this topic.
    tables: Vec<usize>,
    consumer: BaseConsumer<EndReader>,
    parts: Vec<PartState>,
}

/// Every table topic of a pipeline, read ([`TableReader::load`]) and
/// followed ([`TableReader::poll`]).
pub(super) struct TableReader {
    readers: Vec<TopicReader>,
    /// Seconds [`TableReader::load`] took per table, in plan order.
    pub(super) load_seconds: Vec<f64>,
}

impl TableReader {
    /// A consumer per table topic of `plan`, assigned every partition from
    /// the beginning; `partitions` gives each topic's partition count
    /// (from the cluster's metadata). `base` is the connection.
    ///
    /// # Errors
    /// [`TableReadError`] when a topic is missing or a client cannot be made.
    pub(super) fn open(
        base: &ClientConfig,
        plan: &Plan,
        partitions: &HashMap<String, i32>,
        read_committed: bool,
    ) -> Result<TableReader, TableReadError> {
        let mut readers: Vec<TopicReader> = Vec::new();
        for (i, t) in plan.tables.iter().enumerate() {
            if let Some(r) = readers.iter_mut().find(|r| r.topic == t.topic) {
                r.tables.push(i);
                continue;
            }
            let err = |source| TableReadError::Kafka {
                topic: t.topic.clone(),
                source,
            };
            let Some(&n) = partitions.get(&t.topic) else {
                return Err(TableReadError::Missing {
                    topic: t.topic.clone(),
                    table: t.name.clone(),
                });
            };
            let cfg = crate::kafka::client::end_reader(
                base,
                &format!("{}.tables", plan.group_id),
                read_committed,
            );
            let consumer: BaseConsumer<EndReader> =
                cfg.create_with_context(EndReader).map_err(err)?;
            let mut tpl = TopicPartitionList::new();
            for p in 0..n {
                tpl.add_partition_offset(&t.topic, p, Offset::Beginning)
                    .map_err(err)?;
            }
            consumer.assign(&tpl).map_err(err)?;
            readers.push(TopicReader {
                topic: t.topic.clone(),
                tables: vec![i],
                consumer,
                parts: vec![
                    PartState {
                        at_end: false,
                        last_ms: 0,
                        idle: Vec::new(),
                    };
                    n as usize
                ],
            });
        }
        for r in &mut readers {
            for p in &mut r.parts {
                p.idle = vec![false; r.tables.len()];
            }
        }
        Ok(TableReader {
            readers,
            load_seconds: vec![0.0; plan.tables.len()],
        })
    }

    /// Reads every table partition up to the end offset it has now (T1),
    /// blocking, within `timeout`; each record's event goes to `each`.
    ///
    /// # Errors
    /// [`TableReadError`] when the broker cannot be read or an end is not
    /// reached in time (no partial table is used).
    pub(super) fn load(
        &mut self,
        plan: &Plan,
        timeout: Duration,
        each: &mut dyn FnMut(TableEvent),
    ) -> Result<(), TableReadError> {
        let deadline = Instant::now() + timeout;
        for r in &mut self.readers {
            let started = Instant::now();
            let err = |source| TableReadError::Kafka {
                topic: r.topic.clone(),
                source,
            };
            // Partition → offset of its last record now.
            let mut targets: HashMap<i32, i64> = HashMap::new();
            for p in 0..r.parts.len() as i32 {
                let (low, high) =
                    watermarks(&r.consumer, &r.topic, p, deadline, timeout).map_err(err)?;
                if high > low {
                    targets.insert(p, high - 1);
                }
            }
            let mut quiet = Instant::now();
            while !targets.is_empty() {
                if Instant::now() >= deadline {
                    return Err(TableReadError::Timeout {
                        topic: r.topic.clone(),
                        timeout,
                    });
                }
                if quiet.elapsed() >= Duration::from_secs(1) {
                    // Past transaction markers no record reaches the end:
                    // the consumer's position does.
                    quiet = Instant::now();
                    let pos = r.consumer.position().map_err(err)?;
                    targets.retain(|p, last| {
                        !matches!(
                            pos.find_partition(&r.topic, *p).map(|e| e.offset()),
                            Some(Offset::Offset(next)) if next > *last
                        )
                    });
                    continue;
                }
                match r.consumer.poll(Duration::from_millis(100)) {
                    None => {}
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        targets.remove(&p);
                    }
                    Some(Err(e)) => return Err(err(e)),
                    Some(Ok(m)) => {
                        quiet = Instant::now();
                        if targets
                            .get(&m.partition())
                            .is_some_and(|l| m.offset() >= *l)
                        {
                            targets.remove(&m.partition());
                        }
                        events(plan, &r.topic, &r.tables, &m, each);
                    }
                }
            }
            let now = crate::kafka::sink::now_ms();
            for p in &mut r.parts {
                p.at_end = true;
                p.last_ms = now;
            }
            let secs = started.elapsed().as_secs_f64();
            for &t in &r.tables {
                self.load_seconds[t] = secs;
            }
        }
        Ok(())
    }

    /// Takes what the consumers already hold, without waiting, at most
    /// `max` records; each record's event goes to `each` (a partition
    /// marked idle that has a record again first gives
    /// [`TableEvent::Idle`] with `idle: false`). Returns the records read.
    pub(super) fn poll(
        &mut self,
        plan: &Plan,
        max: usize,
        each: &mut dyn FnMut(TableEvent),
    ) -> usize {
        let mut n = 0;
        let now = crate::kafka::sink::now_ms();
        for r in &mut self.readers {
            while n < max {
                match r.consumer.poll(Duration::ZERO) {
                    None => break,
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        if let Some(s) = r.parts.get_mut(p as usize) {
                            s.at_end = true;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(pipeline = %plan.name, topic = %r.topic, error = %e, "table consume error");
                    }
                    Some(Ok(m)) => {
                        n += 1;
                        if let Some(s) = r.parts.get_mut(m.partition() as usize) {
                            s.at_end = false;
                            s.last_ms = now;
                            for (i, idle) in s.idle.iter_mut().enumerate() {
                                if std::mem::take(idle) {
                                    each(TableEvent::Idle {
                                        table: r.tables[i],
                                        partition: m.partition(),
                                        idle: false,
                                    });
                                }
                            }
                        }
                        events(plan, &r.topic, &r.tables, &m, each);
                    }
                }
            }
        }
        n
    }

    /// Marks idle every table partition at its end without a record for
    /// its table's `idle_timeout` ([`DEFAULT_IDLE_TIMEOUT_MS`] when none is
    /// given): one [`TableEvent::Idle`] each to `each`.
    pub(super) fn idle(&mut self, plan: &Plan, each: &mut dyn FnMut(TableEvent)) {
        let now = crate::kafka::sink::now_ms();
        for r in &mut self.readers {
            for (p, s) in r.parts.iter_mut().enumerate() {
                if !s.at_end {
                    continue;
                }
                for (i, idle) in s.idle.iter_mut().enumerate() {
                    let t = r.tables[i];
                    let timeout = plan.tables[t]
                        .idle_timeout
                        .unwrap_or(DEFAULT_IDLE_TIMEOUT_MS);
                    if !*idle && now - s.last_ms >= timeout {
                        *idle = true;
                        each(TableEvent::Idle {
                            table: t,
                            partition: p as i32,
                            idle: true,
                        });
                    }
                }
            }
        }
    }
}

/// The events of table record `m` of `topic`, one per table of `tables`
/// read from it.
fn events(
    plan: &Plan,
    topic: &str,
    tables: &[usize],
    m: &BorrowedMessage<'_>,
    each: &mut dyn FnMut(TableEvent),
) {
    let sm = SourceMessage {
        offset: m.offset(),
        key: m.key(),
        payload: m.payload(),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
    };
    for &t in tables {
        let def = &plan.tables[t];
        let origin = Origin {
            topic: Arc::from(topic),
            partition: m.partition(),
            offset: m.offset(),
        };
        match super::joins::table_version(plan, def, sm, origin) {
            Ok((key, time, value)) => each(TableEvent::Version {
                table: t,
                partition: m.partition(),
                key,
                time,
                value,
            }),
            Err(step) => {
                let original = sm.original();
                let mut out = Vec::new();
                let counts = collect(plan, *step, original, &mut out);
                each(TableEvent::Error(counts, out));
            }
        }
    }
}
