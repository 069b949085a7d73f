//! Per-key rate limit on new tasks: a sliding window of creation times, refused quickly with 429
//! rather than queued. In memory, per process (with several nodes each enforces its own window).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        RateLimiter { limit: limit as usize, window, seen: Mutex::new(HashMap::new()) }
    }

    /// Takes a slot for `key`, or says how long until one frees up.
    pub(crate) fn try_acquire(&self, key: &str) -> Result<(), Duration> {
        self.try_acquire_at(key, Instant::now())
    }

    fn try_acquire_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().expect("rate limiter lock poisoned: a bug");
        let times = seen.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = *times.front().expect("limit is at least 1");
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let rl = RateLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(rl.try_acquire_at("a", t0).is_ok());
        assert!(rl.try_acquire_at("a", t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(rl.try_acquire_at("a", t0 + Duration::from_secs(2)), Err(Duration::from_secs(8)));
        assert!(rl.try_acquire_at("b", t0 + Duration::from_secs(2)).is_ok(), "per key");
        assert!(rl.try_acquire_at("a", t0 + Duration::from_secs(10)).is_ok());
    }
}
