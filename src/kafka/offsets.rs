//! A consumer group's offsets as `kafka-consumer-groups` sees them: the
//! group's state and members (DescribeGroups), partition counts (Metadata),
//! low and high watermarks and offsets for a time (ListOffsets, KIP-79), and
//! committed offsets (OffsetFetch / OffsetCommit). [`GroupAdmin`] is the
//! seam `weir reset-offsets` plans through, so that its decisions are
//! unit-tested against a fake: neither test broker answers offsets-for-times
//! or lists members (DESIGN.md §6).

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// A topic partition, `(topic, partition)`.
pub type TopicPartition = (String, i32);

/// A member of a consumer group, as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator assigned.
    pub id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host, as the coordinator saw it (`/10.0.0.7`).
    pub host: String,
}

/// A group's state (`Empty`, `Stable`, `PreparingRebalance`,
/// `CompletingRebalance`, `Dead`) and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The coordinator's state name; `Dead` for a group it does not know.
    pub state: String,
    /// Members; empty for a group without members and on brokers that do
    /// not list them (Tansu).
    pub members: Vec<Member>,
}

impl GroupDescription {
    /// Whether offsets may be changed: only while no member can commit over
    /// them (`Empty` or `Dead`), as `kafka-consumer-groups` requires.
    pub fn is_inactive(&self) -> bool {
        matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// Errors of a group or offset request.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct OffsetsError {
    /// The request, e.g. `describe group weir.x`.
    pub op: String,
    /// librdkafka's error.
    pub source: rdkafka::error::KafkaError,
}

/// The broker requests `weir reset-offsets` needs. Offsets are Kafka
/// offsets (the next record to read); times are ms since the Unix epoch.
pub trait GroupAdmin {
    /// The group's state and members.
    ///
    /// # Errors
    /// [`OffsetsError`] when the coordinator cannot be asked.
    fn describe_group(&self, group: &str) -> Result<GroupDescription, OffsetsError>;

    /// Partition count of every topic in the cluster.
    ///
    /// # Errors
    /// [`OffsetsError`] when metadata cannot be fetched.
    fn topics(&self) -> Result<BTreeMap<String, i32>, OffsetsError>;

    /// `(low, high)` watermarks of a partition: its first offset and the
    /// offset after its last record.
    ///
    /// # Errors
    /// [`OffsetsError`] when the leader cannot be asked.
    fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64), OffsetsError>;

    /// The group's committed offset of each partition, `None` where it has
    /// none.
    ///
    /// # Errors
    /// [`OffsetsError`] when the coordinator cannot be asked.
    fn committed(
        &self,
        group: &str,
        parts: &[TopicPartition],
    ) -> Result<Vec<Option<i64>>, OffsetsError>;

    /// For each partition, the earliest offset whose record timestamp is at
    /// or after `ms` (ListOffsets by timestamp, KIP-79); `None` when no
    /// record is that late.
    ///
    /// # Errors
    /// [`OffsetsError`] when the leaders cannot be asked.
    fn offsets_for_time(
        &self,
        parts: &[TopicPartition],
        ms: i64,
    ) -> Result<Vec<Option<i64>>, OffsetsError>;

    /// Commits `offsets` for `group` (allowed while it has no members).
    ///
    /// # Errors
    /// [`OffsetsError`] when the coordinator refuses.
    fn commit(&self, group: &str, offsets: &[(TopicPartition, i64)]) -> Result<(), OffsetsError>;
}

/// [`GroupAdmin`] over librdkafka clients made from a base config.
pub struct KafkaGroupAdmin {
    base: ClientConfig,
    timeout: Duration,
    client: BaseConsumer,
}

impl KafkaGroupAdmin {
    /// A client for `base` (bootstrap servers, TLS, SASL); every request is
    /// bounded by `timeout`.
    ///
    /// # Errors
    /// [`OffsetsError`] when the client cannot be created (bad properties).
    pub fn new(base: &ClientConfig, timeout: Duration) -> Result<Self, OffsetsError> {
        let client = base.create().map_err(|source| OffsetsError {
            op: "create admin client".to_owned(),
            source,
        })?;
        Ok(KafkaGroupAdmin {
            base: base.clone(),
            timeout,
            client,
        })
    }

    fn group_client(&self, group: &str) -> Result<BaseConsumer, OffsetsError> {
        let mut c = self.base.clone();
        c.set("group.id", group).set("enable.auto.commit", "false");
        c.create().map_err(|source| OffsetsError {
            op: format!("create client of group {group}"),
            source,
        })
    }
}

fn tpl_of(parts: &[TopicPartition]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    tpl
}

fn offset_of(tpl: &TopicPartitionList, (t, p): &TopicPartition) -> Option<i64> {
    match tpl.find_partition(t, *p)?.offset() {
        Offset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }
}

impl GroupAdmin for KafkaGroupAdmin {
    fn describe_group(&self, group: &str) -> Result<GroupDescription, OffsetsError> {
        let list = self
            .client
            .fetch_group_list(Some(group), self.timeout)
            .map_err(|source| OffsetsError {
                op: format!("describe group {group}"),
                source,
            })?;
        let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok(GroupDescription {
                state: "Dead".to_owned(),
                members: Vec::new(),
            });
        };
        Ok(GroupDescription {
            state: if g.state().is_empty() {
                "Dead".to_owned()
            } else {
                g.state().to_owned()
            },
            members: g
                .members()
                .iter()
                .map(|m| Member {
                    id: m.id().to_owned(),
                    client_id: m.client_id().to_owned(),
                    host: m.client_host().to_owned(),
                })
                .collect(),
        })
    }

    fn topics(&self) -> Result<BTreeMap<String, i32>, OffsetsError> {
        super::admin::partition_counts(&self.client, self.timeout)
            .map(|m| m.into_iter().collect())
            .map_err(|source| OffsetsError {
                op: "fetch metadata".to_owned(),
                source,
            })
    }

    fn watermarks(&self, (t, p): &TopicPartition) -> Result<(i64, i64), OffsetsError> {
        self.client
            .fetch_watermarks(t, *p, self.timeout)
            .map_err(|source| OffsetsError {
                op: format!("list offsets of {t}/{p}"),
                source,
            })
    }

    fn committed(
        &self,
        group: &str,
        parts: &[TopicPartition],
    ) -> Result<Vec<Option<i64>>, OffsetsError> {
        let c = self.group_client(group)?;
        let tpl = c
            .committed_offsets(tpl_of(parts), self.timeout)
            .map_err(|source| OffsetsError {
                op: format!("fetch committed offsets of group {group}"),
                source,
            })?;
        Ok(parts.iter().map(|tp| offset_of(&tpl, tp)).collect())
    }

    fn offsets_for_time(
        &self,
        parts: &[TopicPartition],
        ms: i64,
    ) -> Result<Vec<Option<i64>>, OffsetsError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in parts {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(ms));
        }
        let out = self
            .client
            .offsets_for_times(tpl, self.timeout)
            .map_err(|source| OffsetsError {
                op: "list offsets by time".to_owned(),
                source,
            })?;
        Ok(parts.iter().map(|tp| offset_of(&out, tp)).collect())
    }

    fn commit(&self, group: &str, offsets: &[(TopicPartition, i64)]) -> Result<(), OffsetsError> {
        let c = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in offsets {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        c.commit(&tpl, CommitMode::Sync)
            .map_err(|source| OffsetsError {
                op: format!("commit offsets of group {group}"),
                source,
            })
    }
}
