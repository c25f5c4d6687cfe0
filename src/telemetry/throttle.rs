//! Keeps a repeated warning (shed calls, a full outbox) from flooding the process log:
//! the first occurrence is reported, then at most one line per period with a count.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct LogThrottle {
    period_secs: u64,
    last_report: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub const fn new(period_secs: u64) -> Self {
        Self {
            period_secs,
            last_report: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this occurrence should be reported, `n` being how many were not since
    /// the last report; `None` when it should not.
    pub fn report(&self) -> Option<u64> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let last = self.last_report.load(Ordering::Relaxed);
        if now >= last + self.period_secs
            && self
                .last_report
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_once_per_period_with_the_count_in_between() {
        let throttle = LogThrottle::new(3600);
        assert_eq!(throttle.report(), Some(0));
        assert_eq!(throttle.report(), None);
        assert_eq!(throttle.report(), None);
        throttle.last_report.store(0, Ordering::Relaxed);
        assert_eq!(throttle.report(), Some(2));
    }
}
