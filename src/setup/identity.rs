//! Identity and inventory from the configuration: the identity script (or the first MAC
//! address), the inventory scripts' directory, and their timeout (`script_timeout_seconds`).

use std::path::Path;

use crate::config::Config;
use crate::identity::{
    load_identity, DeviceIdentity, IdentityError, InventoryScripts, ScriptLimits, SYS_CLASS_NET,
};

/// The scripts' limits: the defaults with the configured timeout.
pub fn script_limits(config: &Config) -> ScriptLimits {
    ScriptLimits {
        timeout: config.script_timeout,
        ..ScriptLimits::default()
    }
}

/// The device identity: the configured script, else the first MAC of `/sys/class/net`.
pub async fn identity(config: &Config) -> Result<DeviceIdentity, IdentityError> {
    load_identity(
        &config.identity_script,
        Path::new(SYS_CLASS_NET),
        &script_limits(config),
    )
    .await
}

/// The inventory scripts: the configured directory and limits.
pub fn inventory_scripts(config: &Config) -> InventoryScripts {
    InventoryScripts {
        dir: config.inventory_script_dir.clone(),
        limits: script_limits(config),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ConfigPaths;
    use crate::identity::tests::script;

    #[tokio::test]
    async fn config_drives_identity_and_inventory() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = t.path();
        let id_script = script(d, "identity", "echo serial=42");
        let inv_dir = d.join("inventory");
        std::fs::create_dir(&inv_dir).unwrap_or_else(|e| panic!("{e}"));
        script(&inv_dir, "mender-inventory-os", "echo os=Debian");
        std::fs::write(
            d.join("bridge.toml"),
            format!(
                "identity_script = {:?}\ninventory_script_dir = {:?}\nscript_timeout_seconds = 5\n",
                id_script.display().to_string(),
                inv_dir.display().to_string()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("mender.conf"), "{}").unwrap_or_else(|e| panic!("{e}"));
        let paths = ConfigPaths {
            mender_conf: Some(d.join("mender.conf")),
            fallback_mender_conf: None,
            bridge_config: Some(d.join("bridge.toml")),
            data_dir: Some(d.join("data")),
        };
        let config = Config::load_from(&paths, vec![])
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        assert_eq!(script_limits(&config).timeout, Duration::from_secs(5));
        let id = identity(&config).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.id_data(), r#"{"serial":"42"}"#);
        let inv = inventory_scripts(&config).collect().await;
        assert_eq!(inv.attributes.get("os"), Some(&["Debian".to_string()][..]));
    }
}
