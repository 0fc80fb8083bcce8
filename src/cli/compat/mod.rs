//! The official Mender 4/5 command lines, for the scripts that call them: the binary run
//! under the name `mender-update` (a link or a copy) takes `mender-update`'s commands,
//! options and exit codes, and under `mender-auth` takes `mender-auth bootstrap`. Each is
//! turned into the bridge's own [`Cli`]; nothing runs differently.
//!
//! `mender-update` (client 5.1 `src/mender-update/cli/cli.cpp`): global `-c/--config`,
//! `-b/--fallback-config`, `-d/--data` (`--datastore`), `-L/--log-file`, `-l/--log-level`,
//! `-E/--trusted-certs`, `--skipverify`, `-v/--version`; commands `check-update`, `commit`,
//! `daemon`, `install ARTIFACT [--reboot-exit-code]`, `rollback`, `send-inventory`,
//! `show-artifact`, `show-provides`, `resume`, and `--stop-before STATE` on `install`,
//! `commit`, `rollback` and `resume`; exit 2 when commit/rollback/resume find no update in
//! progress, 4 after an install that needs a reboot with `--reboot-exit-code`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Parser, Subcommand};

use super::outcome::StopArgs;
use super::{bootstrap, check_update, commit, daemon, install, resume, rollback, send_inventory};
use super::{show_artifact, show_provides, Cli, Command};

/// Which command line the binary was started as, from `argv[0]`'s file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Bridge,
    MenderUpdate,
    MenderAuth,
}

impl Personality {
    pub fn of(argv0: Option<&OsString>) -> Self {
        let name = argv0
            .map(Path::new)
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match name {
            "mender-update" => Personality::MenderUpdate,
            "mender-auth" => Personality::MenderAuth,
            _ => Personality::Bridge,
        }
    }
}

/// The options every official command line takes.
#[derive(Debug, clap::Args)]
struct Global {
    /// Configuration file [default: /etc/mender/mender.conf].
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Fallback configuration file [default: /var/lib/mender/mender.conf].
    #[arg(
        short = 'b',
        long = "fallback-config",
        global = true,
        value_name = "FILE"
    )]
    fallback_config: Option<PathBuf>,
    /// Mender state data directory [default: /var/lib/mender].
    #[arg(
        short = 'd',
        long = "data",
        visible_alias = "datastore",
        global = true,
        value_name = "DIR"
    )]
    data: Option<PathBuf>,
    /// Log to FILE instead of the standard error.
    #[arg(short = 'L', long = "log-file", global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Log level: trace, debug, info, warning, error, fatal [default: info].
    #[arg(short = 'l', long = "log-level", global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Trusted server certificates (over ServerCertificate in mender.conf).
    #[arg(
        short = 'E',
        long = "trusted-certs",
        global = true,
        value_name = "FILE"
    )]
    trusted_certs: Option<PathBuf>,
    /// Skip the verification of the server's certificate.
    #[arg(long = "skipverify", global = true)]
    skipverify: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
    /// The bridge's own settings [default: /etc/mender/mender-bridge.toml] (not an option
    /// of the official command line; accepted so that one device can be driven both ways).
    #[arg(
        long = "bridge-config",
        global = true,
        hide = true,
        value_name = "FILE"
    )]
    bridge_config: Option<PathBuf>,
}

#[derive(Debug, Parser)]
#[command(
    name = "mender-update",
    version,
    disable_version_flag = true,
    about = "manage and start Mender Update (mender-bridge)"
)]
struct MenderUpdate {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: UpdateCommand,
}

#[derive(Debug, Subcommand)]
enum UpdateCommand {
    /// Force update check
    CheckUpdate,
    /// Commit current Artifact. Returns (2) if no update in progress
    Commit(StopArgs),
    /// Start the client as a background service
    Daemon,
    /// Mender Artifact to install - local file or a URL
    Install {
        artifact: String,
        /// Return exit code 4 if a manual reboot is required after the Artifact installation.
        #[arg(long)]
        reboot_exit_code: bool,
        #[command(flatten)]
        stop: StopArgs,
    },
    /// Resume an interrupted installation
    Resume(resume::Args),
    /// Rollback current Artifact. Returns (2) if no update in progress
    Rollback(StopArgs),
    /// Force inventory update
    SendInventory,
    /// Print the current artifact name to the command line and exit
    ShowArtifact,
    /// Print the current provides to the command line and exit
    ShowProvides,
}

