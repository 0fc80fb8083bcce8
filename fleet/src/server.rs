//! The server side of the simulation: what each request gets, by scenario. Only the
//! answers matter here (a status, a refusal, a black hole, a 429); the load is counted by
//! [`crate::sim`] as requests arrive.

use std::time::Duration;

use crate::rng::Rng;

/// The kinds of request the device API gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Auth,
    Inventory,
    Next,
    Status,
    Download,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Auth,
        Kind::Inventory,
        Kind::Next,
        Kind::Status,
        Kind::Download,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Auth => "auth",
            Kind::Inventory => "inventory",
            Kind::Next => "next",
            Kind::Status => "status",
            Kind::Download => "download",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Served (for `Next`: `deployment` says whether one is offered).
    Ok { deployment: bool },
    /// 401: the token is not (or no longer) valid.
    Unauthorized,
    /// 429 with `Retry-After`.
    TooMany(Duration),
    /// Connection refused: the client knows at once.
    Refused,
    /// No answer: the client gives up after its timeout.
    BlackHole,
}

/// The scenarios of issue 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Nothing happens: the fleet's steady load.
    Steady,
    /// The server refuses connections for 10 minutes.
    Outage,
    /// The server takes connections and never answers, for 10 minutes.
    Blackhole,
    /// The server answers 429 (`Retry-After: 60`) to half of the calls, for 30 minutes.
    TooMany,
    /// A deployment to every device.
    Deploy,
    /// Every token becomes invalid at once (the server rotated its key).
    JwtExpiry,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Steady,
        Scenario::Outage,
        Scenario::Blackhole,
        Scenario::TooMany,
        Scenario::Deploy,
        Scenario::JwtExpiry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::Outage => "outage",
            Scenario::Blackhole => "blackhole",
            Scenario::TooMany => "too-many",
            Scenario::Deploy => "deploy",
            Scenario::JwtExpiry => "jwt-expiry",
        }
    }

    /// How long the event lasts (zero: a moment).
    pub fn duration(self) -> Duration {
        match self {
            Scenario::Outage | Scenario::Blackhole => Duration::from_secs(600),
            Scenario::TooMany => Duration::from_secs(1800),
            Scenario::Steady | Scenario::Deploy | Scenario::JwtExpiry => Duration::ZERO,
        }
    }
}

/// The simulated server.
pub struct Server {
    pub scenario: Scenario,
    /// When the event starts (ms of virtual time).
    pub event_at: u64,
    pub retry_after: Duration,
    rng: Rng,
}

impl Server {
    pub fn new(scenario: Scenario, event_at: u64, seed: u64) -> Self {
        Server {
            scenario,
            event_at,
            retry_after: Duration::from_secs(60),
            rng: Rng::new(seed ^ 0x5e57_5e57),
        }
    }

    fn during(&self, t: u64) -> bool {
        let end = self.event_at + self.scenario.duration().as_millis() as u64;
        t >= self.event_at && t < end
    }

    /// The answer at `t` to a request of `kind` carrying a token issued at `token_at`
    /// (`None` for authentication).
    pub fn answer(&mut self, t: u64, kind: Kind, token_at: Option<u64>) -> Answer {
        match self.scenario {
            Scenario::Outage if self.during(t) => return Answer::Refused,
            Scenario::Blackhole if self.during(t) => return Answer::BlackHole,
            Scenario::TooMany if self.during(t) && self.rng.next().is_multiple_of(2) => {
                return Answer::TooMany(self.retry_after)
            }
            _ => {}
        }
        if self.scenario == Scenario::JwtExpiry
            && t >= self.event_at
            && token_at.is_some_and(|at| at < self.event_at)
        {
            return Answer::Unauthorized;
        }
        Answer::Ok {
            deployment: kind == Kind::Next
                && self.scenario == Scenario::Deploy
                && t >= self.event_at,
        }
    }
}
