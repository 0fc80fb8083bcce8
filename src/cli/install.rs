//! `mender-bridge install FILE|URL [--reboot-exit-code] [--stop-before STATE]`: a
//! standalone install without a server (see [`crate::deploy::standalone`]). Exit 0 when
//! installed (reboot, then `commit`) or stopped, 4 with `--reboot-exit-code` when a reboot
//! is needed, 1 on failure (see [`super::outcome`]).

use std::process::ExitCode;

use super::outcome::{report, Op, StopArgs};
use super::progress::ProgressPrinter;
use crate::config::{Config, ConfigPaths};
use crate::deploy::standalone::{self, Stops};
use crate::setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact: a file, `-` for standard input, or an http(s) URL.
    pub artifact: String,
    /// Exit with 4 (instead of 0) when the device must reboot into the update.
    #[arg(long)]
    pub reboot_exit_code: bool,
    #[command(flatten)]
    pub stop: StopArgs,
}

pub async fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let stops = Stops::parse(&args.stop.stop_before)?;
    let config = Config::load(paths)?;
    let mut installer = setup::standalone(&config)?;
    let source = standalone::open_source(&setup::client_config(&config), &args.artifact).await?;
    let mut printer = ProgressPrinter::stderr();
    let result = installer
        .install(source, &stops, &mut |done, total| {
            printer.update(done, total)
        })
        .await;
    printer.finish();
    let command = format!("installing {}", args.artifact);
    Ok(report(Op::Install, &command, result, args.reboot_exit_code))
}
