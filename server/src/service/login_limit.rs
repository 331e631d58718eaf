//! Failed sign-ins counted per client address and per account, in memory: a burst of
//! guesses from one address, or at one account from many, is refused for a while.
//!
//! In memory because only `ferry serve` answers sign-ins; a restart forgets the counts,
//! which costs an attacker a restart they cannot cause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before old ones are pruned, so a flood of addresses cannot grow memory.
const MAX_KEYS: usize = 10_000;

#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: usize::try_from(max_failures.max(1)).unwrap_or(usize::MAX),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when any of `keys` has used up its failures in the window.
    pub fn blocked(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| {
                let times = map.get_mut(key)?;
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                (times.len() >= self.max_failures)
                    .then(|| {
                        times
                            .front()
                            .map(|t| self.window.saturating_sub(now.duration_since(*t)))
                    })
                    .flatten()
            })
            .max()
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_allowed_failures_until_the_window_passes() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["ip:1.2.3.4".to_owned(), "account:a@b.c".to_owned()];
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(limiter.blocked(&keys, t0), None, "attempt {i}");
            limiter.record_failure(&keys, t0);
        }
        assert_eq!(limiter.blocked(&keys, t0), Some(Duration::from_secs(60)));
        let other_ip = vec!["ip:5.6.7.8".to_owned(), "account:a@b.c".to_owned()];
        assert!(
            limiter.blocked(&other_ip, t0).is_some(),
            "the account stays blocked from anywhere"
        );
        assert_eq!(limiter.blocked(&keys, t0 + Duration::from_secs(61)), None);
    }
}
