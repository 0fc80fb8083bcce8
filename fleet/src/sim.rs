//! The event loop: N devices, each with its own [`Schedule`], on one virtual clock (ms),
//! against one [`Server`]. Each device does what the daemon does with each job's result:
//! an API call that gets a 401 or no answer authenticates again and retries once (the
//! client's own rule, [`mender_bridge::client::reauth_and_retry`]); a deployment is
//! statuses, a download, a reboot and a restarted daemon whose resumed deployment
//! authenticates and reports success before its schedule starts again.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use mender_bridge::client::{reauth_and_retry, FirstAnswer};
use mender_bridge::daemon::plan::{Job, PlanSettings};
use tokio::time::Instant;

use crate::rng::{self, Rng};
use crate::schedules::{Schedule, Which};
use crate::server::{Answer, Kind, Scenario, Server};

/// What one run is.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub devices: usize,
    pub seed: u64,
    pub scenario: Scenario,
    pub which: Which,
    pub settings: PlanSettings,
    /// Devices boot uniformly over this span from the start.
    pub boot_spread: Duration,
    /// When the scenario's event happens.
    pub event_at: Duration,
    /// How long the run lasts.
    pub length: Duration,
}

/// Time a served request takes.
const SERVED: u64 = 100;
/// The client's connect timeout (a black hole costs this much per request).
const CONNECT_TIMEOUT: u64 = 30_000;
/// How long a download, an install and a reboot take (ms).
const DOWNLOAD: u64 = 60_000;
const INSTALL: u64 = 30_000;
const REBOOT: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    Running,
    /// A deployment's steps: 0 downloading status, 1 download, 2 installing status, 3
    /// rebooting status then the reboot, 4 the restarted daemon resumes.
    Deploying(u8),
}

struct Device {
    state: State,
    schedule: Option<Schedule>,
    token_at: Option<u64>,
    deployed: bool,
}

/// What a run measured.
pub struct Run {
    pub setup: Setup,
    /// Requests per second of virtual time, by [`Kind::index`].
    pub per_second: Vec<[u32; 5]>,
    /// Per device: when it first saw a deployment (deploy) or first checked successfully
    /// after the event ended (other scenarios), in ms; `None` if never.
    pub first_check_after: Vec<Option<u64>>,
}

struct Sim {
    setup: Setup,
    base: Instant,
    server: Server,
    per_second: Vec<[u32; 5]>,
    first_check_after: Vec<Option<u64>>,
    event_end: u64,
}

impl Sim {
    fn at(&self, t: u64) -> Instant {
        self.base + Duration::from_millis(t)
    }

    fn record(&mut self, t: u64, kind: Kind) {
        if let Some(bin) = self.per_second.get_mut((t / 1000) as usize) {
            bin[kind.index()] += 1;
        }
    }

    fn cost(a: Answer) -> u64 {
        match a {
            Answer::BlackHole => CONNECT_TIMEOUT,
            Answer::Refused => 1,
            _ => SERVED,
        }
    }

    /// One request; returns the answer and when it ended.
    fn request(&mut self, t: u64, kind: Kind, token_at: Option<u64>) -> (Answer, u64) {
        self.record(t, kind);
        let a = self.server.answer(t, kind, token_at);
        (a, t + Self::cost(a))
    }

    /// Authentication; a token issued at its end on success.
    fn authenticate(&mut self, dev: &mut Device, t: u64) -> (Answer, u64) {
        let (a, end) = self.request(t, Kind::Auth, None);
        if matches!(a, Answer::Ok { .. }) {
            dev.token_at = Some(end);
        }
        (a, end)
    }

    /// An authorised call by the client's rule: after a 401 or no answer, authenticate
    /// again and retry once.
    fn api_call(&mut self, dev: &mut Device, t: u64, kind: Kind) -> (Answer, u64) {
        let (first, end) = self.request(t, kind, dev.token_at);
        let seen = match first {
            Answer::Ok { .. } => FirstAnswer::Status(200),
            Answer::Unauthorized => FirstAnswer::Status(401),
            Answer::TooMany(_) => FirstAnswer::Status(429),
            Answer::Refused | Answer::BlackHole => FirstAnswer::NoAnswer,
        };
        if !reauth_and_retry(seen) {
            return (first, end);
        }
        let (auth, end) = self.authenticate(dev, end);
        if !matches!(auth, Answer::Ok { .. }) {
            return (auth, end);
        }
        self.request(end, kind, dev.token_at)
    }

