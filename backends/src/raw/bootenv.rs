//! Switching the bootloader to a slot, and reading back what it will boot, the way Mender's
//! own integrations do: the U-Boot environment (`mender_boot_part`, `mender_boot_part_hex`,
//! `upgrade_available`, `bootcount` through `fw_setenv`/`fw_printenv`), the GRUB environment
//! (`grub-editenv`), or configured commands.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::BackendError;

/// A bootloader command may not take longer than this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment output read at most (a U-Boot environment is a few KiB).
const MAX_OUTPUT: usize = 1024 * 1024;

/// Where the boot selection lives.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BootEnv {
    /// U-Boot environment through libubootenv's `fw_printenv`/`fw_setenv`.
    Uboot {
        /// `fw_env.config` to pass with `-c` (default: the tools' own `/etc/fw_env.config`).
        #[serde(default)]
        config: Option<PathBuf>,
        #[serde(default = "default_printenv")]
        printenv: PathBuf,
        #[serde(default = "default_setenv")]
        setenv: PathBuf,
    },
    /// GRUB environment block through `grub-editenv`.
    Grub {
        #[serde(default = "default_grub_env")]
        env_file: PathBuf,
        #[serde(default = "default_editenv")]
        editenv: PathBuf,
    },
    /// Site-specific commands (argv lists; `{part}` is replaced by the partition number).
    /// `state` must print `mender_boot_part=<n>` and `upgrade_available=<0|1>` lines, as
    /// `fw_printenv` does.
    Command {
        activate: Vec<String>,
        commit: Vec<String>,
        revert: Vec<String>,
        state: Vec<String>,
    },
}

/// Runs a configured argv with `{part}` substituted.
async fn run_argv(argv: &[String], part: Option<u32>) -> Result<String, BackendError> {
    let argv: Vec<String> = argv
        .iter()
        .map(|a| match part {
            Some(p) => a.replace("{part}", &p.to_string()),
            None => a.clone(),
        })
        .collect();
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| BackendError::not_started("an empty bootloader command is configured"))?;
    run(&PathBuf::from(program), args, None).await
}

fn default_printenv() -> PathBuf {
    "fw_printenv".into()
}
fn default_setenv() -> PathBuf {
    "fw_setenv".into()
}
fn default_grub_env() -> PathBuf {
    "/boot/grub/grubenv".into()
}
fn default_editenv() -> PathBuf {
    "grub-editenv".into()
}

/// What the bootloader environment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    /// `mender_boot_part`: the partition the bootloader boots next.
    pub boot_part: Option<u32>,
    /// `upgrade_available=1`: a new slot is on trial; the bootloader falls back if it fails.
    pub upgrade_available: bool,
}

async fn run(
    program: &PathBuf,
    args: &[String],
    stdin: Option<&str>,
) -> Result<String, BackendError> {
    let what = format!("{} {}", program.display(), args.join(" "));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| BackendError::io(format!("running {what}"), e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| BackendError::io(format!("writing to {what}"), e))?;
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            BackendError::failed(format!("{what} did not finish within {COMMAND_TIMEOUT:?}"))
        })?
        .map_err(|e| BackendError::io(format!("running {what}"), e))?;
    let stderr =
        String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(MAX_OUTPUT)]).into_owned();
    if !out.status.success() {
        return Err(BackendError::failed_with_log(
            format!("{what} failed ({}): {}", out.status, stderr.trim()),
            vec![stderr],
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(MAX_OUTPUT)]).into_owned())
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl BootEnv {
    /// Sets variables in one write (`fw_setenv -s -` reads `name=value` lines, so a
    /// redundant U-Boot environment is switched atomically).
    async fn set(&self, vars: &[(&str, String)]) -> Result<(), BackendError> {
        match self {
            BootEnv::Uboot { config, setenv, .. } => {
                let mut args = Vec::new();
                if let Some(c) = config {
                    args.push("-c".to_string());
                    args.push(c.display().to_string());
                }
                args.push("-s".into());
                args.push("-".into());
                let script: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                run(setenv, &args, Some(&script)).await.map(|_| ())
            }
            BootEnv::Grub { env_file, editenv } => {
                let mut args = vec![env_file.display().to_string(), "set".to_string()];
                args.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
                run(editenv, &args, None).await.map(|_| ())
            }
            BootEnv::Command { .. } => Err(BackendError::not_started(
                "command boot integration has no variables to set",
            )),
        }
    }

    async fn get_all(&self) -> Result<BTreeMap<String, String>, BackendError> {
        match self {
            BootEnv::Uboot {
                config, printenv, ..
            } => {
                let mut args = Vec::new();
                if let Some(c) = config {
                    args.push("-c".to_string());
                    args.push(c.display().to_string());
                }
                Ok(parse_env(&run(printenv, &args, None).await?))
            }
            BootEnv::Grub { env_file, editenv } => {
                let args = vec![env_file.display().to_string(), "list".to_string()];
                Ok(parse_env(&run(editenv, &args, None).await?))
            }
            BootEnv::Command { state, .. } => Ok(parse_env(&run_argv(state, None).await?)),
        }
    }

    /// What the bootloader will do next.
    pub async fn state(&self) -> Result<BootState, BackendError> {
        let env = self.get_all().await?;
        Ok(BootState {
            boot_part: env.get("mender_boot_part").and_then(|v| v.parse().ok()),
            upgrade_available: env.get("upgrade_available").map(String::as_str) == Some("1"),
        })
    }

    /// Boot `part` next, on trial: the bootloader falls back to the other slot if the new
    /// one does not come up (and `bootcount` exceeds its limit).
    pub async fn activate(&self, part: u32) -> Result<(), BackendError> {
        if let BootEnv::Command { activate, .. } = self {
            return run_argv(activate, Some(part)).await.map(|_| ());
        }
        self.set(&[
            ("mender_boot_part", part.to_string()),
            ("mender_boot_part_hex", format!("{part:x}")),
            ("upgrade_available", "1".into()),
            ("bootcount", "0".into()),
        ])
        .await
    }

    /// The running slot is good: stop the trial.
    pub async fn commit(&self) -> Result<(), BackendError> {
        if let BootEnv::Command { commit, .. } = self {
            return run_argv(commit, None).await.map(|_| ());
        }
        self.set(&[("upgrade_available", "0".into())]).await
    }

    /// Boot `part` (the old slot) again, with no trial.
    pub async fn revert(&self, part: u32) -> Result<(), BackendError> {
        if let BootEnv::Command { revert, .. } = self {
            return run_argv(revert, Some(part)).await.map(|_| ());
        }
        self.set(&[
            ("mender_boot_part", part.to_string()),
            ("mender_boot_part_hex", format!("{part:x}")),
            ("upgrade_available", "0".into()),
            ("bootcount", "0".into()),
        ])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines() {
        let env = parse_env("bootcmd=run a=b\nmender_boot_part=3\n\nupgrade_available=1\n");
        assert_eq!(env.get("bootcmd").map(String::as_str), Some("run a=b"));
        assert_eq!(env.get("mender_boot_part").map(String::as_str), Some("3"));
    }
}
