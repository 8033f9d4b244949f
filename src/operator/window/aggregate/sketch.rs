//! The DDSketch behind `percentile` ([`Sketch`], crate `sketches-ddsketch`):
//! its configuration (relative accuracy [`PERCENTILE_ACCURACY`], 2048 bins
//! per sign, magnitudes up to 1e-9 counted as 0), adding, merging, the
//! quantile, and the guard that keeps its running sum finite. See the
//! module doc of `aggregate` for the accuracy guarantee.

use super::error::AggError;
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use std::fmt;
use std::mem::size_of;

/// Relative accuracy of `percentile` (DDSketch's α): 1%.
pub const PERCENTILE_ACCURACY: f64 = 0.01;
/// Bins per sign of a `percentile` sketch.
const SKETCH_BINS: u32 = 2048;
/// Magnitudes at or below this count as zero in a `percentile` sketch.
const SKETCH_MIN_VALUE: f64 = 1e-9;

/// A DDSketch of `percentile`'s values (see the module doc for accuracy).
/// Two sketches are equal when their serialized forms are (same bins).
/// Serializes as the crate's `DDSketch` (the changelog format).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sketch(DDSketch);

impl Sketch {
    /// An empty sketch of the `percentile` configuration.
    pub(super) fn new() -> Self {
        Sketch(DDSketch::new(SketchConfig::new(
            PERCENTILE_ACCURACY,
            SKETCH_BINS,
            SKETCH_MIN_VALUE,
        )))
    }

    /// Refuses to let the running sum (kept by the sketch, and written to
    /// the changelog, where JSON has no infinity) leave the float range
    /// when `more` is added to it.
    ///
    /// # Errors
    /// [`AggError::SumOutOfRange`].
    pub(super) fn check_sum(&self, more: f64) -> Result<(), AggError> {
        if (self.0.sum().unwrap_or(0.0) + more).is_finite() {
            Ok(())
        } else {
            Err(AggError::SumOutOfRange)
        }
    }

    /// Adds the finite value `x` (checked by the caller with
    /// [`Sketch::check_sum`]).
    pub(super) fn add(&mut self, x: f64) {
        self.0.add(x);
    }

    /// Adds every value of `other` (bin counts add).
    ///
    /// # Errors
    /// [`AggError::SumOutOfRange`] when the summed values leave the float
    /// range, [`AggError::SketchMerge`] for sketches of different
    /// configurations; `self` is unchanged then.
    pub(super) fn merge(&mut self, other: &Sketch) -> Result<(), AggError> {
        self.check_sum(other.0.sum().unwrap_or(0.0))?;
        self.0
            .merge(&other.0)
            .map_err(|e| AggError::SketchMerge(e.to_string()))
    }

    /// The estimated `q`-quantile (`q` in [0, 1]); `None` for an empty
    /// sketch or a `q` out of range.
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    /// Estimated bytes of a boxed sketch: its inline size plus 8 bytes per
    /// bin in use.
    pub(super) fn approx_bytes(&self) -> usize {
        size_of::<Sketch>() + self.0.length() * size_of::<u64>()
    }
}

impl fmt::Debug for Sketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sketch")
            .field("count", &self.0.count())
            .field("min", &self.0.min())
            .field("max", &self.0.max())
            .field("bins", &self.0.length())
            .finish()
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&self.0).ok() == serde_json::to_value(&other.0).ok()
    }
}

#[cfg(test)]
mod tests;
