//! When the daemon does things: each periodic job (update check, inventory) has a
//! [`Timer`] that waits its interval with random jitter after a success. After a failure
//! it waits for the next regular poll (the interval, jittered, at most the retry spread),
//! or with [`RetryPolicy::official`] the official clients' backoff (60 s, doubling to
//! `RetryPollIntervalSeconds`, `RetryPollCount` times).
//!
//! Why not the official backoff by default (docs/BENCHMARKS.md "Fleet behaviour", measured
//! by `fleet/`): every device whose poll failed during an outage then retries within a few
//! minutes of the server's return, so a third of a fleet arrives in one wave (7.5 × the
//! steady rate after a 10-minute outage), and arrives together again one interval later,
//! and the next. Waiting for the next regular poll keeps each device's place in the
//! fleet's spread: the load after the outage is the steady load, and no device checks
//! more than one interval later than the official schedule would have it check.
//!
//! Invariants: a jittered wait stays within ±[`JITTER_PERCENT`] of its base (a fleet
//! booted together drifts apart instead of polling in lockstep); a failure never makes the
//! next try later than a success would have; a server's `Retry-After` is never cut short.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::Backoff;

/// Jitter of every periodic wait, in percent of the wait.
pub const JITTER_PERCENT: u32 = 10;

/// `base` moved by up to ±`percent` %, chosen by the random value `r` (uniform over u64).
/// Pure, for tests; [`jitter`] draws `r` from the OS.
pub fn jittered(base: Duration, percent: u32, r: u64) -> Duration {
    let nanos = base.as_nanos();
    let spread = nanos * u128::from(percent.min(100)) / 100;
    // Uniform over [nanos - spread, nanos + spread] (the modulo bias is negligible).
    let offset = u128::from(r) % (2 * spread + 1);
    let total = nanos - spread + offset;
    Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
}

/// Uniform over `[lo, hi]`, chosen by the random value `r` (uniform over u64); `lo` when
/// `hi <= lo`. Pure, for tests.
pub fn uniform(lo: Duration, hi: Duration, r: u64) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_nanos();
    let offset = u128::from(r) % (span + 1);
    lo + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
}

/// A random u64 from the OS; the clock's nanoseconds if the OS has none to give.
pub fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
    })
}

/// `base` with ±[`JITTER_PERCENT`] % jitter.
pub fn jitter(base: Duration) -> Duration {
    jittered(base, JITTER_PERCENT, random_u64())
}

/// `RetryPollIntervalSeconds` and `RetryPollCount`: how failed polls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The longest wait between retries.
    pub cap: Duration,
    /// Retries before falling back to the regular interval; 0 = the official clients'
    /// algorithmic limit (three tries at the cap).
    pub count: u32,
    /// `official_poll_retry`: failed polls follow the official backoff (`cap`, `count`)
    /// instead of waiting for the next regular poll. Authentication always does.
    pub official: bool,
}

/// The waits after consecutive failures: the official clients' schedule for
/// `RetryPollIntervalSeconds` (60 s or the cap if smaller, each wait three times, doubling
/// to the cap), limited by `RetryPollCount`.
#[derive(Debug, Clone)]
pub struct ErrorBackoff {
    schedule: Backoff,
    failures: u32,
}

impl ErrorBackoff {
    pub fn new(policy: RetryPolicy) -> Self {
        ErrorBackoff {
            schedule: Backoff::official(policy.cap, policy.count),
            failures: 0,
        }
    }

    /// The wait before the next retry after one more failure, or `None` when the retries
    /// are used up (the count starts again).
    pub fn retry(&mut self) -> Option<Duration> {
        let d = self.schedule.delay(self.failures);
        self.failures = if d.is_some() {
            self.failures.saturating_add(1)
        } else {
            0
        };
        d
    }

    /// The wait before the next try after one more failure (no jitter); the cap once the
    /// schedule is over (for waits that never give up, such as authentication).
    pub fn failure(&mut self) -> Duration {
        let d = self
            .schedule
            .delay(self.failures)
            .unwrap_or(self.schedule.max);
        self.failures = self.failures.saturating_add(1);
        d
    }

