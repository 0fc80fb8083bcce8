//! The retry schedule the official clients use (PROTOCOL.md §3.4, §4.2): start at
//! `initial`, use each interval `repeats` times, double up to `max`; then either stop after
//! `max_tries` tries or, without a count, after `repeats` tries at the cap. Pure: no clock.

use std::time::Duration;

/// A capped exponential backoff. Invariant: the schedule is finite — [`Backoff::delay`]
/// returns `None` after at most `max_tries` retries, or after `repeats` retries at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First wait.
    pub initial: Duration,
    /// Cap of every wait (`RetryPollIntervalSeconds`).
    pub max: Duration,
    /// How many times each interval is used before doubling (3 in the official clients;
    /// 0 is taken as 1).
    pub repeats: u32,
    /// Total retries (`RetryPollCount`); `None` = stop after `repeats` retries at the cap.
    pub max_tries: Option<u32>,
}

impl Backoff {
    /// The official clients' schedule for a `RetryPollIntervalSeconds` cap and a
    /// `RetryPollCount` (0 = the algorithmic limit): 60 s (or the cap, if smaller), each
    /// interval three times, doubling up to the cap. With the defaults (300 s, 0):
    /// 1,1,1,2,2,2,4,4,4,5,5,5 minutes, then stop.
    pub fn official(cap: Duration, retry_poll_count: u32) -> Self {
        Backoff {
            initial: Duration::from_secs(60).min(cap),
            max: cap,
            repeats: 3,
            max_tries: (retry_poll_count > 0).then_some(retry_poll_count),
        }
    }

    /// The wait before retry number `retry` (0-based), or `None` when the schedule is over.
    pub fn delay(&self, retry: u32) -> Option<Duration> {
        let repeats = self.repeats.max(1);
        let limit = match self.max_tries {
            Some(n) => n,
            // Algorithmic limit: `repeats` retries at the cap, then stop.
            None => (self.cap_step() + 1).saturating_mul(repeats),
        };
        (retry < limit).then(|| self.step_delay(retry / repeats))
    }

    /// The wait of doubling step `step`, capped.
    fn step_delay(&self, step: u32) -> Duration {
        if step >= 32 {
            return self.max;
        }
        self.initial
            .checked_mul(1u32 << step)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The first step whose wait is the cap (at most 32, so a zero `initial` still ends).
    fn cap_step(&self) -> u32 {
        (0..32)
            .find(|&s| self.step_delay(s) >= self.max)
            .unwrap_or(32)
    }

    /// Every wait of the schedule, in order (at most `limit` of them).
    pub fn schedule(&self, limit: usize) -> Vec<Duration> {
        (0..).map_while(|i| self.delay(i)).take(limit).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mins(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_secs(m * 60)).collect()
    }

    #[test]
    fn official_defaults() {
        let b = Backoff::official(Duration::from_secs(300), 0);
        assert_eq!(b.schedule(100), mins(&[1, 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5]));
    }

    #[test]
    fn count_caps_total_and_small_cap() {
        let b = Backoff::official(Duration::from_secs(300), 4);
        assert_eq!(b.schedule(100), mins(&[1, 1, 1, 2]));
        let b = Backoff::official(Duration::from_secs(10), 0);
        assert_eq!(b.schedule(100), vec![Duration::from_secs(10); 3]);
    }

    #[test]
    fn plain_doubling() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            repeats: 1,
            max_tries: None,
        };
        assert_eq!(
            b.schedule(100),
            [10, 20, 40, 50].map(Duration::from_millis).to_vec()
        );
        let b = Backoff {
            max_tries: Some(6),
            ..b
        };
        assert_eq!(
            b.schedule(100),
            [10, 20, 40, 50, 50, 50].map(Duration::from_millis).to_vec()
        );
        // Zero initial never overflows and still ends.
        let z = Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            repeats: 0,
            max_tries: None,
        };
        assert_eq!(z.schedule(100), vec![Duration::ZERO]);
    }
}
