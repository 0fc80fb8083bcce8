//! The daemon's full inventory: device type, provides, the inventory scripts' attributes
//! and the backend's own attributes, in one report.

use crate::client::ClientError;
use crate::deploy::engine::Engine;
use crate::identity::{full_inventory, InventoryScripts};
use mender_api::inventory::{Attribute, AttributeValue};
use mender_bridge_backends::Installers;

/// The backend's inventory pairs as API attributes (values that are not strings, numbers
/// or lists of them are dropped).
fn backend_attributes(pairs: Vec<(String, serde_json::Value)>) -> Vec<Attribute> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| {
            match serde_json::from_value::<AttributeValue>(value) {
                Ok(v) => Some(Attribute::new(name, v)),
                Err(_) => {
                    tracing::debug!(attribute = %name, "backend attribute of an unsupported type dropped");
                    None
                }
            }
        })
        .collect()
}

/// The full inventory: device type, provides, inventory scripts, backend attributes.
pub async fn send_inventory(
    engine: &Engine<Installers>,
    scripts: &InventoryScripts,
) -> Result<(), ClientError> {
    use mender_bridge_backends::Backend as _;
    let scripts = scripts.collect().await;
    let extra = backend_attributes(engine.backend().inventory().await);
    let device_type = engine.device_provides().device_type;
    let attrs = full_inventory(&device_type, &engine.provides(), &scripts.attributes, extra);
    engine.client().send_inventory(&attrs).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_attributes_keep_strings_numbers_and_lists() {
        let got = backend_attributes(vec![
            ("rootfs_active_slot".into(), "a".into()),
            ("n".into(), 3.into()),
            ("l".into(), serde_json::json!(["x", "y"])),
            ("bad".into(), serde_json::json!({"o": 1})),
            ("null".into(), serde_json::Value::Null),
        ]);
        let names: Vec<&str> = got.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rootfs_active_slot", "n", "l"]);
    }
}
