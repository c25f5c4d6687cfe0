//! Per-webhook limits kept in memory: calls per minute from one client address (a token
//! bucket per webhook and address) and calls at once (a counter per webhook). Both are per
//! replica: with several replicas a client may get its rate from each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle buckets are dropped after this long (they are full again by then).
const FORGET_AFTER: Duration = Duration::from_secs(120);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// `rate_per_minute` per (webhook, client address): a bucket of that many calls, refilled
/// continuously at the rate, so a client may send a minute's worth at once and then keeps
/// to the rate.
pub struct RateLimiter {
    /// The buckets by (webhook, client address), and when idle ones were last dropped.
    buckets: Mutex<(Buckets, Instant)>,
}

type Buckets = HashMap<(String, Option<IpAddr>), Bucket>;

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            buckets: Mutex::new((HashMap::new(), Instant::now())),
        }
    }
}

impl RateLimiter {
    /// Takes one call from the bucket; when it is empty, the seconds until it holds one.
    pub fn take(
        &self,
        webhook: &str,
        client: Option<IpAddr>,
        per_minute: u64,
        now: Instant,
    ) -> Result<(), u32> {
        let capacity = per_minute as f64;
        let per_second = capacity / 60.0;
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (buckets, last_prune) = &mut *guard;
        if now.duration_since(*last_prune) >= PRUNE_EVERY {
            buckets.retain(|_, bucket| now.duration_since(bucket.updated) < FORGET_AFTER);
            *last_prune = now;
        }
        let bucket = buckets
            .entry((webhook.to_string(), client))
            .or_insert(Bucket {
                tokens: capacity,
                updated: now,
            });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            // A hair off so that float noise (4.999...) does not add a second.
            Err((wait - 1e-6).ceil().max(1.0) as u32)
        }
    }
}

/// Calls of each webhook between their admission and their answer.
#[derive(Clone, Default)]
pub struct Concurrency {
    running: Arc<Mutex<HashMap<String, u64>>>,
}

impl Concurrency {
    /// A permit when fewer than `limit` calls of `webhook` are running.
    pub fn enter(&self, webhook: &str, limit: u64) -> Option<Permit> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(webhook.to_string()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Permit {
            running: Arc::clone(&self.running),
            webhook: webhook.to_string(),
        })
    }
}

/// One running call; counted until dropped.
pub struct Permit {
    running: Arc<Mutex<HashMap<String, u64>>>,
    webhook: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.webhook) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.webhook);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_a_minutes_worth_then_keeps_to_the_rate() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let one: Option<IpAddr> = Some("203.0.113.1".parse().unwrap());
        let two: Option<IpAddr> = Some("203.0.113.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limiter.take("hook", one, 3, start), Ok(()));
        }
        // 3 per minute: one call every 20 s.
        assert_eq!(limiter.take("hook", one, 3, start), Err(20));
        assert_eq!(limiter.take("hook", two, 3, start), Ok(()));
        assert_eq!(limiter.take("other", one, 3, start), Ok(()));
        let later = start + Duration::from_secs(15);
        assert_eq!(limiter.take("hook", one, 3, later), Err(5));
        let later = start + Duration::from_secs(21);
        assert_eq!(limiter.take("hook", one, 3, later), Ok(()));
    }

    #[test]
    fn permits_count_running_calls_until_dropped() {
        let concurrency = Concurrency::default();
        let first = concurrency.enter("hook", 2).unwrap();
        let _second = concurrency.enter("hook", 2).unwrap();
        assert!(concurrency.enter("hook", 2).is_none());
        assert!(concurrency.enter("other", 2).is_some());
        drop(first);
        assert!(concurrency.enter("hook", 2).is_some());
    }
}
