//! The daemon's schedule without I/O: which job is next (authenticate, then the inventory,
//! then the update check, as the official client orders them after a start), when, and
//! how each job's result moves the next time. The daemon's loop drives it with the real
//! clock; the fleet simulation (`fleet/`, `scripts/fleet.sh`) drives many
//! of them on a virtual clock, so what it measures is this code, not a model of it.
//!
//! Invariants: nothing but authentication runs before the device is authenticated; when
//! both periodic jobs are due the inventory goes first; every wait comes from the
//! [`Timer`]s and the [`ErrorBackoff`] of [`super::schedule`] (jitter, backoff,
//! `RetryPollCount`, `Retry-After`), never from here.

use std::time::Duration;

use tokio::time::Instant;

use super::schedule::{jittered, uniform, ErrorBackoff, RetryPolicy, Timer, JITTER_PERCENT};

/// A job of the daemon's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Authenticate (until accepted; pending devices wait here).
    Authenticate,
    /// Send the inventory.
    Inventory,
    /// Check for an update (and run the deployment it offers).
    UpdateCheck,
}

/// The intervals the plan keeps (`UpdatePollIntervalSeconds`,
/// `InventoryPollIntervalSeconds`, `RetryPollIntervalSeconds`/`RetryPollCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    pub update_interval: Duration,
    pub inventory_interval: Duration,
    pub retry: RetryPolicy,
    /// `first_poll_spread`: the first update check and inventory after the start come at
    /// a random time within the update interval, not right after the authentication.
    pub first_poll_spread: bool,
}

/// One daemon's schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    authenticated: bool,
    auth_backoff: ErrorBackoff,
    auth_next: Instant,
    update: Timer,
    inventory: Timer,
    random: fn() -> u64,
}

impl Plan {
    /// A daemon that starts at `now`: authentication is due at once, then both jobs, at
    /// once too or (`first_poll_spread`) each at a random time within the update interval.
    pub fn new(settings: PlanSettings, now: Instant, random: fn() -> u64) -> Self {
        let mut plan = Plan {
            authenticated: false,
            // Authentication never gives up: the official schedule, then the cap.
            auth_backoff: ErrorBackoff::new(RetryPolicy {
                count: 0,
                ..settings.retry
            }),
            auth_next: now,
            update: Timer::with_random(settings.update_interval, settings.retry, now, random),
            // A failed inventory is retried within the update interval, not its hours.
            inventory: Timer::with_random(settings.inventory_interval, settings.retry, now, random)
                .with_retry_spread(settings.update_interval),
            random,
        };
        if settings.first_poll_spread {
            // A fleet that powers on together would otherwise poll together, and keep
            // doing so every interval (docs/BENCHMARKS.md "Fleet behaviour").
            let within = settings.update_interval;
            plan.update
                .due_at(now + uniform(Duration::ZERO, within, random()));
            plan.inventory.due_at(
                now + uniform(
                    Duration::ZERO,
                    within.min(settings.inventory_interval),
                    random(),
                ),
            );
        }
        plan
    }

    /// The job due at `now`, if any.
    pub fn due(&self, now: Instant) -> Option<Job> {
        let (at, job) = self.next();
        (at <= now).then_some(job)
    }

    /// The next job and when it is due.
    pub fn next(&self) -> (Instant, Job) {
        if !self.authenticated {
            return (self.auth_next, Job::Authenticate);
        }
        if self.inventory.due() <= self.update.due() {
            (self.inventory.due(), Job::Inventory)
        } else {
            (self.update.due(), Job::UpdateCheck)
        }
    }

    /// `job` succeeded at `now` (an update check that found nothing, or whose deployment
    /// the caller reports with [`Plan::deployment_finished`]). Returns the wait before it
    /// is due again (zero for authentication: the other jobs are due).
    pub fn succeeded(&mut self, job: Job, now: Instant) -> Duration {
        match job {
            Job::Authenticate => {
                self.authenticated = true;
                self.auth_backoff.success();
                Duration::ZERO
            }
            Job::Inventory => self.inventory.succeeded(now),
            Job::UpdateCheck => self.update.succeeded(now),
        }
    }

    /// `job` failed at `now`; `retry_after`: the server's `Retry-After`, already clamped.
    /// Returns the wait before it is tried again.
    pub fn failed(&mut self, job: Job, now: Instant, retry_after: Option<Duration>) -> Duration {
        match job {
            Job::Authenticate => {
                let backoff =
                    jittered(self.auth_backoff.failure(), JITTER_PERCENT, (self.random)());
                let wait = retry_after.unwrap_or(backoff);
                self.auth_next = now + wait;
                wait
            }
            Job::Inventory => self.inventory.failed_with(now, retry_after),
            Job::UpdateCheck => self.update.failed_with(now, retry_after),
        }
    }

