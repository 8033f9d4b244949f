//! The offsets part of `weir reset-offsets`: which source partitions are
//! reset, to which offsets, and whether the group allows it. Pure decisions
//! over a [`GroupAdmin`], with the semantics of Kafka's
//! `kafka-consumer-groups --reset-offsets` (the `--to-*` and `--shift-by`
//! targets, offsets clamped to the log, `--to-datetime` past the last record
//! going to the log end, only while the group is Empty or Dead).

use super::offsets::{GroupAdmin, GroupDescription, OffsetsError, TopicPartition};
use crate::spec::StartFrom;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where to move the group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    /// Each partition's first offset.
    Earliest,
    /// Each partition's log end (skip everything not yet read).
    Latest,
    /// The first record at or after this time (ms since the epoch), by the
    /// broker's time index; the log end when no record is that late.
    Datetime(i64),
    /// This offset, clamped to the partition's `[low, high]`.
    Offset(i64),
    /// The committed offset moved by this many records (negative: back),
    /// clamped; from the pipeline's `start_from` when nothing is committed.
    ShiftBy(i64),
}

/// `--topic T` or `--topic T:0,1,2`: a source topic, and optionally some of
/// its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    /// The topic.
    pub topic: String,
    /// The partitions; all when empty.
    pub partitions: Vec<i32>,
}

impl std::str::FromStr for TopicFilter {
    type Err = String;

    /// Parses `T` or `T:P,P,…`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (topic, parts) = match s.rsplit_once(':') {
            Some((t, ps)) => (t, Some(ps)),
            None => (s, None),
        };
        if topic.is_empty() {
            return Err(format!("`{s}`: expected TOPIC or TOPIC:PARTITION,…"));
        }
        let partitions = match parts {
            None => Vec::new(),
            Some(ps) => ps
                .split(',')
                .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                .collect::<Option<Vec<i32>>>()
                .ok_or_else(|| {
                    format!("`{s}`: expected TOPIC:PARTITION,… with partitions as numbers ≥ 0")
                })?,
        };
        Ok(TopicFilter {
            topic: topic.to_owned(),
            partitions,
        })
    }
}

/// One partition's reset: where the group stands and where it will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReset {
    /// The source partition.
    pub tp: TopicPartition,
    /// The group's committed offset; `None` when it has none.
    pub current: Option<i64>,
    /// The offset the group resumes at.
    pub new: i64,
    /// The partition's log end (high watermark).
    pub log_end: i64,
}

impl PartitionReset {
    /// Records the group will read after the reset: `log_end - new`.
    pub fn lag(&self) -> i64 {
        (self.log_end - self.new).max(0)
    }
}

/// Why a reset cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The group has members, or is rebalancing.
    #[error("assignments can only be reset if the group `{group}` is inactive, but the current state is {}{}; stop every `weir run` of this pipeline first", description.state, members(description))]
    GroupActive {
        /// The consumer group.
        group: String,
        /// What the coordinator said.
        description: GroupDescription,
    },
    /// A request to the broker failed.
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    /// A source topic is not in the cluster.
    #[error("source topic `{0}` does not exist")]
    MissingTopic(String),
    /// `--topic` names no source of the pipeline.
    #[error("--topic {topic}: not a source topic of pipeline {pipeline} (its sources: {sources})")]
    NotASource {
        /// The argument's topic.
        topic: String,
        /// The pipeline.
        pipeline: String,
        /// Its source topics, comma separated.
        sources: String,
    },
    /// `--topic` names a partition the topic does not have.
    #[error("--topic {topic}:{partition}: topic `{topic}` has partitions 0..{count}")]
    NoSuchPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// The topic's partition count.
        count: i32,
    },
    /// Only some source partitions of a pipeline whose windows follow a
    /// repartition: their state mixes every source partition.
    #[error("--topic: pipeline {0} repartitions by key before its windows, so their state holds records of every source partition; reset all of them (leave out --topic)")]
    PartialRepartition(String),
}

