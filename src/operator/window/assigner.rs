//! Which windows an event time belongs to (DESIGN.md §3): epoch-aligned
//! `[start, end)` windows, `s ≡ 0 (mod advance)` and `s ≤ t < s + size`.

/// Tumbling (`advance == size`) or hopping windows, sizes in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigner {
    /// Window length, ms (> 0).
    pub size: i64,
    /// Distance between window starts, ms (> 0, divides `size`).
    pub advance: i64,
}

impl Assigner {
    /// Tumbling windows of `size` ms.
    pub fn tumbling(size: i64) -> Self {
        Assigner {
            size,
            advance: size,
        }
    }

    /// Start of the last window containing `t`.
    pub fn last_start(&self, t: i64) -> i64 {
        t.div_euclid(self.advance) * self.advance
    }

    /// Starts of every window containing `t`, oldest first.
    pub fn starts(&self, t: i64) -> impl Iterator<Item = i64> {
        let last = self.last_start(t);
        let first = last - self.size + self.advance;
        let (adv, size) = (self.advance as usize, self.size);
        (first..=last)
            .step_by(adv)
            .filter(move |s| *s <= t && t < s + size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_end_is_exclusive() {
        let a = Assigner::tumbling(3_600_000);
        assert_eq!(a.starts(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(a.starts(3_599_999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(a.starts(3_600_000).collect::<Vec<_>>(), vec![3_600_000]);
        assert_eq!(a.starts(-1).collect::<Vec<_>>(), vec![-3_600_000]);
    }

    #[test]
    fn hopping_covers_size_over_advance_windows() {
        let a = Assigner {
            size: 10,
            advance: 5,
        };
        assert_eq!(a.starts(12).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(a.starts(10).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(a.starts(9).collect::<Vec<_>>(), vec![0, 5]);
    }
}