    pub fn success(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// One periodic job's next due time.
#[derive(Debug, Clone)]
pub struct Timer {
    interval: Duration,
    /// The wait after a failure, jittered (at most the interval).
    retry_spread: Duration,
    /// [`RetryPolicy::official`].
    official: bool,
    backoff: ErrorBackoff,
    next: Instant,
    random: fn() -> u64,
}

impl Timer {
    /// Due at once; then every `interval` (jittered); after failures by the backoff of
    /// `retry`, and when its retries are used up, the regular interval again.
    pub fn new(interval: Duration, retry: RetryPolicy, now: Instant) -> Self {
        Self::with_random(interval, retry, now, random_u64)
    }

    /// As [`Timer::new`] with a given random source (tests).
    pub fn with_random(
        interval: Duration,
        retry: RetryPolicy,
        now: Instant,
        random: fn() -> u64,
    ) -> Self {
        Timer {
            interval,
            retry_spread: interval,
            official: retry.official,
            backoff: ErrorBackoff::new(retry),
            next: now,
            random,
        }
    }

    /// A failure's next try comes at most `spread` (jittered) after it, and never later
    /// than the interval. The default: the interval.
    pub fn with_retry_spread(mut self, spread: Duration) -> Self {
        self.retry_spread = spread.min(self.interval);
        self
    }

    pub fn due(&self) -> Instant {
        self.next
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.next <= now
    }

    /// Make it due at `at` (the first poll after start, spread).
    pub fn due_at(&mut self, at: Instant) {
        self.next = at;
    }

    /// Make it due now (a signal asked for it, or a deployment finished).
    pub fn trigger(&mut self, now: Instant) {
        self.next = now;
    }

    /// The job succeeded at `now`: next time one jittered interval later.
    pub fn succeeded(&mut self, now: Instant) -> Duration {
        self.backoff.success();
        let wait = jittered(self.interval, JITTER_PERCENT, (self.random)());
        self.next = now + wait;
        wait
    }

    /// The job failed at `now`: next time at the next regular poll (the interval, at most
    /// the retry spread, jittered); with [`RetryPolicy::official`], after the backoff's
    /// wait (jittered), and once its retries are used up after the interval.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failed_with(now, None)
    }

    /// As [`Timer::failed`], but when the server asked for a wait (`Retry-After`, already
    /// clamped by [`crate::client::retry_after`]) the wait is drawn between it and twice
    /// it: never earlier than asked (the server may tell every client the same number, so
    /// the spread is ours to add), never beyond the interval. The failure still counts in
    /// the backoff.
    pub fn failed_with(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff.retry();
        let r = (self.random)();
        let wait = match (retry_after, backoff) {
            (Some(d), _) => uniform(d.min(self.interval), (d * 2).min(self.interval), r),
            (None, Some(b)) if self.official => {
                jittered(b.min(self.retry_spread), JITTER_PERCENT, r)
            }
            (None, None) if self.official => jittered(self.interval, JITTER_PERCENT, r),
            (None, _) => jittered(self.retry_spread, JITTER_PERCENT, r),
        };
        self.next = now + wait;
        wait
    }
}

/// A seeded generator behind a `fn() -> u64`, as the timers take it (tests: the same
/// draws every run).
#[cfg(test)]
pub(crate) fn seeded() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(42) };
    }
    STATE.with(|s| {
        let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official clients' retry schedule (`official_poll_retry = true`).
    fn policy(cap: u64, count: u32) -> RetryPolicy {
        RetryPolicy {
            cap: Duration::from_secs(cap),
            count,
            official: true,
        }
    }

    /// The default: a failed poll waits for the next regular one.
    fn next_poll() -> RetryPolicy {
        RetryPolicy {
            official: false,
            ..policy(300, 0)
        }
    }

    #[test]
    fn retry_poll_count_limits_the_retries_before_the_interval() {
        fn low() -> u64 {
            0
        }
        let t0 = Instant::now();
        let mut t = Timer::with_random(Duration::from_secs(1800), policy(300, 2), t0, low);
        let waits: Vec<u64> = (0..6).map(|_| t.failed(t0).as_secs()).collect();
        assert_eq!(waits, [54, 54, 1620, 54, 54, 1620]);
        let mut b = ErrorBackoff::new(policy(300, 2));
        assert_eq!(b.retry(), Some(Duration::from_secs(60)));
        assert_eq!(b.retry(), Some(Duration::from_secs(60)));
        assert_eq!(b.retry(), None, "RetryPollCount = 2: used up");
        assert_eq!(b.retry(), Some(Duration::from_secs(60)), "and again");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(1800);
        let lo = Duration::from_secs(1620);
        let hi = Duration::from_secs(1980);
        assert_eq!(jittered(base, 10, 0), lo);
        let max_r = jittered(base, 10, u64::MAX);
        assert!(max_r >= lo && max_r <= hi, "{max_r:?}");
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let d = jitter(base);
            assert!(d >= lo && d <= hi, "{d:?}");
            seen_low |= d < base - Duration::from_secs(90);
            seen_high |= d > base + Duration::from_secs(90);
        }
        assert!(seen_low && seen_high, "the spread is used, both ways");
        assert_eq!(jittered(Duration::ZERO, 10, 12345), Duration::ZERO);
        assert_eq!(jittered(base, 0, 12345), base);
        let top = jittered(base, 10, 2 * 180_000_000_000);
        assert_eq!(top, hi, "the upper bound is reachable");
    }

    #[test]
    fn error_backoff_follows_the_official_schedule_then_stays_at_the_cap() {
        let mut b = ErrorBackoff::new(policy(300, 0));
        let got: Vec<u64> = (0..14).map(|_| b.failure().as_secs()).collect();
        assert_eq!(
            got,
            [60, 60, 60, 120, 120, 120, 240, 240, 240, 300, 300, 300, 300, 300]
        );
        b.success();
        assert_eq!(b.failure(), Duration::from_secs(60));
        let mut small = ErrorBackoff::new(policy(5, 0));
        assert_eq!(small.failure(), Duration::from_secs(5), "60 s is capped");
    }

    #[test]
    fn timers_wait_the_interval_after_success_and_back_off_after_failure() {
        fn low() -> u64 {
            0
        }
        let t0 = Instant::now();
        let mut t = Timer::with_random(Duration::from_secs(1800), policy(300, 0), t0, low);
        assert!(t.is_due(t0), "due at start");
        let w = t.succeeded(t0);
        assert_eq!(w, Duration::from_secs(1620), "r = 0 is the low end");
        assert!(!t.is_due(t0 + Duration::from_secs(1000)));
        let w = t.failed(t0);
        assert_eq!(w, Duration::from_secs(54), "60 s backoff, -10 %");
        let waits: Vec<u64> = (0..13).map(|_| t.failed(t0).as_secs()).collect();
        assert_eq!(
            waits,
            [54, 54, 108, 108, 108, 216, 216, 216, 270, 270, 270, 1620, 54],
            "the official schedule capped at 300 s (-10 %); then the interval, and again"
        );
        t.succeeded(t0);
        assert_eq!(
            t.failed(t0),
            Duration::from_secs(54),
            "a success resets the backoff"
        );
        t.trigger(t0);
        assert!(t.is_due(t0));
        assert_eq!(
            t.failed_with(t0, Some(Duration::from_secs(7))),
            Duration::from_secs(7),
            "Retry-After replaces the backoff; r = 0: exactly it"
        );
        assert_eq!(
            t.failed_with(t0, Some(Duration::from_secs(5000))),
            Duration::from_secs(1800),
            "but never beyond the interval"
        );

        let mut short = Timer::with_random(Duration::from_secs(10), policy(300, 0), t0, low);
        assert_eq!(
            short.failed(t0),
            Duration::from_secs(9),
            "never later than the interval itself"
        );
    }

    /// The fleet fix (docs/BENCHMARKS.md "Fleet behaviour"): a failed poll waits for the
    /// next regular one, spread ±10 % as every poll, so the devices an outage failed come
    /// back where they were in the fleet's spread, not in one wave a minute after the
    /// server returns (the official backoff: every first retry at 54-66 s).
    #[test]
    fn a_failed_poll_waits_for_the_next_regular_one() {
        let t0 = Instant::now();
        let first_retries = |retry: RetryPolicy| -> Vec<u64> {
            (0..10_000)
                .map(|_| {
                    Timer::with_random(Duration::from_secs(1800), retry, t0, seeded)
                        .failed(t0)
                        .as_secs()
                })
                .collect()
        };
        let waits = first_retries(next_poll());
        assert!(
            waits.iter().all(|w| (1620..=1980).contains(w)),
            "the interval ±10 %"
        );
        let mut deciles = [0u32; 10];
        for w in &waits {
            deciles[(((w - 1620) * 10) / 361) as usize] += 1;
        }
        assert!(
            deciles.iter().all(|&n| (850..1150).contains(&n)),
            "uniform: {deciles:?}"
        );
        let official = first_retries(policy(300, 0));
        assert!(official.iter().all(|w| (54..=66).contains(w)), "one wave");

        // Every failure the same, the retries used up or not; a success in between too.
        let mut t = Timer::with_random(Duration::from_secs(1800), next_poll(), t0, seeded);
        assert!((0..20).all(|_| (1620..=1980).contains(&t.failed(t0).as_secs())));
        // The inventory's next try comes within the update interval, not its 8 hours.
        let mut inv = Timer::with_random(Duration::from_secs(28800), next_poll(), t0, seeded)
            .with_retry_spread(Duration::from_secs(1800));
        assert!((0..1000).all(|_| (1620..=1980).contains(&inv.failed(t0).as_secs())));
    }

    /// A server's `Retry-After` is the earliest retry; the spread up to twice it is the
    /// device's, since a server tells every client the same number.
    #[test]
    fn retry_after_is_the_earliest_and_spread_to_twice_it() {
        let t0 = Instant::now();
        let mut t = Timer::with_random(Duration::from_secs(1800), next_poll(), t0, seeded);
        let waits: Vec<u64> = (0..5000)
            .map(|_| t.failed_with(t0, Some(Duration::from_secs(60))).as_secs())
            .collect();
        assert!(waits.iter().all(|w| (60..=120).contains(w)));
        let early = waits.iter().filter(|&&w| w < 90).count();
        assert!(
            (2200..2800).contains(&early),
            "half below the middle: {early}"
        );
    }
}
