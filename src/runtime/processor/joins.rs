//! The joins of the one per-record path (DESIGN.md §7): a stream-stream
//! join's right records, table records and their versions, the records a
//! table releases (T4), and what the runtime reads of the hold.

use super::super::output::{collect, Original, OutMsg, StepCounts};
use super::super::repartition;
use super::{undecodable, Observer, PartitionProcessor, SourceMessage, TableStep};
use crate::operator::chain::{StageRef, StepResult};
use crate::plan::Plan;
use crate::record::{Origin, Record};
use serde_json::Value;
use std::sync::Arc;

impl PartitionProcessor {
    /// A record of the right stream of stream-stream join `def`, read from
    /// `topic` (partition `partition`): decoded in the stream's format,
    /// then into the join ([`crate::operator::Chain::process_right`]); the pairs and
    /// unmatched records run through the stages after it, into `out`. A
    /// record that cannot be decoded is an error of the join stage.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_right(
        &mut self,
        plan: &Plan,
        def: &crate::plan::StreamJoinDef,
        topic: &str,
        partition: i32,
        m: SourceMessage<'_>,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> StepCounts {
        let original = m.original();
        let origin = Origin {
            topic: Arc::from(topic),
            partition,
            offset: m.offset,
        };
        let step = match def.decoder.decode(m.raw(), origin.clone()) {
            Ok(rec) => self.chain.process_right(def.stage, rec),
            Err(e) => undecodable(
                StageRef::Stage(def.stage),
                e.to_string(),
                origin,
                m.timestamp,
            ),
        };
        observe(&step);
        self.collect_crossing(plan, step, original, out)
    }

    /// [`collect`] for a record whose original payload is not forwarded
    /// (released, or of a join's right stream): what crosses the
    /// repartition topic goes into `out` too, and is counted downstream.
    fn collect_crossing(
        &self,
        plan: &Plan,
        mut step: StepResult,
        original: Original<'_>,
        out: &mut Vec<OutMsg>,
    ) -> StepCounts {
        let crossing: Vec<Record> = step.repartition.drain(..).collect();
        let mut c = collect(plan, step, original, out);
        if !crossing.is_empty() {
            for r in &crossing {
                out.push(repartition::record(r, &self.source, None));
            }
            c.outcome = None; // counted downstream
        }
        c
    }

    /// A record of table `table` (partition `partition` of its topic): a
    /// version of its key (a tombstone for a null payload), then the
    /// stream records it releases (T4), run through the stages; their
    /// records go to `out`, one count per released record. A table
    /// record that cannot be decoded or keyed is counted as an error of
    /// its own ([`TableStep::own`]; its original bytes to the DLQ).
    pub fn table(
        &mut self,
        plan: &Plan,
        table: &crate::plan::TableDef,
        partition: i32,
        m: SourceMessage<'_>,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> TableStep {
        let origin = Origin {
            topic: Arc::from(table.topic.as_str()),
            partition,
            offset: m.offset,
        };
        let original = m.original();
        match crate::runtime::joins::table_version(plan, table, m, origin) {
            Ok((key, time, value)) => self.apply_version(
                plan,
                &table.name,
                partition,
                (&key, time, value),
                out,
                observe,
            ),
            Err(step) => {
                observe(&step);
                TableStep {
                    own: Some(collect(plan, *step, original, out)),
                    ..Default::default()
                }
            }
        }
    }

    /// A version `(key, time ms, value)` of table `table` read on its
    /// `partition` (decoded once by [`crate::runtime::joins::table_version`]; the
    /// runtime gives it to every partition that joins the table): into
    /// the chain's store, then the stream records it releases (T4), as
    /// [`PartitionProcessor::table`].
    pub fn apply_version(
        &mut self,
        plan: &Plan,
        table: &str,
        partition: i32,
        (key, time, value): (&Value, i64, Option<Value>),
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> TableStep {
        self.chain.table_version(table, key, time, value);
        let Some(j) = self.joins.as_mut() else {
            return TableStep::default();
        };
        let released = j.table_time(table, partition, time);
        self.release(plan, released, out, observe)
    }

    /// Partition `partition` of `table` has been idle at its end for the
    /// table's `idle_timeout` (`idle`), or has a record again: the stream
    /// records the tables' watermark now releases (T4).
    pub fn table_idle(
        &mut self,
        plan: &Plan,
        table: &str,
        partition: i32,
        idle: bool,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> TableStep {
        let Some(j) = self.joins.as_mut() else {
            return TableStep::default();
        };
        let released = j.table_idle(table, partition, idle);
        self.release(plan, released, out, observe)
    }

    /// Gives this partition's chain every table as read so far (a
    /// partition assigned while the tables are being read).
    pub fn prime_tables(&mut self, cache: &crate::runtime::joins::TableCache) {
        cache.prime(&mut self.chain, self.joins.as_mut());
    }

    /// Per join stage, the records it matched and did not since the last
    /// call ([`crate::operator::Chain::take_join_counts`]).
    pub fn take_join_counts(&mut self) -> Vec<(usize, u64, u64)> {
        self.chain.take_join_counts()
    }

    /// Number of stream records held for a table (T4).
    pub fn held(&self) -> usize {
        self.joins
            .as_ref()
            .map_or(0, crate::runtime::joins::JoinHold::held)
    }

    /// Whether this partition's stages join `table`.
    pub fn reads_table(&self, table: &str) -> bool {
        self.chain.reads_table(table)
    }

    /// The smallest offset of a stream record held for a table (T4): the
    /// partition is committed no further.
    pub fn held_from(&self) -> Option<i64> {
        self.joins
            .as_ref()
            .and_then(crate::runtime::joins::JoinHold::held_from)
    }

    /// End of input for the tables (idle at their end): every held record
    /// is released (T4) and run through the stages.
    pub fn tables_idle(
        &mut self,
        plan: &Plan,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> TableStep {
        let Some(j) = self.joins.as_mut() else {
            return TableStep::default();
        };
        let released = j.release_all();
        self.release(plan, released, out, observe)
    }

    fn release(
        &mut self,
        plan: &Plan,
        released: Vec<(Record, crate::runtime::joins::Held)>,
        out: &mut Vec<OutMsg>,
        observe: Observer<'_>,
    ) -> TableStep {
        let mut counts = Vec::with_capacity(released.len());
        let mut origins = Vec::with_capacity(released.len());
        // The tables keep their history behind the oldest record still to
        // be joined: held, or released and not yet run.
        let mut later = vec![i64::MAX; released.len() + 1];
        for (i, (r, _)) in released.iter().enumerate().rev() {
            let t = if r.time_error.is_some() {
                i64::MAX
            } else {
                r.event_time
            };
            later[i] = later[i + 1].min(t);
        }
        for (i, (rec, held)) in released.into_iter().enumerate() {
            origins.push(rec.origin.clone());
            let step = self.chain.process(rec);
            if let Some(j) = self.joins.as_ref() {
                self.chain
                    .expire_tables(j.expiry_base(&self.chain).min(later[i + 1]));
            }
            observe(&step);
            counts.push(self.collect_crossing(plan, step, held.original(), out));
        }
        TableStep {
            own: None,
            released: counts,
            origins,
        }
    }
}
