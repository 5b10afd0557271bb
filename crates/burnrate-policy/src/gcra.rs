//! The generic cell rate algorithm (GCRA), in whole microseconds.
//!
//! Written by hand rather than taken from `governor`: a token limit is reserved up front
//! and corrected after the call (cells given back or charged), which `governor` has no
//! operation for, and the Redis backend runs the same arithmetic in a Lua script
//! (`state/lua/rate_take.lua`), so both backends must agree to the microsecond. Integer
//! microseconds stay exact in Lua's doubles (below 2⁵³).
//!
//! A limit of `L` cells per minute emits one cell every `T = ⌈60 s / L⌉` and tolerates a
//! burst of the whole minute (`τ = T·L`): an idle bucket lets exactly `L` cells through at
//! once, then one every `T`.

/// Microseconds in the window every limit is expressed over.
pub const WINDOW_US: i64 = 60_000_000;

/// One limit's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Cells per minute.
    pub limit: u64,
}

/// What taking cells from a bucket came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Taken; the bucket's new theoretical arrival time.
    Allowed {
        /// New theoretical arrival time, µs.
        tat: i64,
    },
    /// Not taken; try again after this many microseconds (`None`: the cost exceeds the
    /// limit itself and will never fit).
    Denied {
        /// Wait before the cells fit, µs.
        retry_after_us: Option<i64>,
    },
}

impl Gcra {
    /// Microseconds between two cells.
    pub fn interval_us(self) -> i64 {
        let limit = i64::try_from(self.limit.max(1)).unwrap_or(i64::MAX);
        (WINDOW_US + limit - 1) / limit
    }

    /// The burst tolerance, µs.
    pub fn tau_us(self) -> i64 {
        self.interval_us()
            .saturating_mul(i64::try_from(self.limit).unwrap_or(i64::MAX))
    }

    /// Takes `cost` cells at `now` from a bucket whose arrival time is `tat` (`None`: new).
    pub fn take(self, tat: Option<i64>, now: i64, cost: u64) -> Take {
        if cost > self.limit {
            return Take::Denied {
                retry_after_us: None,
            };
        }
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        let new_tat = tat
            .unwrap_or(now)
            .max(now)
            .saturating_add(cost.saturating_mul(self.interval_us()));
        let allow_at = new_tat - self.tau_us();
        if now < allow_at {
            Take::Denied {
                retry_after_us: Some(allow_at - now),
            }
        } else {
            Take::Allowed { tat: new_tat }
        }
    }

    /// Cells still available at `now` for a bucket at `tat`.
    pub fn remaining(self, tat: i64, now: i64) -> u64 {
        let free = now + self.tau_us() - tat.max(now);
        u64::try_from(free / self.interval_us()).unwrap_or(0)
    }

    /// Corrects a bucket by `delta` cells (negative gives cells back, never below empty).
    pub fn correct(self, tat: Option<i64>, now: i64, delta: i64) -> i64 {
        let tat = tat.unwrap_or(now).max(now);
        tat.saturating_add(delta.saturating_mul(self.interval_us()))
            .max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_bucket_lets_exactly_the_limit_through() {
        let gcra = Gcra { limit: 5 };
        let mut tat = None;
        let mut allowed = 0;
        for _ in 0..20 {
            if let Take::Allowed { tat: next } = gcra.take(tat, 1_000, 1) {
                tat = Some(next);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5);
        // The next cell arrives one interval (12 s) later.
        assert_eq!(
            gcra.take(tat, 1_000, 1),
            Take::Denied {
                retry_after_us: Some(12_000_000)
            }
        );
        assert!(matches!(
            gcra.take(tat, 1_000 + 12_000_000, 1),
            Take::Allowed { .. }
        ));
    }

    #[test]
    fn limits_that_do_not_divide_a_minute_keep_their_burst() {
        for limit in [1, 7, 13, 999, 1_000_001, 70_000_000] {
            let gcra = Gcra { limit };
            assert_eq!(gcra.remaining(0, 0), limit, "{limit}");
        }
    }

    #[test]
    fn a_cost_above_the_limit_never_fits() {
        let gcra = Gcra { limit: 100 };
        assert_eq!(
            gcra.take(None, 0, 101),
            Take::Denied {
                retry_after_us: None
            }
        );
    }

    #[test]
    fn corrections_give_back_and_charge() {
        let gcra = Gcra { limit: 60 }; // one cell a second
        let Take::Allowed { tat } = gcra.take(None, 0, 50) else {
            panic!("fits")
        };
        assert_eq!(gcra.remaining(tat, 0), 10);
        let tat = gcra.correct(Some(tat), 0, -30);
        assert_eq!(gcra.remaining(tat, 0), 40);
        let tat = gcra.correct(Some(tat), 0, 45);
        assert_eq!(gcra.remaining(tat, 0), 0);
        // Giving back more than was taken leaves an empty bucket, not a negative one.
        assert_eq!(gcra.correct(Some(tat), 0, -1_000), 0);
    }
}
