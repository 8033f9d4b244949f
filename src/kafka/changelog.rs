//! Reading changelog and checkpoint topics back (DESIGN.md §3, State):
//! whole partitions, from the beginning to the end as it stands, at
//! assignment and by `weir reset-offsets`. The records' shapes are the
//! state layer's ([`crate::state::codec`]); this file only moves bytes:
//! each record is handed on borrowed from the consumer, and what to keep of
//! it is the state layer's decision ([`crate::state::restore::Restorer`]).

use crate::kafka::client::EndReader;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use crate::state::codec::SEQ_HEADER;
pub use crate::state::restore::LogRecordRef;
pub use crate::state::LogRecord;

/// Headers of a changelog record of write `seq`.
pub fn headers(seq: u64) -> OwnedHeaders {
    let text = crate::state::codec::seq_text(seq);
    OwnedHeaders::new_with_capacity(1).insert(Header {
        key: SEQ_HEADER,
        value: Some(text.as_bytes()),
    })
}

/// Errors reading a changelog.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// The broker could not be read.
    #[error("reading changelog partitions {parts:?}: {source}")]
    Kafka {
        /// The partitions being read, `topic/partition`.
        parts: Vec<String>,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The end was not reached in time; a partial state must not be used.
    #[error("reading changelog partitions {parts:?}: end not reached within {timeout:?}")]
    Timeout {
        /// The partitions not read to the end, `topic/partition`.
        parts: Vec<String>,
        /// The bound.
        timeout: Duration,
    },
}

/// How long a read waits without a new record before it asks again where
/// the consumer stands: a partition whose position (the next offset
/// librdkafka would hand over, moved past transaction markers and aborted
/// records too) has reached the end taken at the start is read, however
/// the broker reports the end (Tansu's high watermark is the last batch's
/// base offset + 1). A quiet read is never taken as the end by itself: a
/// loaded broker can answer a fetch after more than this, and a partial
/// changelog must not become the state (a 1M-window restore once came back
/// with 112,815 windows that way); the read goes on to its deadline.
pub const QUIET: Duration = Duration::from_secs(1);

/// How much a read took in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Records read.
    pub records: u64,
    /// Bytes of their keys and payloads.
    pub bytes: u64,
}

/// Reads every record of the partitions `parts` from the beginning to the
/// end as it stands now (blocking, bounded by `timeout`) and hands each to
/// `each`, borrowed from the consumer (nothing is copied or collected
/// here), in log order per partition; the partitions of one topic
/// interleave, topics come one after another in name order. With
/// `read_committed`, only committed transactions are read and the end is
/// the last stable offset: records of a transaction still open (a crashed
/// instance not yet fenced) are not part of the state. A partition is read
/// to its end when librdkafka reports the end of the partition (the last
/// stable offset under `read_committed`, past the transaction markers no
/// consumer sees), when a record at the high watermark arrives, or when
/// the consumer's position has reached the end taken at the start (checked
/// after [`QUIET`] without a record). Missing topics yield nothing.
///
/// # Errors
/// [`ChangelogError`] when the broker cannot be read or the end is not
/// reached within `timeout`; `each` may have seen part of the records then.
pub fn read_partitions(
    base: &ClientConfig,
    parts: &[(String, i32)],
    read_committed: bool,
    timeout: Duration,
    each: &mut dyn FnMut(LogRecordRef<'_>),
) -> Result<ReadStats, ChangelogError> {
    let deadline = Instant::now() + timeout;
    let mut topics: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    topics.sort();
    topics.dedup();
    let mut stats = ReadStats::default();
    for topic in topics {
        let ps: Vec<i32> = parts
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, p)| *p)
            .collect();
        read_topic(
            base,
            topic,
            Some(&ps),
            read_committed,
            deadline,
            timeout,
            &mut stats,
            each,
        )?;
    }
    Ok(stats)
}

/// Every record of every partition of `topic`, as [`read_partitions`]
/// reads them, copied (the checkpoint topic: one small record per
/// partition and write).
///
/// # Errors
/// As [`read_partitions`].
pub fn read_topic_to_end(
    base: &ClientConfig,
    topic: &str,
    read_committed: bool,
    timeout: Duration,
) -> Result<Vec<LogRecord>, ChangelogError> {
    let mut out = Vec::new();
    read_topic(
        base,
        topic,
        None,
        read_committed,
        Instant::now() + timeout,
        timeout,
        &mut ReadStats::default(),
        &mut |r| out.push(r.to_owned_record()),
    )?;
    Ok(out)
}

