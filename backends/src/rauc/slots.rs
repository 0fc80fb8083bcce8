//! `GetSlotStatus` as plain data: which slot is booted, each slot's boot status and bundle
//! version. RAUC 1.8's keys (BACKENDS.md §1.3): `bootname`, `state`
//! (`booted`/`active`/`inactive`), `boot-status` (`good`/`bad`), `bundle.version`,
//! `activated.timestamp`, ...; newer versions add keys, which are ignored.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

/// One slot from `GetSlotStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStatus {
    /// `rootfs.1`.
    pub name: String,
    pub class: Option<String>,
    /// The bootloader's name for it (`B`).
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: Option<String>,
    /// `good` or `bad` (from the bootloader).
    pub boot_status: Option<String>,
    pub bundle_version: Option<String>,
    pub activated_timestamp: Option<String>,
}

fn string(v: &OwnedValue) -> Option<String> {
    match &**v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Parses `GetSlotStatus`'s answer; keys with unexpected types are ignored.
pub fn parse(raw: Vec<(String, HashMap<String, OwnedValue>)>) -> Vec<SlotStatus> {
    raw.into_iter()
        .map(|(name, d)| {
            let get = |k: &str| d.get(k).and_then(string);
            SlotStatus {
                class: get("class"),
                bootname: get("bootname"),
                state: get("state"),
                boot_status: get("boot-status"),
                bundle_version: get("bundle.version"),
                activated_timestamp: get("activated.timestamp"),
                name,
            }
        })
        .collect()
}

/// The booted slot: the one in state `booted`, else the one whose bootname is
/// `boot_slot` (the `BootSlot` property).
pub fn booted<'a>(slots: &'a [SlotStatus], boot_slot: &str) -> Option<&'a SlotStatus> {
    slots
        .iter()
        .find(|s| s.state.as_deref() == Some("booted"))
        .or_else(|| {
            slots
                .iter()
                .find(|s| !boot_slot.is_empty() && s.bootname.as_deref() == Some(boot_slot))
        })
}

/// One line per slot for the deployment log:
/// `rootfs.1 (B): state=inactive boot-status=bad version=2.0 activated=...`.
pub fn describe(slots: &[SlotStatus]) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    slots
        .iter()
        .map(|s| {
            format!(
                "slot {} ({}): state={} boot-status={} version={} activated={}",
                s.name,
                o(&s.bootname),
                o(&s.state),
                o(&s.boot_status),
                o(&s.bundle_version),
                o(&s.activated_timestamp)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> OwnedValue {
        OwnedValue::try_from(Value::from(s)).unwrap()
    }

    #[test]
    fn parses_and_finds_the_booted_slot() {
        let raw = vec![
            (
                "rootfs.0".to_string(),
                HashMap::from([
                    ("bootname".to_string(), v("A")),
                    ("state".to_string(), v("booted")),
                    ("boot-status".to_string(), v("good")),
                    ("size".to_string(), OwnedValue::from(5u64)),
                ]),
            ),
            (
                "rootfs.1".to_string(),
                HashMap::from([
                    ("bootname".to_string(), v("B")),
                    ("state".to_string(), v("inactive")),
                    ("boot-status".to_string(), v("bad")),
                    ("bundle.version".to_string(), v("2.0")),
                ]),
            ),
        ];
        let slots = parse(raw);
        assert_eq!(
            booted(&slots, "B").map(|s| s.name.as_str()),
            Some("rootfs.0")
        );
        assert_eq!(slots[1].bundle_version.as_deref(), Some("2.0"));
        let d = describe(&slots);
        assert!(
            d[1].contains("rootfs.1 (B): state=inactive boot-status=bad version=2.0"),
            "{d:?}"
        );
        let mut no_state = slots.clone();
        no_state[0].state = None;
        assert_eq!(
            booted(&no_state, "B").map(|s| s.name.as_str()),
            Some("rootfs.1")
        );
        assert!(booted(&no_state, "").is_none());
    }
}
