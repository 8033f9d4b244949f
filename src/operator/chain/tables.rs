//! The tables a chain's `join` stages read (DESIGN.md §7): each table's
//! versions, kept per chain, fed by table records and expired behind the
//! oldest record still to be joined; and the join stage's step.

use super::{Chain, StageRef, StepResult};
use crate::expr::ExprError;
use crate::operator::join::{JoinError, JoinOutcome, JoinTime, TableJoin, VersionedTable};
use crate::operator::Stage;
use crate::record::Record;

impl Chain {
    /// Gives the chain a store of versions for each table of `tables`
    /// (name, `history` in ms) that a join stage of its segment reads (call
    /// it after [`Chain::segment`]); the others' records are ignored.
    pub fn with_tables<'a>(mut self, tables: impl IntoIterator<Item = (&'a str, i64)>) -> Self {
        let end = self.until.unwrap_or(self.stages.len());
        let stages = &self.stages[self.from..end];
        let joined = |name: &str| {
            stages
                .iter()
                .any(|s| matches!(s, Stage::Join(j) if j.table == name))
        };
        self.tables = tables
            .into_iter()
            .filter(|(n, _)| joined(n))
            .map(|(n, h)| (n.to_owned(), VersionedTable::new(), h))
            .collect();
        self
    }

    /// A version of `table`'s `key` at `time` ms (`None`: a tombstone,
    /// DESIGN.md §7 T3); ignored for a table no join stage reads.
    pub fn table_version(
        &mut self,
        table: &str,
        key: &serde_json::Value,
        time: i64,
        value: Option<serde_json::Value>,
    ) {
        if let Some((_, t, _)) = self.tables.iter_mut().find(|(n, _, _)| n == table) {
            t.insert(key, time, value);
        }
    }

    /// The records each join stage matched and did not match since the last
    /// call, as `(stage index, matched, unmatched)` (the stages with any),
    /// for `weir_join_records_total`; the counts start again from zero.
    pub fn take_join_counts(&mut self) -> Vec<(usize, u64, u64)> {
        let out = self
            .join_counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c[0] + c[1] > 0)
            .map(|(i, c)| (i, c[0], c[1]))
            .collect();
        self.join_counts.iter_mut().for_each(|c| *c = [0; 2]);
        out
    }

    /// Whether a join stage of this chain reads `table`.
    pub fn reads_table(&self, table: &str) -> bool {
        self.tables.iter().any(|(n, _, _)| n == table)
    }

    /// Replaces the versions of `table` with a copy of `versions` (a chain
    /// created after the table was read); ignored for a table no join
    /// stage of the chain reads.
    pub fn set_table_versions(&mut self, table: &str, versions: &VersionedTable) {
        if let Some((_, t, _)) = self.tables.iter_mut().find(|(n, _, _)| n == table) {
            *t = versions.clone();
        }
    }

    /// Drops the table versions no record at or after `base` ms (the
    /// stream's watermark, or an older record still held) can need: each
    /// table keeps `history` ms behind `base` (T2).
    pub fn expire_tables(&mut self, base: i64) {
        if base == i64::MIN {
            return;
        }
        for (_, t, history) in &mut self.tables {
            t.expire(base.saturating_sub(*history));
        }
    }

    /// The tables this chain's stages join at event time (rule T4 holds
    /// their records back), in stage order.
    pub fn event_time_join_tables(&self) -> Vec<&str> {
        let end = self.until.unwrap_or(self.stages.len());
        self.stages[self.from..end]
            .iter()
            .filter_map(|s| match s {
                Stage::Join(j) if j.time == JoinTime::Event => Some(j.table.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Runs the join stage `j` (index `i`) on `rec`: `Ok(true)` when the
    /// record goes on (joined, or `left` with `null`), `Ok(false)` when an
    /// `inner` join filtered it (noted in `res` for an input record).
    ///
    /// # Errors
    /// The record error of the join: its `on` expression's, or `join
    /// <table>` with the reason (`table history expired`, …).
    pub(super) fn join(
        &mut self,
        i: usize,
        j: &TableJoin,
        rec: &mut Record,
        input: bool,
        res: &mut StepResult,
    ) -> Result<bool, ExprError> {
        let Some((_, table, _)) = self.tables.iter().find(|(n, _, _)| *n == j.table) else {
            unreachable!("the plan gives the chain every table a join reads")
        };
        let taken = std::mem::replace(
            rec,
            Record::new(serde_json::Value::Null, serde_json::Value::Null),
        );
        let outcome = j.apply(&self.root, taken, table);
        let counted = match outcome {
            JoinOutcome::Joined(_) => Some(0),
            JoinOutcome::Unmatched(_) | JoinOutcome::Filtered => Some(1),
            JoinOutcome::Error(..) => None,
        };
        if let Some(c) = counted {
            if self.join_counts.len() <= i {
                self.join_counts.resize(i + 1, [0; 2]);
            }
            self.join_counts[i][c] += 1;
        }
        match outcome {
            JoinOutcome::Joined(r) | JoinOutcome::Unmatched(r) => {
                *rec = r;
                Ok(true)
            }
            JoinOutcome::Filtered => {
                if input {
                    res.filtered_by = Some(StageRef::Stage(i));
                }
                Ok(false)
            }
            JoinOutcome::Error(r, e) => {
                *rec = r;
                Err(match e {
                    JoinError::Expr(e) => e,
                    other => ExprError::new(format!("join {}", j.table), other.to_string()),
                })
            }
        }
    }
}
