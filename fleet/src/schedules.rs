//! The two schedules the simulation compares: the bridge daemon's own [`Plan`] (the code
//! the daemon runs), and a model of the official client's published schedule (fixed
//! intervals; after an error the official backoff: 60 s, each wait three times, doubling
//! to `RetryPollIntervalSeconds`), labelled as a model, not a measurement.

use std::time::Duration;

use mender_bridge::daemon::plan::{Job, Plan, PlanSettings};
use mender_bridge::daemon::schedule::{ErrorBackoff, RetryPolicy};
use tokio::time::Instant;

use crate::rng::timer_random;

/// Which schedule the devices follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// mender-bridge's daemon (`src/daemon/plan.rs`), as configured by default.
    Bridge,
    /// mender-bridge's daemon with the official client's timings: `official_poll_retry =
    /// true` (the official backoff after a failed poll) and `first_poll_spread = false`
    /// (the first polls right after the start): the bridge before the fleet fixes.
    BridgeOfficialTimings,
    /// A model of the official client's published schedule.
    Official,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Bridge => "bridge",
            Which::BridgeOfficialTimings => "bridge-official-timings",
            Which::Official => "official",
        }
    }

    /// The plot's legend.
    pub fn label(self) -> &'static str {
        match self {
            Which::Bridge => "mender-bridge",
            Which::BridgeOfficialTimings => "mender-bridge, official timings",
            Which::Official => "official schedule (model)",
        }
    }
}

/// One device's schedule.
pub enum Schedule {
    Bridge(Plan),
    Official(Official),
}

impl Schedule {
    pub fn new(which: Which, mut settings: PlanSettings, now: Instant) -> Self {
        let official = which == Which::BridgeOfficialTimings;
        settings.retry.official = official;
        settings.first_poll_spread = !official;
        match which {
            Which::Bridge | Which::BridgeOfficialTimings => {
                Schedule::Bridge(Plan::new(settings, now, timer_random))
            }
            Which::Official => Schedule::Official(Official::new(settings, now)),
        }
    }

    pub fn next(&self) -> (Instant, Job) {
        match self {
            Schedule::Bridge(p) => p.next(),
            Schedule::Official(o) => o.next(),
        }
    }

    pub fn succeeded(&mut self, job: Job, now: Instant) {
        match self {
            Schedule::Bridge(p) => {
                p.succeeded(job, now);
            }
            Schedule::Official(o) => o.succeeded(job, now),
        }
    }

    pub fn failed(&mut self, job: Job, now: Instant, retry_after: Option<Duration>) {
        match self {
            Schedule::Bridge(p) => {
                p.failed(job, now, retry_after);
            }
            Schedule::Official(o) => o.failed(job, now),
        }
    }

    pub fn deployment_finished(&mut self, now: Instant) {
        match self {
            Schedule::Bridge(p) => p.deployment_finished(now),
            Schedule::Official(o) => o.deployment_finished(now),
        }
    }

    /// The resumed deployment left the client with a token (the daemon checks the
    /// client; the official client keeps its token in its store across the reboot).
    pub fn already_authenticated(&mut self, now: Instant) {
        match self {
            Schedule::Bridge(p) => p.already_authenticated(now),
            Schedule::Official(o) => o.succeeded(Job::Authenticate, now),
        }
    }
}

/// The official schedule's model: no jitter, `Retry-After` ignored (3.4), the update
/// check and the inventory each on a fixed interval, the official backoff after errors.
pub struct Official {
    settings: PlanSettings,
    authenticated: bool,
    auth: (Instant, ErrorBackoff),
    update: (Instant, ErrorBackoff),
    inventory: (Instant, ErrorBackoff),
}

impl Official {
    fn new(settings: PlanSettings, now: Instant) -> Self {
        let backoff = || ErrorBackoff::new(settings.retry);
        Official {
            settings,
            authenticated: false,
            auth: (
                now,
                ErrorBackoff::new(RetryPolicy {
                    count: 0,
                    ..settings.retry
                }),
            ),
            update: (now, backoff()),
            inventory: (now, backoff()),
        }
    }

    fn next(&self) -> (Instant, Job) {
        if !self.authenticated {
            return (self.auth.0, Job::Authenticate);
        }
        if self.inventory.0 <= self.update.0 {
            (self.inventory.0, Job::Inventory)
        } else {
            (self.update.0, Job::UpdateCheck)
        }
    }

    fn succeeded(&mut self, job: Job, now: Instant) {
        match job {
            Job::Authenticate => {
                self.authenticated = true;
                self.auth.1.success();
            }
            Job::Inventory => {
                self.inventory.1.success();
                self.inventory.0 = now + self.settings.inventory_interval;
            }
            Job::UpdateCheck => {
                self.update.1.success();
                self.update.0 = now + self.settings.update_interval;
            }
        }
    }

    fn failed(&mut self, job: Job, now: Instant) {
        match job {
            Job::Authenticate => self.auth.0 = now + self.auth.1.failure(),
            Job::Inventory => {
                let wait = self
                    .inventory
                    .1
                    .retry()
                    .unwrap_or(self.settings.inventory_interval);
                self.inventory.0 = now + wait.min(self.settings.inventory_interval);
            }
            Job::UpdateCheck => {
                let wait = self
                    .update
                    .1
                    .retry()
                    .unwrap_or(self.settings.update_interval);
                self.update.0 = now + wait.min(self.settings.update_interval);
            }
        }
    }

    fn deployment_finished(&mut self, now: Instant) {
        self.succeeded(Job::UpdateCheck, now);
        self.inventory.0 = now;
    }
}
