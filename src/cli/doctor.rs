//! `doctor`: checks the device's setup, one line per check (`ok`, `warn`, `fail` or
//! `skip`, the check's name, what was found, and for warn/fail the fix), printed as each
//! finishes. Exit status 1 when any check failed, else 0. The checks are in
//! [`crate::doctor`].

use std::io::Write as _;
use std::process::ExitCode;

use crate::config::ConfigPaths;
use crate::doctor::{self, Check, Sink, Status};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Prints each line at once and keeps the statuses.
struct Printer {
    checks: Vec<Check>,
}

impl Sink for Printer {
    fn add(&mut self, check: Check) {
        tracing::debug!(status = %check.status, name = %check.name, "doctor check");
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{check}");
        let _ = stdout.flush();
        self.checks.push(check);
    }
}

pub async fn run(_args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut p = Printer { checks: Vec::new() };
    doctor::run(
        paths,
        crate::config::process_env(),
        std::time::SystemTime::now(),
        &mut p,
    )
    .await;
    let count = |s: Status| p.checks.iter().filter(|c| c.status == s).count();
    println!(
        "doctor: {} ok, {} warn, {} fail, {} skipped",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    );
    Ok(if doctor::any_failed(&p.checks) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
