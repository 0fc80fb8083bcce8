//! Inventory scripts: every executable `mender-inventory-*` in a directory (default
//! `/usr/share/mender/inventory`), run in name order, each bounded by [`ScriptLimits`].
//!
//! As the official client does: outputs are merged (a key from several lines or scripts
//! becomes an array); a script whose output does not parse is skipped with a warning; a
//! non-zero exit is only logged and its output still used. A script that times out,
//! prints too much or cannot start is skipped with a warning. Nothing here fails the
//! caller: a broken script costs its own attributes only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::attributes::{parse_key_values, Attributes};
use super::script::{run_script, ScriptLimits};

/// The prefix of inventory script names.
pub const INVENTORY_PREFIX: &str = "mender-inventory-";

/// The merged attributes and what happened to each script.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub attributes: Attributes,
    pub scripts: Vec<ScriptReport>,
}

/// One script's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptReport {
    pub path: PathBuf,
    pub outcome: ScriptOutcome,
}

/// What became of one script's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// Its attributes were used. `exit` is `None` for success, else the exit status and
    /// the start of stderr (logged as a warning).
    Used {
        attributes: usize,
        exit: Option<String>,
    },
    /// Skipped; the reason (also logged as a warning).
    Skipped(String),
}

/// Runs every inventory script in `dir` (a missing directory means no scripts).
pub async fn collect_inventory(dir: &Path, limits: &ScriptLimits) -> Inventory {
    let mut inventory = Inventory::default();
    for path in inventory_scripts(dir) {
        let outcome = run_one(&path, limits, &mut inventory.attributes).await;
        inventory.scripts.push(ScriptReport { path, outcome });
    }
    inventory
}

/// The executable regular files named `mender-inventory-*` in `dir`, sorted by name.
pub fn inventory_scripts(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(dir = %dir.display(), "no inventory script directory");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!("cannot list inventory scripts in {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut scripts: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(INVENTORY_PREFIX))
        })
        .map(|e| e.path())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    scripts.sort();
    scripts
}

async fn run_one(path: &Path, limits: &ScriptLimits, into: &mut Attributes) -> ScriptOutcome {
    let output = match run_script(path, limits).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("inventory script skipped: {e}");
            return ScriptOutcome::Skipped(e.to_string());
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let attrs = match parse_key_values(&text) {
        Ok(a) => a,
        Err(e) => {
            let reason = format!("{}: unparsable output: {e}", path.display());
            tracing::warn!("inventory script skipped: {reason}");
            return ScriptOutcome::Skipped(reason);
        }
    };
    let exit = (!output.status.success()).then(|| {
        let exit = if output.stderr.is_empty() {
            output.status.to_string()
        } else {
            format!("{}: {}", output.status, output.stderr)
        };
        tracing::warn!("inventory script {} {exit}", path.display());
        exit
    });
    let count = attrs.len();
    into.merge(attrs);
    ScriptOutcome::Used {
        attributes: count,
        exit,
    }
}
