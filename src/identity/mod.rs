//! Device identity, inventory scripts and the `device_type` file (PROTOCOL.md §4.4, §4.6).
//!
//! - Identity: the identity script's `key=value` output (default
//!   `/usr/share/mender/identity/mender-device-identity`), or, when there is no script,
//!   `mac=<address>` of the first network interface ([`first_mac_address`]). Serialised
//!   to the auth request's `id_data` by [`DeviceIdentity::id_data`].
//! - Inventory: every `mender-inventory-*` script's output, merged ([`collect_inventory`]).
//! - Device type: `device_type=<value>` ([`read_device_type`]).
//!
//! Scripts are run with a timeout and bounded output ([`ScriptLimits`]), in their own
//! process group, killed whole when they overrun.

mod attributes;
mod device_type;
mod inventory;
mod mac;
mod script;

use std::path::{Path, PathBuf};

pub use attributes::{parse_key_values, Attributes, ParseError};
pub use device_type::{
    parse_device_type, read_device_type, DeviceTypeError, DeviceTypeFormatError,
};
pub use inventory::{
    client_version, collect_inventory, full_inventory, inventory_scripts, Inventory,
    InventoryScripts, ScriptOutcome, ScriptReport, INVENTORY_PREFIX,
};
pub use mac::{first_mac_address, SYS_CLASS_NET};
pub use script::{run_script, ScriptError, ScriptLimits, ScriptOutput};

/// The device identity could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity script: {0}")]
    Script(#[from] ScriptError),
    #[error("identity script {} failed ({status}){}", path.display(), stderr_suffix(stderr))]
    Failed {
        path: PathBuf,
        status: String,
        /// The start of its stderr (see [`ScriptLimits::max_stderr`]).
        stderr: String,
    },
    #[error("identity script {} printed bad output: {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },
    #[error("identity script {} printed no attributes", path.display())]
    Empty { path: PathBuf },
    #[error("no network interface with a MAC address under {}", dir.display())]
    NoMacAddress { dir: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Sysfs {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// The device's identity attributes: at least one, each with one or more values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    attributes: Attributes,
}

impl DeviceIdentity {
    /// `None` when `attributes` is empty (the server refuses an empty identity).
    pub fn new(attributes: Attributes) -> Option<Self> {
        (!attributes.is_empty()).then_some(DeviceIdentity { attributes })
    }

    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The auth request's `id_data` (PROTOCOL.md §1.1): a compact JSON object, keys sorted,
    /// one value as a string, repeated keys as arrays of strings, e.g.
    /// `{"mac":"02:00:00:00:00:01","serial":["SN1","SN2"]}`. (Go's encoder would also
    /// escape `<`, `>`, `&` as `\u003c`...; the server parses and re-sorts `id_data`, so
    /// both forms name the same identity.)
    pub fn id_data(&self) -> String {
        serde_json::Value::Object(self.attributes.to_json_map()).to_string()
    }

    /// The attributes as a JSON object (what `id_data` holds).
    pub fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.attributes.to_json_map()
    }
}

/// Runs the identity script at `path`: `key=value` lines (see [`parse_key_values`]),
/// non-zero exit an error carrying the start of its stderr, no attributes an error.
pub async fn identity_from_script(
    path: &Path,
    limits: &ScriptLimits,
) -> Result<DeviceIdentity, IdentityError> {
    let output = run_script(path, limits).await?;
    if !output.status.success() {
        return Err(IdentityError::Failed {
            path: path.to_path_buf(),
            status: output.status.to_string(),
            stderr: output.stderr,
        });
    }
    let attributes =
        parse_key_values(&String::from_utf8_lossy(&output.stdout)).map_err(|source| {
            IdentityError::Parse {
                path: path.to_path_buf(),
                source,
            }
        })?;
    DeviceIdentity::new(attributes).ok_or_else(|| IdentityError::Empty {
        path: path.to_path_buf(),
    })
}

/// The identity from `script` if that file exists, else `mac=<address>` from
/// `sys_class_net` (normally [`SYS_CLASS_NET`]).
pub async fn load_identity(
    script: &Path,
    sys_class_net: &Path,
    limits: &ScriptLimits,
) -> Result<DeviceIdentity, IdentityError> {
    match std::fs::metadata(script) {
        Ok(_) => identity_from_script(script, limits).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(
                "no identity script at {}; using the MAC address",
                script.display()
            );
            let mut attributes = Attributes::new();
            attributes.push("mac", first_mac_address(sys_class_net)?);
            DeviceIdentity::new(attributes).ok_or_else(|| IdentityError::NoMacAddress {
                dir: sys_class_net.to_path_buf(),
            })
        }
        Err(source) => Err(IdentityError::Script(ScriptError::Spawn {
            path: script.to_path_buf(),
            source,
        })),
    }
}

#[cfg(test)]
pub(crate) mod tests;
