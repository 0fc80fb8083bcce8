//! The command line: subcommands named as the official client names them, so scripts and
//! habits carry over. Each subcommand lives in its own module.

mod bootstrap;
mod check_update;
mod commit;
pub mod compat;
mod daemon;
#[cfg(feature = "sim")]
mod demo;
mod doctor;
mod inspect;
mod install;
mod outcome;
mod progress;
mod resume;
mod rollback;
mod send_inventory;
mod show_artifact;
mod show_config;
mod show_provides;
#[cfg(feature = "sim")]
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mender-bridge",
    version,
    about = "Mender OTA client for RAUC, SWUpdate and raw A/B devices"
)]
pub struct Cli {
    /// Log level or tracing filter (e.g. `info`, `debug`, `mender_bridge=trace`).
    #[arg(short = 'l', long = "log-level", global = true)]
    pub log_level: Option<String>,
    /// Mender configuration file (JSON) [default: /etc/mender/mender.conf].
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fallback Mender configuration file [default: mender.conf in the data directory].
    #[arg(
        short = 'b',
        long = "fallback-config",
        global = true,
        value_name = "FILE"
    )]
    pub fallback_config: Option<PathBuf>,
    /// Data directory, over every configuration file [default: /var/lib/mender].
    #[arg(short = 'd', long = "data", global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The bridge's own settings (TOML) [default: /etc/mender/mender-bridge.toml].
    #[arg(long = "bridge-config", global = true, value_name = "FILE")]
    pub bridge_config: Option<PathBuf>,
    /// Log output: `auto` (the journal under systemd, else text), `text`, `json` (one
    /// object per line), `journald` (the journal with each field its own).
    #[arg(long = "log-format", global = true, value_enum, default_value_t)]
    pub log_format: crate::logging::LogFormat,
    /// Write the log to FILE (appended) instead of the standard error.
    #[arg(short = 'L', long = "log-file", global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the client: resume, authenticate, send inventory, poll for and install updates.
    Daemon(daemon::Args),
    /// Install an artifact (file, `-` or http(s) URL) without a server; then reboot and
    /// `commit`.
    Install(install::Args),
    /// Keep a standalone install (exit 2: none in progress).
    Commit(commit::Args),
    /// Revert a standalone install (exit 2: none in progress).
    Rollback(rollback::Args),
    /// Go on with a standalone install that stopped (`--stop-before`) or was interrupted
    /// (exit 2: none in progress).
    Resume(resume::Args),
    /// Make the device key if there is none (a new one with --forcebootstrap) and
    /// authenticate once (`mender-auth bootstrap`).
    Bootstrap(bootstrap::Args),
    /// Print the installed artifact's name.
    ShowArtifact(show_artifact::Args),
    /// Print the device's provides as key=value lines.
    ShowProvides(show_provides::Args),
    /// Ask the running daemon to check for an update now (SIGUSR1).
    CheckUpdate(check_update::Args),
    /// Ask the running daemon to send the inventory now (SIGUSR2).
    SendInventory(send_inventory::Args),
    /// Read and verify an artifact, printing what `mender-artifact read` prints.
    Inspect(inspect::Args),
    /// Run a whole deployment on this machine: local server, signed artifact, A/B file slots,
    /// a simulated reboot, and the dashboard's view of it.
    #[cfg(feature = "sim")]
    Demo(demo::Args),
    /// Print the effective configuration (secrets redacted) and where each value came from.
    ShowConfig(show_config::Args),
    /// Check the device's setup (configuration, key, identity, clock, servers, auth,
    /// verify keys, backend, modules, D-Bus): one line per check; exit 1 on any failure.
    Doctor(doctor::Args),
    /// Run a local Mender-compatible server (HTTPS, generated CA) for tests and demos.
    #[cfg(feature = "sim")]
    Sim(sim::Args),
    /// A device build (without the `sim` feature) has no `demo` and no `sim`; these say so.
    #[cfg(not(feature = "sim"))]
    #[command(hide = true)]
    Demo(NotBuilt),
    #[cfg(not(feature = "sim"))]
    #[command(hide = true)]
    Sim(NotBuilt),
}

/// The arguments of a command this build leaves out, whatever they are.
#[cfg(not(feature = "sim"))]
#[derive(Debug, clap::Args)]
pub struct NotBuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

impl Cli {
    /// The log filter: `-l`, else `info` for the daemon (its journal should say what it
    /// does), else `None` (warnings only). `RUST_LOG` wins over both in [`crate::logging::init`].
    pub fn log_filter(&self) -> Option<&str> {
        self.log_level.as_deref().or(match self.command {
            Command::Daemon(_) => Some("info"),
            _ => None,
        })
    }

    /// The configuration files and data dir named on the command line.
    pub fn config_paths(&self) -> crate::config::ConfigPaths {
        crate::config::ConfigPaths {
            mender_conf: self.config.clone(),
            fallback_mender_conf: self.fallback_config.clone(),
            bridge_config: self.bridge_config.clone(),
            data_dir: self.data.clone(),
        }
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let paths = cli.config_paths();
    let res = match cli.command {
        Command::Daemon(a) => daemon::run(a, &paths).await,
        Command::Install(a) => install::run(a, &paths).await,
        Command::Commit(a) => commit::run(a, &paths).await,
        Command::Rollback(a) => rollback::run(a, &paths).await,
        Command::Resume(a) => resume::run(a, &paths).await,
        Command::Bootstrap(a) => bootstrap::run(a, &paths).await,
        Command::ShowArtifact(a) => show_artifact::run(a, &paths),
        Command::ShowProvides(a) => show_provides::run(a, &paths),
        Command::CheckUpdate(a) => check_update::run(a, &paths),
        Command::SendInventory(a) => send_inventory::run(a, &paths),
        Command::Inspect(a) => inspect::run(a).await,
        #[cfg(feature = "sim")]
        Command::Demo(a) => demo::run(a).await,
        Command::ShowConfig(a) => show_config::run(a, &paths),
        Command::Doctor(a) => doctor::run(a, &paths).await,
        #[cfg(feature = "sim")]
        Command::Sim(a) => sim::run(a).await,
        #[cfg(not(feature = "sim"))]
        Command::Demo(_) | Command::Sim(_) => {
            eprintln!(
                "mender-bridge: this is a device build, without the simulator that `demo` and \
                 `sim` need; build with `cargo build --release --features sim`"
            );
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mender-bridge: {e}");
            ExitCode::from(1)
        }
    }
}

/// Loads each `--verify-key` file.
pub(crate) fn load_keys(
    paths: &[PathBuf],
) -> Result<Vec<mender_artifact::VerifyKey>, mender_artifact::KeyError> {
    paths
        .iter()
        .map(|p| mender_artifact::VerifyKey::from_file(p))
        .collect()
}