    /// Runs the job due at `t`; returns when the device next needs the loop.
    fn job(&mut self, i: usize, dev: &mut Device, t: u64) -> u64 {
        let Some(schedule) = dev.schedule.as_ref() else {
            return t;
        };
        let (due, job) = schedule.next();
        if due > self.at(t) {
            return t + due.duration_since(self.at(t)).as_millis() as u64;
        }
        let (answer, end) = match job {
            Job::Authenticate => self.authenticate(dev, t),
            Job::Inventory => self.api_call(dev, t, Kind::Inventory),
            Job::UpdateCheck => self.api_call(dev, t, Kind::Next),
        };
        let now = self.at(end);
        let Some(schedule) = dev.schedule.as_mut() else {
            return end;
        };
        match answer {
            Answer::Ok { deployment } => {
                if job == Job::UpdateCheck {
                    if self.server.scenario == Scenario::Deploy {
                        if deployment && self.first_check_after[i].is_none() {
                            self.first_check_after[i] = Some(t);
                        }
                    } else if t >= self.event_end && self.first_check_after[i].is_none() {
                        self.first_check_after[i] = Some(t);
                    }
                    if deployment && !dev.deployed {
                        dev.state = State::Deploying(0);
                        return end;
                    }
                }
                schedule.succeeded(job, now);
            }
            Answer::TooMany(d) => schedule.failed(job, now, Some(d)),
            _ => schedule.failed(job, now, None),
        }
        let (next, _) = schedule.next();
        end.max(next.duration_since(self.base).as_millis() as u64)
    }

    /// One step of a deployment (no failures are simulated during it); returns when the
    /// next step is due.
    fn deploy_step(&mut self, dev: &mut Device, step: u8, t: u64) -> u64 {
        match step {
            0 => {
                let (_, end) = self.api_call(dev, t, Kind::Status);
                dev.state = State::Deploying(1);
                end
            }
            1 => {
                let (_, end) = self.api_call(dev, t, Kind::Download);
                dev.state = State::Deploying(2);
                end + DOWNLOAD
            }
            2 => {
                let (_, end) = self.api_call(dev, t, Kind::Status);
                dev.state = State::Deploying(3);
                end + INSTALL
            }
            3 => {
                let (_, end) = self.api_call(dev, t, Kind::Status);
                // The reboot: the daemon stops; the token is gone with the process.
                dev.schedule = None;
                dev.token_at = None;
                dev.state = State::Deploying(4);
                end + REBOOT
            }
            _ => {
                // The new daemon: its resumed deployment authenticates (the deliberate
                // re-auth before the commit) and reports success, then the schedule
                // starts.
                let mut schedule = Schedule::new(self.setup.which, self.setup.settings, self.at(t));
                let (_, end) = self.authenticate(dev, t);
                let (_, end) = self.api_call(dev, end, Kind::Status);
                schedule.deployment_finished(self.at(end));
                schedule.already_authenticated(self.at(end));
                dev.schedule = Some(schedule);
                dev.deployed = true;
                dev.state = State::Running;
                end
            }
        }
    }
}

