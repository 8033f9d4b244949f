//! Rule T4 of DESIGN.md §7, no race with the table: [`Hold`] keeps a stream
//! record at event time `t` until the table's watermark reaches `t` (or the
//! table is idle), so that a replay joins every record with the same
//! versions as the first run (Kafka Streams' `max.task.idle.ms`, KIP-695);
//! [`TableWatermark`] computes that watermark over the table's partitions.

use crate::record::Record;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// The watermark of a table (T4): the minimum over its partitions of (the
/// partition's greatest version time − `max_out_of_orderness`), in ms. A
/// partition with no record yet holds it at `i64::MIN`; one marked idle (or
/// at its end) does not count.
#[derive(Debug, Clone)]
pub struct TableWatermark {
    /// Per partition: greatest version time seen (ms), `i64::MIN` for none,
    /// and whether the partition is idle.
    partitions: HashMap<i32, (i64, bool)>,
    /// The table's `max_out_of_orderness`, ms.
    max_out_of_orderness_ms: i64,
}

impl TableWatermark {
    /// A watermark over the table `partitions` (ids), none read yet.
    pub fn new(partitions: impl IntoIterator<Item = i32>, max_out_of_orderness_ms: i64) -> Self {
        TableWatermark {
            partitions: partitions
                .into_iter()
                .map(|p| (p, (i64::MIN, false)))
                .collect(),
            max_out_of_orderness_ms,
        }
    }

    /// Notes a table record of `partition` at version time `time` (ms); a
    /// partition not given to [`TableWatermark::new`] is added. A record
    /// makes an idle partition active again.
    pub fn observe(&mut self, partition: i32, time: i64) {
        let p = self
            .partitions
            .entry(partition)
            .or_insert((i64::MIN, false));
        p.0 = p.0.max(time);
        p.1 = false;
    }

    /// Marks `partition` idle (or at its end, `true`) or active (`false`).
    pub fn set_idle(&mut self, partition: i32, idle: bool) {
        self.partitions
            .entry(partition)
            .or_insert((i64::MIN, false))
            .1 = idle;
    }

    /// The table's watermark, ms; `None` when every partition is idle (the
    /// table is idle: hold nothing, [`Hold::set_idle`]).
    pub fn watermark(&self) -> Option<i64> {
        self.partitions
            .values()
            .filter(|(_, idle)| !idle)
            .map(|(max, _)| max.saturating_sub(self.max_out_of_orderness_ms))
            .min()
    }
}

/// Stream records waiting for the table (T4), in arrival (offset) order:
/// a record leaves when the table's watermark reaches its event time (or
/// the table is idle, or its event time could not be read, which the join
/// reports) and every record that arrived before it has left. Keeping the
/// order means a partition's records cross a repartition topic, whose
/// readers drop what is not above the highest offset seen, and are
/// committed, in offset order; a record ready early waits behind an older
/// one (a decision DESIGN.md §7 leaves open). Held records are not
/// committed past: see [`Hold::min_offsets`].
#[derive(Debug, Clone, Default)]
pub struct Hold {
    /// Held records, in arrival order.
    held: VecDeque<Record>,
    /// The event times held, with their counts (for the oldest).
    times: BTreeMap<i64, usize>,
    /// Greatest table watermark given to [`Hold::advance`], ms.
    table_watermark: Option<i64>,
    /// Whether the table is idle.
    idle: bool,
}

impl Hold {
    /// An empty hold; the table's watermark is `i64::MIN` until advanced.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `rec` may leave, the records before it aside.
    fn ready(&self, rec: &Record) -> bool {
        self.idle
            || rec.time_error.is_some()
            || self.table_watermark.is_some_and(|w| rec.event_time <= w)
    }

    /// Offers a stream record: returns it at once when nothing is held and
    /// it is ready (its event time at or below the table's watermark, the
    /// table idle, or no readable event time); holds it (and returns
    /// `None`) otherwise.
    pub fn offer(&mut self, rec: Record) -> Option<Record> {
        if self.held.is_empty() && self.ready(&rec) {
            return Some(rec);
        }
        if rec.time_error.is_none() {
            *self.times.entry(rec.event_time).or_default() += 1;
        }
        self.held.push_back(rec);
        None
    }

    /// Moves the table's watermark to `table_watermark` (ms; a lower one
    /// than already given changes nothing) and releases, in arrival order,
    /// the held records from the oldest up to the first that is not ready.
    pub fn advance(&mut self, table_watermark: i64) -> Vec<Record> {
        let w = self
            .table_watermark
            .map_or(table_watermark, |w| w.max(table_watermark));
        self.table_watermark = Some(w);
        let mut out = Vec::new();
        while self.held.front().is_some_and(|r| self.ready(r)) {
            if let Some(r) = self.held.pop_front() {
                self.forget(&r);
                out.push(r);
            }
        }
        out
    }

    /// Marks the table idle (`true`: releases every held record, in arrival
    /// order, and holds nothing while idle) or active again (`false`).
    pub fn set_idle(&mut self, idle: bool) -> Vec<Record> {
        self.idle = idle;
        if idle {
            self.release_all()
        } else {
            Vec::new()
        }
    }

    /// Releases every held record, in arrival order (at the end of input).
    pub fn release_all(&mut self) -> Vec<Record> {
        self.times.clear();
        self.held.drain(..).collect()
    }

    fn forget(&mut self, r: &Record) {
        if r.time_error.is_some() {
            return;
        }
        if let Some(n) = self.times.get_mut(&r.event_time) {
            *n -= 1;
            if *n == 0 {
                self.times.remove(&r.event_time);
            }
        }
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The smallest event time held (ms), if any: the runtime measures the
    /// join's `history` from no later than it, so that a record released
    /// later still finds its versions.
    pub fn oldest_event_time(&self) -> Option<i64> {
        self.times.keys().next().copied()
    }

    /// The smallest source offset held per `(topic, partition)` of the
    /// records' [`crate::record::Origin`]: the runtime commits no offset of
    /// that partition past it.
    pub fn min_offsets(&self) -> HashMap<(Arc<str>, i32), i64> {
        let mut out: HashMap<(Arc<str>, i32), i64> = HashMap::new();
        for r in &self.held {
            let o = &r.origin;
            out.entry((Arc::clone(&o.topic), o.partition))
                .and_modify(|m| *m = (*m).min(o.offset))
                .or_insert(o.offset);
        }
        out
    }
}