/// `fetch_watermarks`, retried until `deadline` while the partition has
/// no leader yet: a topic created a moment ago (weir creates its
/// checkpoint topic just before reading it) answers `NotLeaderForPartition`
/// or `LeaderNotAvailable` for a while, which must not stop the pipeline.
pub(crate) fn watermarks<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    deadline: Instant,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<(i64, i64)> {
    use rdkafka::types::RDKafkaErrorCode as C;
    loop {
        match consumer.fetch_watermarks(topic, partition, timeout) {
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(C::NotLeaderForPartition | C::LeaderNotAvailable)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

/// The partitions of `targets` (partition → offset of the last record at
/// the start) whose position has passed that offset.
fn reached_end(
    consumer: &BaseConsumer<EndReader>,
    topic: &str,
    targets: &HashMap<i32, i64>,
) -> rdkafka::error::KafkaResult<Vec<i32>> {
    let positions = consumer.position()?;
    Ok(targets
        .iter()
        .filter(|(p, last)| {
            matches!(
                positions.find_partition(topic, **p).map(|e| e.offset()),
                Some(Offset::Offset(next)) if next > **last
            )
        })
        .map(|(p, _)| *p)
        .collect())
}

/// [`read_partitions`] for the partitions `ps` (all when `None`) of one
/// topic (librdkafka's end-of-partition event names the partition only).
#[allow(clippy::too_many_arguments)]
fn read_topic(
    base: &ClientConfig,
    topic: &str,
    ps: Option<&[i32]>,
    read_committed: bool,
    deadline: Instant,
    timeout: Duration,
    stats: &mut ReadStats,
    each: &mut dyn FnMut(LogRecordRef<'_>),
) -> Result<(), ChangelogError> {
    let err = |source| ChangelogError::Kafka {
        parts: match ps {
            Some(ps) => ps.iter().map(|p| format!("{topic}/{p}")).collect(),
            None => vec![topic.to_owned()],
        },
        source,
    };
    // librdkafka's fetch sizes (50 MB per response, 1 MB per partition):
    // larger ones (64 MB, 16 MB) were tried and made a loaded broker answer
    // so late that a 3 s quiet fallback (since removed, see [`QUIET`]) took
    // a partial changelog for its end.
    let cfg = crate::kafka::client::end_reader(base, "weir.state-reader", read_committed);
    let consumer: BaseConsumer<EndReader> = cfg.create_with_context(EndReader).map_err(err)?;
    let md = consumer.fetch_metadata(Some(topic), timeout).map_err(err)?;
    let Some(count) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
    else {
        return Ok(());
    };
    let mut targets: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    let all: Vec<i32> = (0..count).collect();
    for p in ps.unwrap_or(&all).iter().filter(|p| **p < count) {
        let (low, high) = watermarks(&consumer, topic, *p, deadline, timeout).map_err(err)?;
        if high > low {
            targets.insert(*p, high - 1);
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(err)?;
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl).map_err(err)?;
    let mut take = |msg: &BorrowedMessage<'_>| {
        let seq = msg
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == SEQ_HEADER))
            .and_then(|h| crate::state::codec::parse_seq(h.value?))
            .unwrap_or(0);
        let (key, payload) = (msg.key().unwrap_or_default(), msg.payload());
        stats.records += 1;
        stats.bytes += (key.len() + payload.map_or(0, <[u8]>::len)) as u64;
        each(LogRecordRef {
            topic,
            partition: msg.partition(),
            key,
            payload,
            seq,
        });
    };
    let mut last_progress = Instant::now();
    while !targets.is_empty() {
        if Instant::now() >= deadline {
            return Err(ChangelogError::Timeout {
                parts: targets.keys().map(|p| format!("{topic}/{p}")).collect(),
                timeout,
            });
        }
        if last_progress.elapsed() >= QUIET {
            last_progress = Instant::now();
            let read = reached_end(&consumer, topic, &targets).map_err(err)?;
            for p in read {
                targets.remove(&p);
            }
            if targets.is_empty() {
                break;
            }
            tracing::debug!(%topic, partitions = ?targets.keys().collect::<Vec<_>>(), "no record for {QUIET:?} and the end not reached; reading on");
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                targets.remove(&p);
            }
            Some(Err(e)) => return Err(err(e)),
            Some(Ok(msg)) => {
                last_progress = Instant::now();
                take(&msg);
                if targets
                    .get(&msg.partition())
                    .is_some_and(|last| msg.offset() >= *last)
                {
                    targets.remove(&msg.partition());
                }
            }
        }
    }
    // Records of the last fetched batch beyond the reported high watermark
    // (Tansu reports the last batch's base offset + 1) are already queued.
    while let Some(m) = consumer.poll(Duration::from_millis(50)) {
        if let Ok(msg) = m {
            take(&msg);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    /// A broker slower to answer each fetch than [`QUIET`] still yields
    /// the whole changelog: a quiet read is not taken for its end.
    #[test]
    fn a_broker_slower_than_quiet_still_gives_the_whole_changelog() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster
            .create_topic("g.windows.changelog", 1, 1)
            .expect("topic");
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", cluster.bootstrap_servers());
        let producer: BaseProducer = base.create().expect("producer");
        let value = vec![b'x'; 10_000];
        const RECORDS: u64 = 300;
        for i in 0..RECORDS {
            let key = format!("k{i}");
            producer
                .send(
                    BaseRecord::to("g.windows.changelog")
                        .key(&key)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
        // Each fetch returns at most 1 MB (about 100 records) and now takes
        // longer than QUIET to come back.
        cluster
            .broker_round_trip_time(1, QUIET + Duration::from_millis(500))
            .expect("rtt");
        let mut keys = Vec::new();
        let stats = read_partitions(
            &base,
            &[("g.windows.changelog".to_owned(), 0)],
            false,
            // About 15 s on an idle machine; the bound is generous so that
            // a loaded one (once 60 s were not enough) still reads it all.
            Duration::from_secs(300),
            &mut |r| keys.push(String::from_utf8_lossy(r.key).into_owned()),
        )
        .expect("read");
        assert_eq!(stats.records, RECORDS);
        assert_eq!(keys.first().map(String::as_str), Some("k0"));
        assert_eq!(keys.last().map(String::as_str), Some("k299"));
    }
}