#[derive(Debug, Parser)]
#[command(
    name = "mender-auth",
    version,
    disable_version_flag = true,
    about = "manage and start Mender Auth (mender-bridge)"
)]
struct MenderAuth {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: AuthCommand,
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Perform bootstrap and exit
    Bootstrap {
        /// Force bootstrap (a new device key)
        #[arg(short = 'F', long = "forcebootstrap")]
        force: bool,
    },
    /// Start the client as a background service
    Daemon {
        #[arg(short = 'F', long = "forcebootstrap")]
        force: bool,
    },
}

/// What the official command line asked for: the bridge's command line, or why not.
#[derive(Debug)]
pub struct Translated {
    pub cli: Cli,
    /// `-E` / `--skipverify`: configuration overrides (environment layer) to set before the
    /// configuration is loaded.
    pub overrides: Vec<(&'static str, String)>,
}

/// Mender's level names as tracing filters (`warning` → `warn`, `fatal`/`panic` → `error`).
fn level(l: Option<String>) -> Option<String> {
    l.map(|l| match l.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_string(),
        "fatal" | "panic" => "error".to_string(),
        other => other.to_string(),
    })
}

fn cli(global: Global, command: Command) -> Translated {
    let mut overrides = Vec::new();
    if let Some(certs) = &global.trusted_certs {
        overrides.push((
            "MENDER_BRIDGE_SERVER_CERTIFICATE",
            certs.display().to_string(),
        ));
    }
    if global.skipverify {
        overrides.push(("MENDER_BRIDGE_SKIP_VERIFY", "true".to_string()));
    }
    Translated {
        cli: Cli {
            log_level: level(global.log_level),
            config: global.config,
            fallback_config: global.fallback_config,
            data: global.data,
            bridge_config: global.bridge_config,
            log_format: crate::logging::LogFormat::Auto,
            log_file: global.log_file,
            command,
        },
        overrides,
    }
}

/// `mender-update ARGS` as the bridge's command line. Help, version and usage errors exit
/// here, as clap does.
pub fn mender_update(args: impl IntoIterator<Item = OsString>) -> Result<Translated, String> {
    let parsed = MenderUpdate::parse_from(args);
    let command = match parsed.command {
        UpdateCommand::CheckUpdate => Command::CheckUpdate(check_update::Args {}),
        UpdateCommand::Commit(stop) => Command::Commit(commit::Args { stop }),
        UpdateCommand::Daemon => Command::Daemon(daemon::Args {}),
        UpdateCommand::Install {
            artifact,
            reboot_exit_code,
            stop,
        } => Command::Install(install::Args {
            artifact,
            reboot_exit_code,
            stop,
        }),
        UpdateCommand::Resume(args) => Command::Resume(args),
        UpdateCommand::Rollback(stop) => Command::Rollback(rollback::Args { stop }),
        UpdateCommand::SendInventory => Command::SendInventory(send_inventory::Args {}),
        UpdateCommand::ShowArtifact => Command::ShowArtifact(show_artifact::Args {}),
        UpdateCommand::ShowProvides => Command::ShowProvides(show_provides::Args {}),
    };
    Ok(cli(parsed.global, command))
}

/// `mender-auth ARGS` as the bridge's command line.
pub fn mender_auth(args: impl IntoIterator<Item = OsString>) -> Result<Translated, String> {
    let parsed = MenderAuth::parse_from(args);
    let command = match parsed.command {
        AuthCommand::Bootstrap { force } => Command::Bootstrap(bootstrap::Args { force }),
        AuthCommand::Daemon { .. } => {
            return Err(
                "`mender-auth daemon`: mender-bridge has no separate authentication daemon; \
                 `mender-bridge daemon` (or `mender-update daemon`) authenticates and offers \
                 the D-Bus token API itself"
                    .to_string(),
            )
        }
    };
    Ok(cli(parsed.global, command))
}

#[cfg(test)]
mod tests;