/// Runs one simulation.
pub fn run(setup: Setup) -> Run {
    rng::seed(setup.seed);
    let mut boot = Rng::new(setup.seed ^ 0xb007);
    let length = setup.length.as_millis() as u64;
    let event_at = setup.event_at.as_millis() as u64;
    let mut sim = Sim {
        setup,
        base: Instant::now(),
        server: Server::new(setup.scenario, event_at, setup.seed),
        per_second: vec![[0; 5]; (length / 1000) as usize],
        first_check_after: vec![None; setup.devices],
        event_end: event_at + setup.scenario.duration().as_millis() as u64,
    };
    let mut devices: Vec<Device> = (0..setup.devices)
        .map(|_| Device {
            state: State::Off,
            schedule: None,
            token_at: None,
            deployed: false,
        })
        .collect();
    let mut queue = BinaryHeap::new();
    let spread = setup.boot_spread.as_millis() as u64;
    for i in 0..setup.devices {
        queue.push(Reverse((boot.below(spread.max(1)), i)));
    }
    while let Some(Reverse((t, i))) = queue.pop() {
        if t >= length {
            break;
        }
        let dev = &mut devices[i];
        let next = match dev.state {
            State::Off => {
                dev.schedule = Some(Schedule::new(setup.which, setup.settings, sim.at(t)));
                dev.state = State::Running;
                t
            }
            State::Running => sim.job(i, dev, t),
            State::Deploying(step) => sim.deploy_step(dev, step, t),
        };
        queue.push(Reverse((next.max(t + 1), i)));
    }
    Run {
        setup,
        per_second: sim.per_second,
        first_check_after: sim.first_check_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summarize;
    use mender_bridge::daemon::schedule::RetryPolicy;

    pub(crate) fn setup(scenario: Scenario, which: Which, devices: usize) -> Setup {
        Setup {
            devices,
            seed: 7,
            scenario,
            which,
            settings: PlanSettings {
                update_interval: Duration::from_secs(1800),
                inventory_interval: Duration::from_secs(28800),
                retry: RetryPolicy {
                    cap: Duration::from_secs(300),
                    count: 0,
                    official: false,
                },
                first_poll_spread: true,
            },
            boot_spread: Duration::from_secs(3600),
            event_at: Duration::from_secs(3 * 3600),
            length: Duration::from_secs(6 * 3600),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run_and_every_device_polls() {
        let a = run(setup(Scenario::Steady, Which::Bridge, 500));
        let b = run(setup(Scenario::Steady, Which::Bridge, 500));
        assert_eq!(a.per_second, b.per_second);
        let s = summarize(&a);
        assert_eq!(s.checked, 500, "every device checks after the event time");
        // 500 devices, one check per 1800 s (±10 %): about 0.28 checks/s.
        assert!((0.25..0.31).contains(&s.mean), "{}", s.mean);
        let mut c = setup(Scenario::Steady, Which::Bridge, 500);
        c.seed = 8;
        assert_ne!(run(c).per_second, a.per_second, "the seed matters");
    }

    /// The fleet fix, pinned: after a 10-minute outage the bridge's fleet is at its steady
    /// load again within a minute (its failed polls wait for their next regular one),
    /// while the official backoff (`official_poll_retry = true`) brings a wave back every
    /// interval for hours; both see the server again within one interval and its jitter.
    #[test]
    fn after_an_outage_the_fleet_is_steady_again_at_once() {
        let fixed = summarize(&run(setup(Scenario::Outage, Which::Bridge, 3000)));
        assert!(
            fixed.recovery <= 60,
            "steady again after {} s",
            fixed.recovery
        );
        assert_eq!(fixed.checked, 3000);
        assert!(fixed.check_max <= 1980, "{}", fixed.check_max);
        let official = summarize(&run(setup(
            Scenario::Outage,
            Which::BridgeOfficialTimings,
            3000,
        )));
        assert!(official.recovery > 2 * 1800, "{}", official.recovery);
        assert!(
            official.peak_after > 2.5 * fixed.peak_after,
            "{} vs {}",
            official.peak_after,
            fixed.peak_after
        );
    }

    /// The fleet fix for a fleet that powers on together (all boots within 10 s): with the
    /// first polls spread over the interval the load is steady from the first interval on;
    /// with the official timings the wave comes back every interval (the ±10 % jitter
    /// takes hours to undo it).
    #[test]
    fn a_fleet_that_powers_on_together_polls_spread() {
        let power_on = |which| {
            let mut s = setup(Scenario::Steady, which, 3000);
            s.boot_spread = Duration::from_secs(10);
            summarize(&run(s))
        };
        let fixed = power_on(Which::Bridge);
        assert!(fixed.recovery <= 60, "{}", fixed.recovery);
        let official = power_on(Which::BridgeOfficialTimings);
        assert!(official.recovery > 2 * 1800, "{}", official.recovery);
    }

    /// After a fleet-wide update each device authenticates once (for its commit), not
    /// again when its daemon starts.
    #[test]
    fn a_rebooted_device_authenticates_once() {
        let r = run(setup(Scenario::Deploy, Which::Bridge, 300));
        let event = 3 * 3600;
        let auths: u32 = r.per_second[event..]
            .iter()
            .map(|b| b[Kind::Auth.index()])
            .sum();
        assert_eq!(auths, 300);
    }

    #[test]
    fn a_deployment_reaches_every_device_within_one_poll_interval() {
        let r = run(setup(Scenario::Deploy, Which::Bridge, 300));
        let s = summarize(&r);
        assert_eq!(s.checked, 300);
        assert!(s.check_max <= 1980, "{}", s.check_max);
        let kinds: u32 = r.per_second.iter().map(|b| b[Kind::Download.index()]).sum();
        assert_eq!(kinds, 300, "one download per device");
    }
}
