//! Per-partition watermark: `max event time seen − max_out_of_orderness`
//! (DESIGN.md §3). A pure function of the partition's record sequence, so a
//! replay of the same offsets makes the same decisions.

/// Watermark state of one partition, in ms of event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    max_event_time: Option<i64>,
    max_out_of_orderness: i64,
}

impl Watermark {
    /// A fresh watermark with no event seen; `max_out_of_orderness` in ms.
    pub fn new(max_out_of_orderness: i64) -> Self {
        Watermark {
            max_event_time: None,
            max_out_of_orderness,
        }
    }

    /// Restores the watermark `wm` (as stored in a checkpoint).
    pub fn restored(max_out_of_orderness: i64, wm: i64) -> Self {
        Watermark {
            max_event_time: (wm != i64::MIN).then(|| wm.saturating_add(max_out_of_orderness)),
            max_out_of_orderness,
        }
    }

    /// The `max_out_of_orderness` bound, ms.
    pub fn bound(&self) -> i64 {
        self.max_out_of_orderness
    }

    /// Current watermark in ms; `i64::MIN` before the first event.
    pub fn current(&self) -> i64 {
        self.max_event_time
            .map_or(i64::MIN, |m| m.saturating_sub(self.max_out_of_orderness))
    }

    /// Observes an event time; returns true when the watermark moved.
    pub fn observe(&mut self, event_time: i64) -> bool {
        match self.max_event_time {
            Some(m) if m >= event_time => false,
            _ => {
                self.max_event_time = Some(event_time);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trails_max_event_time() {
        let mut w = Watermark::new(5);
        assert_eq!(w.current(), i64::MIN);
        assert!(w.observe(100));
        assert!(!w.observe(90));
        assert_eq!(w.current(), 95);
        assert_eq!(Watermark::restored(5, 95).current(), 95);
        assert_eq!(Watermark::restored(5, i64::MIN).current(), i64::MIN);
    }
}