fn members(d: &GroupDescription) -> String {
    if d.members.is_empty() {
        return String::new();
    }
    let list: Vec<String> = d
        .members
        .iter()
        .map(|m| {
            let about: Vec<&str> = [m.client_id.as_str(), m.host.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if about.is_empty() {
                m.id.clone()
            } else {
                format!("{} ({})", m.id, about.join(", "))
            }
        })
        .collect();
    format!(" with members {}", list.join(", "))
}

/// Refuses unless `group` is Empty or Dead.
///
/// # Errors
/// [`ResetError::GroupActive`] naming the state and the members the broker
/// lists; [`ResetError::Offsets`] when the group cannot be described.
pub fn check_group(admin: &dyn GroupAdmin, group: &str) -> Result<GroupDescription, ResetError> {
    let d = admin.describe_group(group)?;
    if d.is_inactive() {
        Ok(d)
    } else {
        Err(ResetError::GroupActive {
            group: group.to_owned(),
            description: d,
        })
    }
}

/// The source partitions to reset, sorted: every partition of `sources`
/// (topic names) or of the topics for which `pattern` holds (the
/// pipeline's pattern match, [`crate::plan::Plan::is_source_topic`];
/// internal `weir.` and `__` topics excluded here too), narrowed by
/// `filters` when any.
///
/// # Errors
/// [`ResetError::MissingTopic`], [`ResetError::NotASource`],
/// [`ResetError::NoSuchPartition`].
pub fn select_partitions(
    pipeline: &str,
    sources: &[String],
    pattern: Option<&dyn Fn(&str) -> bool>,
    filters: &[TopicFilter],
    topics: &BTreeMap<String, i32>,
) -> Result<Vec<TopicPartition>, ResetError> {
    let mut names: Vec<String> = sources.to_vec();
    if let Some(re) = pattern {
        names.extend(
            topics
                .keys()
                .filter(|t| !t.starts_with("weir.") && !t.starts_with("__") && re(t))
                .cloned(),
        );
    }
    names.sort();
    names.dedup();
    for f in filters {
        if !names.contains(&f.topic) {
            return Err(ResetError::NotASource {
                topic: f.topic.clone(),
                pipeline: pipeline.to_owned(),
                sources: names.join(", "),
            });
        }
    }
    let mut out = Vec::new();
    for t in &names {
        let count = *topics
            .get(t)
            .ok_or_else(|| ResetError::MissingTopic(t.clone()))?;
        let chosen: Vec<&TopicFilter> = filters.iter().filter(|f| &f.topic == t).collect();
        if !filters.is_empty() && chosen.is_empty() {
            continue;
        }
        let mut parts: Vec<i32> = Vec::new();
        for f in &chosen {
            if f.partitions.is_empty() {
                parts.extend(0..count);
            }
            for &p in &f.partitions {
                if p >= count {
                    return Err(ResetError::NoSuchPartition {
                        topic: t.clone(),
                        partition: p,
                        count,
                    });
                }
                parts.push(p);
            }
        }
        if chosen.is_empty() {
            parts.extend(0..count);
        }
        parts.sort_unstable();
        parts.dedup();
        out.extend(parts.into_iter().map(|p| (t.clone(), p)));
    }
    Ok(out)
}

/// Computes each partition's new offset for `target` (see [`ResetTarget`]);
/// `start_from` is where the group starts a partition it has no offset for.
/// The log end is the high watermark, or the committed offset when that is
/// beyond it.
///
/// # Errors
/// [`ResetError::Offsets`] when the broker cannot be asked.
pub fn plan_offsets(
    admin: &dyn GroupAdmin,
    group: &str,
    parts: &[TopicPartition],
    target: ResetTarget,
    start_from: StartFrom,
) -> Result<Vec<PartitionReset>, ResetError> {
    let committed = admin.committed(group, parts)?;
    let by_time = match target {
        ResetTarget::Datetime(ms) => admin.offsets_for_time(parts, ms)?,
        _ => vec![None; parts.len()],
    };
    let mut out = Vec::with_capacity(parts.len());
    for ((tp, current), at_time) in parts.iter().zip(committed).zip(by_time) {
        let (low, high) = admin.watermarks(tp)?;
        // The group cannot have read past the log end: a committed offset
        // beyond the reported high watermark (Tansu reports the base offset
        // of the last batch + 1) shows where the end is at least.
        let high = high.max(current.unwrap_or(high));
        let clamp = |o: i64| o.clamp(low, high.max(low));
        let new = match target {
            ResetTarget::Earliest => low,
            ResetTarget::Latest => high,
            ResetTarget::Datetime(_) => at_time.map_or(high, clamp),
            ResetTarget::Offset(o) => clamp(o),
            ResetTarget::ShiftBy(n) => {
                let from = current.unwrap_or(match start_from {
                    StartFrom::Earliest => low,
                    StartFrom::Latest => high,
                });
                clamp(from.saturating_add(n))
            }
        };
        out.push(PartitionReset {
            tp: tp.clone(),
            current,
            new,
            log_end: high,
        });
    }
    Ok(out)
}

/// The plan as a table, one row per partition:
/// `TOPIC PARTITION CURRENT-OFFSET NEW-OFFSET LOG-END-OFFSET LAG`
/// (`-` for no committed offset; LAG is what the group will read after the
/// reset).
pub fn render(rows: &[PartitionReset]) -> String {
    let header = [
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.tp.0.clone(),
                r.tp.1.to_string(),
                r.current.map_or("-".to_owned(), |c| c.to_string()),
                r.new.to_string(),
                r.log_end.to_string(),
                r.lag().to_string(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            if i + 1 == row.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &cells {
        let r: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &r);
    }
    out
}

#[cfg(test)]
mod tests;
