//! The kill switch's statistics: a tenant's spend in one hour against the same hour on the
//! days before it.

use std::collections::HashMap;

/// One tenant's baseline for the current hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Mean spend in this hour over the baseline days, nanodollars.
    pub mean: f64,
    /// Standard deviation of that spend, nanodollars.
    pub stddev: f64,
    /// Whole days between the tenant's first spend in the window and today.
    pub history_days: u32,
}

impl Baseline {
    /// A baseline from the spend in the same hour on each of the baseline days (days with no
    /// spend count as zero) and the days of history.
    pub fn from_days(hourly: &[f64], history_days: u32) -> Baseline {
        let count = hourly.len().max(1) as f64;
        let mean = hourly.iter().sum::<f64>() / count;
        let variance = hourly.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / count;
        Baseline {
            mean,
            stddev: variance.sqrt(),
            history_days,
        }
    }

    /// The z-score of `spent` with the deviation floored at `min_stddev`.
    pub fn z(&self, spent: f64, min_stddev: f64) -> f64 {
        (spent - self.mean) / self.stddev.max(min_stddev)
    }
}

/// Baselines per tenant for one UTC hour (`2026-11-23T18`).
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// The hour they were computed for.
    pub hour: String,
    /// Per tenant.
    pub tenants: HashMap<String, Baseline>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_scores_use_the_floor() {
        let baseline = Baseline::from_days(&[10.0, 12.0, 8.0, 10.0, 10.0, 12.0, 8.0], 30);
        assert!((baseline.mean - 10.0).abs() < 1e-9);
        assert!(baseline.z(30.0, 0.1) > 4.0);
        assert!(baseline.z(11.0, 0.1) < 4.0);
        let flat = Baseline::from_days(&[0.0; 7], 30);
        assert_eq!(flat.z(5.0, 1.0), 5.0);
    }
}
