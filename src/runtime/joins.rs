//! Stream–table joins on the one per-record path (DESIGN.md §7): a table
//! record becomes a version in the chain's store of that table, and rule
//! T4 holds a stream record back until every table its stages join at
//! event time has a watermark at or past the record's event time (or is
//! idle at its end). Held records keep their original bytes here, for the
//! DLQ when they fail once released. The join itself is the chain's
//! `join` stage ([`crate::operator::join::TableJoin`]).
//!
//! A table is one partition in `weir test` (each topic is fed as one
//! partition); `weir run` and `weir dev` read every partition of the table
//! topics into a [`TableCache`] and give a chain created later (on
//! assignment) the versions and watermarks read so far.

use super::output::Original;
use super::processor::SourceMessage;
use crate::operator::chain::{Outcome, RecordError, StageRef, StepResult};
use crate::operator::join::{table_key, table_value, Hold, TableWatermark, VersionedTable};
use crate::operator::Chain;
use crate::plan::{Plan, TableDef};
use crate::record::{Origin, Record};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The original bytes of a held record.
#[derive(Debug, Clone)]
pub struct Held {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: i64,
}

impl Held {
    /// The record as it was read.
    pub fn original(&self) -> Original<'_> {
        Original {
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
            timestamp: self.timestamp,
        }
    }
}

/// Rule T4 for one partition's chain.
#[derive(Debug)]
pub struct JoinHold {
    hold: Hold,
    /// The watermark of every table joined at event time.
    tables: Vec<(String, TableWatermark)>,
    /// The original bytes of each held record, by source coordinates.
    originals: HashMap<(Arc<str>, i32, i64), Held>,
}

impl JoinHold {
    /// The hold of `chain`'s stages, when they join a table at event time.
    pub fn new(plan: &Plan, chain: &Chain) -> Option<JoinHold> {
        let tables: Vec<(String, TableWatermark)> = chain
            .event_time_join_tables()
            .into_iter()
            .filter_map(|name| plan.tables.iter().find(|t| t.name == name))
            .map(|t| {
                (
                    t.name.clone(),
                    TableWatermark::new([0], t.max_out_of_orderness),
                )
            })
            .collect();
        (!tables.is_empty()).then(|| JoinHold {
            hold: Hold::new(),
            tables,
            originals: HashMap::new(),
        })
    }

    /// Offers a decoded stream record: back at once when nothing is held
    /// and every table's watermark has reached its event time (or it has
    /// none to wait for: its event time could not be read, which the join
    /// reports), else held with its `original` bytes (`None`); records
    /// leave in offset order ([`Hold`]).
    pub fn offer(&mut self, rec: Record, original: Original<'_>) -> Option<Record> {
        let at = (
            Arc::clone(&rec.origin.topic),
            rec.origin.partition,
            rec.origin.offset,
        );
        let back = self.hold.offer(rec);
        if back.is_none() {
            self.originals.insert(
                at,
                Held {
                    key: original.key.map(<[u8]>::to_vec),
                    payload: original.payload.map(<[u8]>::to_vec),
                    timestamp: original.timestamp,
                },
            );
        }
        back
    }

    /// A version of `table` at `time` ms arrived on `partition`: the
    /// records the tables' watermark now releases, in arrival order.
    pub fn table_time(&mut self, table: &str, partition: i32, time: i64) -> Vec<(Record, Held)> {
        if let Some((_, wm)) = self.tables.iter_mut().find(|(n, _)| n == table) {
            wm.observe(partition, time);
        }
        self.release_ready()
    }

    /// Partition `partition` of `table` became idle at its end (`true`) or
    /// active again: the records the tables' watermark now releases.
    pub fn table_idle(&mut self, table: &str, partition: i32, idle: bool) -> Vec<(Record, Held)> {
        if let Some((_, wm)) = self.tables.iter_mut().find(|(n, _)| n == table) {
            wm.set_idle(partition, idle);
        }
        self.release_ready()
    }

    /// Replaces `table`'s watermark with `wm` (a chain created while the
    /// table was already read: [`TableCache::prime`]), before any record
    /// is offered.
    pub fn set_watermark(&mut self, table: &str, wm: &TableWatermark) {
        if let Some((_, w)) = self.tables.iter_mut().find(|(n, _)| n == table) {
            *w = wm.clone();
        }
        let released = self.release_ready();
        debug_assert!(released.is_empty(), "set before any record is offered");
    }

    /// Number of stream records held.
    pub fn held(&self) -> usize {
        self.hold.len()
    }

    /// The smallest source offset held, if any: no offset of the partition
    /// is committed past it (T4 "held records are not committed past").
    pub fn held_from(&self) -> Option<i64> {
        self.hold.min_offsets().into_values().min()
    }

    fn release_ready(&mut self) -> Vec<(Record, Held)> {
        let wm = self
            .tables
            .iter()
            .map(|(_, w)| w.watermark().unwrap_or(i64::MAX))
            .min()
            .unwrap_or(i64::MAX);
        let released = self.hold.advance(wm);
        self.take(released)
    }

