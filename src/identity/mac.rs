//! The identity without a script: a MAC address from `/sys/class/net`.
//!
//! The stock `mender-device-identity` script prints the address of the Ethernet-type
//! (`type` 1) interface with the lowest `ifindex`, skipping `dummy*`; this does the same,
//! skipping all-zero addresses too, and falls back to any other non-loopback interface
//! with a non-zero address (lowest `ifindex` first). The address is printed as sysfs has
//! it, lowercased.

use std::path::{Path, PathBuf};

use super::IdentityError;

/// `ARPHRD_ETHER`.
const TYPE_ETHER: u32 = 1;
/// `ARPHRD_LOOPBACK`.
const TYPE_LOOPBACK: u32 = 772;

/// The directory the kernel lists interfaces in.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// The MAC address the identity falls back to, read under `sys_class_net` (normally
/// [`SYS_CLASS_NET`]; tests pass a fake tree).
pub fn first_mac_address(sys_class_net: &Path) -> Result<String, IdentityError> {
    let sysfs_err = |path: PathBuf| {
        move |source| IdentityError::Sysfs {
            path: path.clone(),
            source,
        }
    };
    let entries =
        std::fs::read_dir(sys_class_net).map_err(sysfs_err(sys_class_net.to_path_buf()))?;
    // (preference, ifindex, name, address): preference 0 = Ethernet-type, not dummy.
    let mut best: Option<(u8, u32, String, String)> = None;
    for entry in entries {
        let entry = entry.map_err(sysfs_err(sys_class_net.to_path_buf()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let Some(kind) = read("type").and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        if kind == TYPE_LOOPBACK || name == "lo" {
            continue;
        }
        let Some(ifindex) = read("ifindex").and_then(|i| i.parse::<u32>().ok()) else {
            continue;
        };
        let Some(address) = read("address").map(|a| a.to_ascii_lowercase()) else {
            continue;
        };
        if !is_usable_address(&address) {
            continue;
        }
        let preference = u8::from(kind != TYPE_ETHER || name.starts_with("dummy"));
        let candidate = (preference, ifindex, name, address);
        if best
            .as_ref()
            .is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1))
        {
            best = Some(candidate);
        }
    }
    best.map(|(_, _, name, address)| {
        tracing::debug!(interface = %name, "identity from the MAC address");
        address
    })
    .ok_or_else(|| IdentityError::NoMacAddress {
        dir: sys_class_net.to_path_buf(),
    })
}

/// Colon-separated two-digit hex octets (at least six), not all zero.
fn is_usable_address(address: &str) -> bool {
    let octets: Vec<&str> = address.split(':').collect();
    octets.len() >= 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        && octets.iter().any(|o| *o != "00")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(root: &Path, name: &str, kind: u32, ifindex: u32, address: Option<&str>) {
        let dir = root.join(name);
        let write = |f: &str, v: String| {
            std::fs::write(dir.join(f), v).unwrap_or_else(|e| panic!("{e}"));
        };
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        write("type", format!("{kind}\n"));
        write("ifindex", format!("{ifindex}\n"));
        if let Some(a) = address {
            write("address", format!("{a}\n"));
        }
    }

    #[test]
    fn lowest_ifindex_ethernet_with_a_real_address() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = t.path();
        iface(root, "lo", 772, 1, Some("00:00:00:00:00:00"));
        iface(root, "dummy0", 1, 2, Some("02:aa:aa:aa:aa:aa"));
        iface(root, "eth1", 1, 5, Some("02:00:00:00:00:05"));
        iface(root, "eth0", 1, 3, Some("00:00:00:00:00:00"));
        iface(root, "wlan0", 1, 4, Some("02:00:00:00:00:0A"));
        iface(root, "tun0", 65534, 6, None);
        assert_eq!(
            first_mac_address(root).ok().as_deref(),
            Some("02:00:00:00:00:0a")
        );
    }

    #[test]
    fn falls_back_to_other_types_then_fails() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = t.path();
        iface(root, "lo", 772, 1, Some("00:00:00:00:00:00"));
        assert!(matches!(
            first_mac_address(root),
            Err(IdentityError::NoMacAddress { .. })
        ));
        iface(
            root,
            "ib0",
            32,
            7,
            Some("80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:bc:de"),
        );
        assert_eq!(
            first_mac_address(root).ok().as_deref(),
            Some("80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:bc:de")
        );
        assert!(matches!(
            first_mac_address(&root.join("missing")),
            Err(IdentityError::Sysfs { .. })
        ));
    }
}
