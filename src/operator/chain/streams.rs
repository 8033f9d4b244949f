//! The stream-stream join stages of a chain (DESIGN.md §7): a left record
//! reaching the stage and a right record of the join's `stream:` go into
//! the stage's [`IntervalJoin`]; the pairs and unmatched records it emits
//! run through the stages after it, as a window's results do.

use super::{Chain, Outcome, RecordError, StageRef, StepResult};
use crate::operator::join::IntervalOutcome;
use crate::record::Record;

impl Chain {
    /// Stage `i` (a stream-stream join) meets the left record `rec`; `wm`
    /// is the chain's watermark before it.
    pub(super) fn stream_join_left(
        &mut self,
        i: usize,
        rec: Record,
        wm: i64,
        input: bool,
        res: &mut StepResult,
    ) -> Outcome {
        let Some(op) = self.intervals[i].as_mut() else {
            unreachable!("a stream join stage has a join")
        };
        let key = match op.left_key(&self.root, &rec) {
            Ok(k) => k,
            Err(e) => return fail(i, e, rec, input, res),
        };
        let mut out = Vec::new();
        let outcome = match op.left(key, rec, wm, &mut out) {
            Ok(o) => o,
            Err(b) => {
                let (e, rec) = *b;
                return fail(i, e, rec, input, res);
            }
        };
        let done = self.settle(i, outcome, input, res);
        for r in out {
            self.run_from(i + 1, r, wm, false, res);
        }
        done
    }

    /// A record of the right stream of the stream-stream join at stage
    /// `stage` (decoded, its event time set): into the join, whose pairs
    /// and unmatched records run through the stages after it. The record
    /// is counted as the chain's input: out when buffered, late, filtered
    /// (a null key under `inner`/`left`) or an error of the stage.
    pub fn process_right(&mut self, stage: usize, rec: Record) -> StepResult {
        let mut res = StepResult::default();
        let wm = self.watermark.current();
        let Some(op) = self.intervals.get_mut(stage).and_then(Option::as_mut) else {
            res.outcome = Some(Outcome::Filtered);
            res.filtered_by = Some(StageRef::Stage(stage));
            return res;
        };
        if let Some(why) = rec.time_error.clone() {
            let e = crate::expr::ExprError::new("event_time", why.to_string());
            res.outcome = Some(fail(stage, e, rec, true, &mut res));
            return res;
        }
        let key = match op.right_key(&self.root, &rec) {
            Ok(k) => k,
            Err(e) => {
                res.outcome = Some(fail(stage, e, rec, true, &mut res));
                return res;
            }
        };
        let mut out = Vec::new();
        let outcome = op.right(key, rec, wm, &mut out);
        res.outcome = Some(self.settle(stage, outcome, true, &mut res));
        for r in out {
            self.run_from(stage + 1, r, wm, false, &mut res);
        }
        res
    }

    /// The indexes of this chain's stream-stream join stages.
    pub fn stream_join_stages(&self) -> Vec<usize> {
        let end = self.until.unwrap_or(self.stages.len());
        (self.from..end)
            .filter(|i| self.intervals[*i].is_some())
            .collect()
    }

    /// Records buffered by the stream-stream joins.
    pub fn stream_join_buffered(&self) -> usize {
        self.intervals.iter().flatten().map(|j| j.buffered()).sum()
    }

    /// The input record's outcome at join stage `i`.
    fn settle(
        &mut self,
        i: usize,
        outcome: IntervalOutcome,
        input: bool,
        res: &mut StepResult,
    ) -> Outcome {
        match outcome {
            IntervalOutcome::Buffered | IntervalOutcome::NullKey { emitted: true } => Outcome::Out,
            IntervalOutcome::NullKey { emitted: false } => {
                if input {
                    res.filtered_by = Some(StageRef::Stage(i));
                }
                Outcome::Filtered
            }
            IntervalOutcome::Late(rec) => {
                res.late = Some((StageRef::Stage(i), *rec, false));
                Outcome::Late
            }
        }
    }
}

/// The record error of join stage `i`.
fn fail(
    i: usize,
    e: crate::expr::ExprError,
    rec: Record,
    input: bool,
    res: &mut StepResult,
) -> Outcome {
    res.errors.push(RecordError {
        stage: StageRef::Stage(i),
        message: e.to_string(),
        record: rec,
        input,
    });
    Outcome::Error
}
