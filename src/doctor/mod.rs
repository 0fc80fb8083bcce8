//! `mender-bridge doctor`: checks a device's setup the way the daemon would use it, and
//! says for each check what it found and, when something is wrong, how to fix it.
//!
//! One small module per group of checks: [`config`] (the files and the loader's verdict),
//! [`key`] (the device key), [`identity`] (the identity script), [`clock`] (is the time
//! plausible enough for TLS), [`server`] (DNS, TCP and TLS to each server), [`auth`] (the
//! signed auth request, checked locally, and the server's answer), [`artifact`] (the
//! verify keys), [`backend`] (the installer and the Update Modules), [`install`] (a
//! deployment or standalone install in progress), [`dbus`] (the token API for the
//! add-ons).
//!
//! Invariants:
//! - Each check calls the code the daemon runs (the config loader, `DeviceKey::load`, the
//!   identity runner, the TLS client configuration, the auth request signing, the
//!   backends' preflight and inventory): a check passes only if the daemon's own path
//!   would.
//! - Nothing is changed on the device: no key is generated, no boot variable written, no
//!   install started (SWUpdate's signature probe is its own dry run), and RAUC and
//!   SWUpdate are probed only under the install lock, never beside a running install; a
//!   D-Bus name is only owned for the moment it takes to release it again.
//! - Every network wait has a timeout ([`CHECK_TIMEOUT`]); no secret (private key, JWT,
//!   tenant token) is ever printed: keys and tokens appear as fingerprints at most.
//! - A check that cannot run because an earlier one failed is [`Status::Skip`], not a
//!   failure of its own; only [`Status::Fail`] makes the command exit non-zero.

pub mod artifact;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod config;
pub mod dbus;
pub mod identity;
pub mod install;
pub mod key;
pub mod server;

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::config::ConfigPaths;

/// The longest a single network check waits (DNS, connect, handshake, one request, one
/// D-Bus connection).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but something deserves attention (the fix says what).
    Warn,
    /// Will not work as configured.
    Fail,
    /// Not run: an earlier check it depends on failed.
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<4}` lines the names up.
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        })
    }
}

/// One line of the report.
///
/// Invariant: `found` and `fix` never hold a secret (the constructors' callers pass
/// fingerprints, paths and messages only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    /// Short name: `config`, `device key`, `tls`, ...
    pub name: String,
    /// What was found.
    pub found: String,
    /// For warn and fail: what to do about it.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, found: impl Into<String>) -> Self {
        Check {
            status: Status::Ok,
            name: name.into(),
            found: found.into(),
            fix: None,
        }
    }

    pub fn warn(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Warn,
            name: name.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Fail,
            name: name.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not run, because `why` (the earlier check that failed).
    pub fn skip(name: impl Into<String>, why: impl Into<String>) -> Self {
        Check {
            status: Status::Skip,
            name: name.into(),
            found: why.into(),
            fix: None,
        }
    }

    /// True for ok and warn: later checks that need this one may run.
    pub fn passed(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Warn)
    }
}

impl fmt::Display for Check {
    /// `ok   name: found`, `fail name: found; fix: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}: {}", self.status, self.name, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// Where the checks print their lines as they finish (the CLI prints each at once, so a
/// slow check shows where it is).
pub trait Sink {
    fn add(&mut self, check: Check);
}

impl Sink for Vec<Check> {
    fn add(&mut self, check: Check) {
        self.push(check);
    }
}

/// Runs every check in order, handing each line to `out` as it is known. `env` is the
/// `MENDER_BRIDGE_…` environment the configuration is loaded with; `now` the time the
/// clock check judges.
pub async fn run(
    paths: &ConfigPaths,
    env: Vec<(String, String)>,
    now: SystemTime,
    out: &mut dyn Sink,
) {
    let loaded = config::check(paths, env, out);
    out.add(clock::check(now, clock::build_time()));
    let Some(cfg) = loaded else {
        let why = "the configuration did not load";
        for name in [
            "device key",
            "identity",
            "servers",
            "verify keys",
            "backend",
            "modules",
            "install in progress",
            "dbus",
        ] {
            out.add(Check::skip(name, why));
        }
        return;
    };
    let key = key::check(&cfg, out);
    let ident = identity::check(&cfg, out).await;
    let reachable = server::check(&cfg, out).await;
    auth::check(&cfg, key.as_ref(), ident.as_ref(), &reachable, out).await;
    artifact::check(&cfg, out);
    backend::check(&cfg, out).await;
    install::check(&cfg, out);
    dbus::check(&cfg, out).await;
}

/// True when any check failed (the command's exit status is then non-zero).
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
