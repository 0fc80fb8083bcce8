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
/// Where the inventory scripts are and how they are bounded: what a daemon keeps to
/// collect the inventory again each round.
#[derive(Debug, Clone)]
pub struct InventoryScripts {
    pub dir: std::path::PathBuf,
    pub limits: ScriptLimits,
}

impl InventoryScripts {
    /// [`collect_inventory`] from these scripts.
    pub async fn collect(&self) -> Inventory {
        collect_inventory(&self.dir, &self.limits).await
    }
}

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

/// The client version the bridge reports as `mender_client_version`.
pub fn client_version() -> String {
    format!("mender-bridge {}", env!("CARGO_PKG_VERSION"))
}

/// The full attribute set the bridge reports (a PUT replaces everything on the server):
/// `device_type`, `artifact_name`, `mender_client_version`, every stored provide (as the
/// stock `mender-inventory-provides` script reports them), the inventory scripts' output,
/// then `extra` (backend attributes). Where names collide the earlier source wins, so a
/// script cannot misreport the device type or the installed artifact. At most
/// [`MAX_ATTRIBUTES`](mender_api::inventory::MAX_ATTRIBUTES) are sent (the server refuses
/// more); the rest are dropped with a warning.
pub fn full_inventory(
    device_type: &str,
    provides: &std::collections::BTreeMap<String, String>,
    scripts: &Attributes,
    extra: Vec<mender_api::inventory::Attribute>,
) -> Vec<mender_api::inventory::Attribute> {
    use mender_api::inventory::{Attribute, MAX_ATTRIBUTES};
    let mut out: Vec<Attribute> = vec![
        Attribute::new("device_type", device_type),
        Attribute::new(
            "artifact_name",
            provides
                .get("artifact_name")
                .map_or("unknown", String::as_str),
        ),
        Attribute::new("mender_client_version", client_version()),
    ];
    let rest = provides
        .iter()
        .filter(|(k, _)| k.as_str() != "artifact_name")
        .map(|(k, v)| Attribute::new(k.as_str(), v.as_str()))
        .chain(scripts.to_inventory())
        .chain(extra);
    for a in rest {
        if !out.iter().any(|o| o.name == a.name) {
            out.push(a);
        }
    }
    if out.len() > MAX_ATTRIBUTES {
        let dropped: Vec<String> = out.drain(MAX_ATTRIBUTES..).map(|a| a.name).collect();
        tracing::warn!(count = dropped.len(), first = %dropped[0], "inventory has more attributes than the server accepts; dropping the rest");
    }
    out
}

#[cfg(test)]
mod full_inventory_tests {
    use super::*;
    use mender_api::inventory::{AttributeValue, MAX_ATTRIBUTES};

    #[test]
    fn fixed_attributes_first_and_not_overridable() {
        let provides = std::collections::BTreeMap::from([
            ("artifact_name".to_string(), "rel-1".to_string()),
            ("rootfs-image.version".to_string(), "rel-1".to_string()),
        ]);
        let mut scripts = Attributes::new();
        scripts.push("device_type", "forged");
        scripts.push("ipv4_eth0", "10.0.0.2/24");
        scripts.push("ipv4_eth0", "10.0.0.3/24");
        let inv = full_inventory("dev-a", &provides, &scripts, vec![]);
        let get = |n: &str| inv.iter().find(|a| a.name == n).map(|a| a.value.clone());
        assert_eq!(
            get("device_type"),
            Some(AttributeValue::String("dev-a".into()))
        );
        assert_eq!(
            get("artifact_name"),
            Some(AttributeValue::String("rel-1".into()))
        );
        assert_eq!(
            get("rootfs-image.version"),
            Some(AttributeValue::String("rel-1".into()))
        );
        assert!(matches!(get("ipv4_eth0"), Some(AttributeValue::Strings(v)) if v.len() == 2));
        assert!(
            matches!(get("mender_client_version"), Some(AttributeValue::String(v)) if v.starts_with("mender-bridge "))
        );
        assert_eq!(inv.iter().filter(|a| a.name == "device_type").count(), 1);
    }

    #[test]
    fn capped_at_the_server_limit() {
        let mut scripts = Attributes::new();
        for i in 0..150 {
            scripts.push(format!("k{i:03}"), "v");
        }
        let inv = full_inventory("d", &Default::default(), &scripts, vec![]);
        assert_eq!(inv.len(), MAX_ATTRIBUTES);
        assert_eq!(inv[0].name, "device_type");
    }
}
