//! `weir test` with tables (DESIGN.md §7): a table record goes to every
//! partition's stages, which hold the table's versions, and the stream
//! records it releases (T4) are produced as their own, noted under their
//! own input positions.

use super::{observer, Harness, Seen};
use crate::operator::chain::StepResult;
use crate::runtime::output::{Dest, OutMsg, StepCounts};
use crate::runtime::processor::{SourceMessage, TableStep};
use crate::testing::InputRecord;

/// [`observer`] keeping what each step showed apart, in step order (the
/// records a table record releases are steps of one call).
fn per_step(steps: &mut Vec<Vec<Seen>>) -> impl FnMut(&StepResult) + '_ {
    move |step: &StepResult| {
        let mut seen = Vec::new();
        observer(&mut seen)(step);
        steps.push(seen);
    }
}

impl Harness<'_> {
    /// Feeds input record `index`, a record of table `t`, to every
    /// partition's stages (each holds the table's versions); the records
    /// it releases (T4) are produced as their own. The table record's own
    /// error, if any, is reported once.
    pub(super) fn table(&mut self, index: usize, t: usize, rec: &InputRecord) {
        let plan = self.plan;
        let table = &plan.tables[t];
        let offset = self.table_offsets[t];
        self.table_offsets[t] += 1;
        let m = SourceMessage {
            offset,
            key: rec.key.as_deref(),
            payload: rec.payload.as_deref(),
            timestamp: rec.timestamp,
        };
        // Joins run where the source is read (the plan refuses one after a
        // repartition), so only the source partitions hold tables.
        for i in 0..self.parts.len() {
            let (mut out, mut seen) = (Vec::new(), Vec::new());
            let step =
                self.parts[i]
                    .proc
                    .table(plan, table, 0, m, &mut out, &mut per_step(&mut seen));
            if let Some(own) = &step.own {
                if i == 0 {
                    self.notes(
                        seen.into_iter().flatten().collect(),
                        &format!("input[{index}]"),
                    );
                    self.produce(own, out);
                }
                continue;
            }
            self.released(i, step, out, seen);
            if self.run.stopped.is_some() {
                return;
            }
        }
    }

    /// Produces what records released from a hold (T4) caused on source
    /// partition `i`: their outputs, their notes, and what crosses the
    /// repartition topic.
    fn released(&mut self, i: usize, step: TableStep, out: Vec<OutMsg>, seen: Vec<Vec<Seen>>) {
        let (crossing, out): (Vec<OutMsg>, Vec<OutMsg>) = out
            .into_iter()
            .partition(|m| matches!(m.dest, Dest::Repartition(_)));
        for (seen, origin) in seen.into_iter().zip(&step.origins) {
            let who = self.who(origin);
            self.notes(seen, &who);
        }
        for c in &step.released {
            if c.fail.is_some() {
                self.produce(c, Vec::new());
                return;
            }
        }
        self.produce(&StepCounts::default(), out);
        let p = &self.parts[i].proc;
        let (source, wm) = (p.source.clone(), p.chain.watermark());
        self.send_across(&source, wm, crossing);
    }

    /// End of input: the tables are idle at their end, so every held
    /// record goes on (T4).
    pub(super) fn tables_idle(&mut self) {
        for i in 0..self.parts.len() {
            let (mut out, mut seen) = (Vec::new(), Vec::new());
            let step =
                self.parts[i]
                    .proc
                    .tables_idle(self.plan, &mut out, &mut per_step(&mut seen));
            self.released(i, step, out, seen);
            if self.run.stopped.is_some() {
                return;
            }
        }
    }
}