    /// Every table idle at its end: every held record, in arrival order.
    pub fn release_all(&mut self) -> Vec<(Record, Held)> {
        let released = self.hold.release_all();
        self.take(released)
    }

    /// Where the tables' `history` is measured from: the chain's watermark,
    /// or the oldest held record's event time when that is older (so that a
    /// record released later still finds its versions).
    pub fn expiry_base(&self, chain: &Chain) -> i64 {
        self.hold
            .oldest_event_time()
            .map_or(chain.watermark(), |t| t.min(chain.watermark()))
    }

    fn take(&mut self, released: Vec<Record>) -> Vec<(Record, Held)> {
        released
            .into_iter()
            .map(|r| {
                let at = (
                    Arc::clone(&r.origin.topic),
                    r.origin.partition,
                    r.origin.offset,
                );
                let held = self.originals.remove(&at).unwrap_or(Held {
                    key: None,
                    payload: None,
                    timestamp: r.timestamp,
                });
                (r, held)
            })
            .collect()
    }
}

/// A table record as a version: `(key, version time ms, value)`, the value
/// `None` for a tombstone (T3). A record that cannot be decoded, has no
/// readable version time or a null key is an error of the table's own
/// (DESIGN.md §7 "Null keys"), as a step with that error.
pub fn table_version(
    plan: &Plan,
    table: &TableDef,
    m: SourceMessage<'_>,
    origin: Origin,
) -> Result<(Value, i64, Option<Value>), Box<StepResult>> {
    let fail = |message: String, mut rec: Record| {
        rec.timestamp = m.timestamp;
        Err(Box::new(StepResult {
            outcome: Some(Outcome::Error),
            errors: vec![RecordError {
                stage: StageRef::Source,
                message: format!("table `{}`: {message}", table.name),
                record: rec,
                input: true,
            }],
            ..Default::default()
        }))
    };
    let rec = match table.decoder.decode(m.raw(), origin.clone()) {
        Ok(r) => r,
        Err(e) => {
            let mut rec = Record::new(Value::Null, Value::Null);
            rec.origin = origin;
            return fail(e.to_string(), rec);
        }
    };
    if let Some(e) = &rec.time_error {
        return fail(format!("version time: {e}"), rec);
    }
    match table_key(table.key.as_ref(), &plan.env.root(), &rec) {
        Ok(Some(key)) => {
            let value = table_value(&rec);
            Ok((key, rec.event_time, value))
        }
        Ok(None) => fail(
            "the key is null (expected a record key, or a `key:` expression giving a value)".into(),
            rec,
        ),
        Err(e) => fail(e.to_string(), rec),
    }
}

/// Every table as read from Kafka so far (`weir run`, `weir dev`): each
/// table's versions and watermark over its partitions, so that a chain
/// created on assignment starts from the table as it stands, as if the
/// table topic had been re-read up to the reader's position (T1). The
/// cache keeps every version read (it is never expired: a partition
/// assigned later may resume from older records); a chain expires its own
/// copy behind its watermark.
#[derive(Debug, Default)]
pub struct TableCache {
    tables: Vec<(String, VersionedTable, TableWatermark)>,
}

impl TableCache {
    /// An empty cache of `plan`'s tables; `partitions` gives each table
    /// topic's partition count (a topic missing from it counts as one).
    pub fn new(plan: &Plan, partitions: &HashMap<String, i32>) -> Self {
        TableCache {
            tables: plan
                .tables
                .iter()
                .map(|t| {
                    let n = partitions.get(&t.topic).copied().unwrap_or(1).max(1);
                    (
                        t.name.clone(),
                        VersionedTable::new(),
                        TableWatermark::new(0..n, t.max_out_of_orderness),
                    )
                })
                .collect(),
        }
    }

    /// Notes a version of `table` (see [`table_version`]) read on `partition`.
    pub fn insert(
        &mut self,
        table: &str,
        partition: i32,
        key: &Value,
        time: i64,
        value: Option<Value>,
    ) {
        if let Some((_, v, w)) = self.tables.iter_mut().find(|(n, _, _)| n == table) {
            v.insert(key, time, value);
            w.observe(partition, time);
        }
    }

    /// Partition `partition` of `table` became idle at its end, or active.
    pub fn set_idle(&mut self, table: &str, partition: i32, idle: bool) {
        if let Some((_, _, w)) = self.tables.iter_mut().find(|(n, _, _)| n == table) {
            w.set_idle(partition, idle);
        }
    }

    /// Keys with a live version in `table` (`weir_table_entries`).
    pub fn entries(&self, table: &str) -> usize {
        self.tables
            .iter()
            .find(|(n, _, _)| n == table)
            .map_or(0, |(_, v, _)| v.len())
    }

    /// Gives `chain` (and its `hold`) every table as read so far.
    pub fn prime(&self, chain: &mut Chain, hold: Option<&mut JoinHold>) {
        for (name, versions, _) in &self.tables {
            chain.set_table_versions(name, versions);
        }
        if let Some(h) = hold {
            for (name, _, wm) in &self.tables {
                h.set_watermark(name, wm);
            }
        }
    }
}
