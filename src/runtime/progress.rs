//! Per-partition progress: which source records are fully handled, and the
//! checkpoint that is safe to commit (DESIGN.md §3, at-least-once).
//!
//! Processing one source record is a *unit*: everything it causes (sink
//! records, window results its watermark closed, DLQ records) must be
//! acknowledged by the broker before the unit is done. Units complete out of
//! order; only the done prefix counts (as Redpanda Connect's
//! `checkpoint.Uncapped`). The safe resume offset is the oldest of: the
//! first unit not done, the first record of every open window, and the first
//! record of every window closed by a unit not yet done. Shared between the
//! processing task and the producer's delivery callback, behind a mutex.

use crate::kafka::checkpoint::Checkpoint;
use crate::operator::window::FirstSeen;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
struct Unit {
    offset: i64,
    pending: u32,
    wm_before: i64,
    wm_after: i64,
    closed: Option<FirstSeen>,
}

/// Delivery progress of one source partition.
#[derive(Debug, Clone)]
pub struct Progress {
    units: VecDeque<Unit>,
    emitted_through: i64,
    failure: Option<String>,
}

impl Progress {
    /// Progress resuming with windows through `emitted_through` (ms) already emitted.
    pub fn new(emitted_through: i64) -> Self {
        Progress {
            units: VecDeque::new(),
            emitted_through,
            failure: None,
        }
    }

    /// Records that the source record at `offset` was processed and caused
    /// `pending` deliveries; `wm_before`/`wm_after` are the watermark around
    /// it and `closed` the oldest first-seen marker of the windows it closed.
    pub fn record(
        &mut self,
        offset: i64,
        pending: u32,
        wm_before: i64,
        wm_after: i64,
        closed: Option<FirstSeen>,
    ) {
        if pending == 0 && self.units.is_empty() {
            self.emitted_through = self.emitted_through.max(wm_after);
            return;
        }
        self.units.push_back(Unit {
            offset,
            pending,
            wm_before,
            wm_after,
            closed,
        });
        self.release();
    }

    /// One delivery of the unit at `offset` was acknowledged.
    pub fn ack(&mut self, offset: i64) {
        // Acknowledgements mostly arrive in order: try the front first.
        let i = match self.units.front() {
            Some(u) if u.offset == offset => 0,
            _ => self.units.partition_point(|u| u.offset < offset),
        };
        if let Some(u) = self.units.get_mut(i).filter(|u| u.offset == offset) {
            u.pending = u.pending.saturating_sub(1);
        }
        self.release();
    }

    /// A delivery failed for good; the partition must not commit past it.
    pub fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }

    /// The first permanent delivery failure, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn release(&mut self) {
        while let Some(u) = self.units.front() {
            if u.pending > 0 {
                break;
            }
            self.emitted_through = self.emitted_through.max(u.wm_after);
            self.units.pop_front();
        }
    }

    /// The checkpoint that is safe now, given the next offset to process,
    /// the current watermark and the oldest open window.
    pub fn checkpoint(
        &self,
        next_offset: i64,
        watermark: i64,
        oldest_open: Option<FirstSeen>,
    ) -> Checkpoint {
        let mut resume = match self.units.front() {
            Some(u) => FirstSeen {
                offset: u.offset,
                watermark: u.wm_before,
            },
            None => FirstSeen {
                offset: next_offset,
                watermark,
            },
        };
        let closed_pending = self.units.iter().filter_map(|u| u.closed);
        for f in oldest_open.into_iter().chain(closed_pending) {
            if f.offset < resume.offset {
                resume = f;
            }
        }
        Checkpoint {
            offset: resume.offset,
            watermark: resume.watermark,
            emitted_through: self.emitted_through,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_contiguous_acknowledged_prefix() {
        let mut p = Progress::new(i64::MIN);
        p.record(10, 1, 0, 1, None);
        p.record(11, 1, 1, 2, None);
        p.ack(11);
        assert_eq!(
            p.checkpoint(12, 2, None).offset,
            10,
            "offset 10 is not acknowledged yet"
        );
        p.ack(10);
        assert_eq!(
            p.checkpoint(12, 2, None),
            Checkpoint {
                offset: 12,
                watermark: 2,
                emitted_through: 2
            }
        );
    }

    #[test]
    fn never_past_the_first_record_of_an_open_window() {
        let mut p = Progress::new(i64::MIN);
        p.record(5, 0, 0, 3, None);
        let open = FirstSeen {
            offset: 3,
            watermark: -7,
        };
        assert_eq!(
            p.checkpoint(6, 3, Some(open)),
            Checkpoint {
                offset: 3,
                watermark: -7,
                emitted_through: 3
            }
        );
    }

    #[test]
    fn window_closed_by_an_unacknowledged_unit_holds_the_checkpoint() {
        let mut p = Progress::new(i64::MIN);
        // unit 20 closed a window whose first record was 4; its result is in flight
        p.record(
            20,
            1,
            99,
            100,
            Some(FirstSeen {
                offset: 4,
                watermark: 1,
            }),
        );
        let cp = p.checkpoint(21, 100, None);
        assert_eq!(
            cp,
            Checkpoint {
                offset: 4,
                watermark: 1,
                emitted_through: i64::MIN
            }
        );
        p.ack(20);
        assert_eq!(
            p.checkpoint(21, 100, None),
            Checkpoint {
                offset: 21,
                watermark: 100,
                emitted_through: 100
            }
        );
    }

    #[test]
    fn failure_is_kept() {
        let mut p = Progress::new(0);
        p.fail("boom".into());
        p.fail("later".into());
        assert_eq!(p.failure(), Some("boom"));
    }
}