    /// The client already holds a token at `now` (the deployment resumed at start-up
    /// authenticated for its commit): the start-up authentication is not repeated.
    pub fn already_authenticated(&mut self, now: Instant) {
        if !self.authenticated {
            self.succeeded(Job::Authenticate, now);
        }
    }

    /// A deployment ended at `now` (finished or aborted on the server): the next check a
    /// jittered interval later, and the inventory now (the installed software changed).
    pub fn deployment_finished(&mut self, now: Instant) {
        self.update.succeeded(now);
        self.inventory.trigger(now);
    }

    /// A signal (or `check-update` / `send-inventory`) asks for `job` now.
    pub fn trigger(&mut self, job: Job, now: Instant) {
        match job {
            Job::Authenticate => self.auth_next = now,
            Job::Inventory => self.inventory.trigger(now),
            Job::UpdateCheck => self.update.trigger(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PlanSettings {
        PlanSettings {
            update_interval: Duration::from_secs(1800),
            inventory_interval: Duration::from_secs(28800),
            retry: RetryPolicy {
                cap: Duration::from_secs(300),
                count: 0,
                official: false,
            },
            first_poll_spread: false,
        }
    }

    fn low() -> u64 {
        0
    }

    #[test]
    fn authenticate_then_inventory_then_the_update_check() {
        let t0 = Instant::now();
        let mut p = Plan::new(settings(), t0, low);
        assert_eq!(p.due(t0), Some(Job::Authenticate));
        assert_eq!(
            p.failed(Job::Authenticate, t0, None),
            Duration::from_secs(54)
        );
        assert_eq!(p.due(t0), None, "backing off");
        let t1 = t0 + Duration::from_secs(54);
        assert_eq!(p.due(t1), Some(Job::Authenticate));
        p.succeeded(Job::Authenticate, t1);
        assert_eq!(p.due(t1), Some(Job::Inventory), "inventory first");
        p.succeeded(Job::Inventory, t1);
        assert_eq!(p.due(t1), Some(Job::UpdateCheck));
        assert_eq!(p.succeeded(Job::UpdateCheck, t1), Duration::from_secs(1620));
        assert_eq!(p.next(), (t1 + Duration::from_secs(1620), Job::UpdateCheck));
        p.deployment_finished(t1);
        assert_eq!(
            p.due(t1),
            Some(Job::Inventory),
            "inventory after a deployment"
        );
        assert_eq!(
            p.failed(Job::Authenticate, t1, Some(Duration::from_secs(7))),
            Duration::from_secs(7),
            "Retry-After replaces the auth backoff"
        );

        // A daemon whose resumed deployment authenticated does not authenticate again.
        let mut resumed = Plan::new(settings(), t0, low);
        resumed.deployment_finished(t0);
        resumed.already_authenticated(t0);
        assert_eq!(resumed.due(t0), Some(Job::Inventory));
    }

    /// The fleet fix for a fleet that powers on together (docs/BENCHMARKS.md "Fleet
    /// behaviour"): authentication at once, the first update check and inventory spread
    /// uniformly over the update interval.
    #[test]
    fn the_first_polls_are_spread_over_the_update_interval() {
        use crate::daemon::schedule::seeded;
        let t0 = Instant::now();
        let spread = PlanSettings {
            first_poll_spread: true,
            ..settings()
        };
        let mut deciles = [0u32; 10];
        for _ in 0..10_000 {
            let mut p = Plan::new(spread, t0, seeded);
            assert_eq!(p.due(t0), Some(Job::Authenticate), "authentication at once");
            p.succeeded(Job::Authenticate, t0);
            if p.next().1 == Job::Inventory {
                p.succeeded(Job::Inventory, t0);
            }
            let (at, job) = p.next();
            assert_eq!(job, Job::UpdateCheck);
            let secs = at.duration_since(t0).as_secs();
            assert!(secs <= 1800, "{secs}");
            deciles[(secs * 10 / 1801) as usize] += 1;
        }
        assert!(
            deciles.iter().all(|&n| (850..1150).contains(&n)),
            "{deciles:?}"
        );
        let mut at_once = Plan::new(settings(), t0, seeded);
        at_once.succeeded(Job::Authenticate, t0);
        assert_eq!(
            at_once.due(t0),
            Some(Job::Inventory),
            "false: as the official client"
        );
    }
}
