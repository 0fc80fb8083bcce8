//! What a device must have for an artifact to install (`artifact_depends`), and what it has
//! afterwards (`artifact_provides` applied with `clears_artifact_provides`), with the rules of
//! the official clients (PROTOCOL.md §4.4).

use std::collections::BTreeMap;

use super::header::ArtifactHeader;

/// The device's stored provides: `artifact_name`, `artifact_group` and payload provides,
/// all as strings.
pub type Provides = BTreeMap<String, String>;

/// Why an artifact does not fit the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependsError {
    #[error("artifact is for device types [{}], this device is '{device_type}'", .compatible.join(", "))]
    DeviceType {
        device_type: String,
        compatible: Vec<String>,
    },
    #[error("artifact depends on {key} being one of [{}], the device has {}", .accepted.join(", "), .actual.as_deref().map_or("none".to_string(), |a| format!("'{a}'")))]
    Unmet {
        key: String,
        accepted: Vec<String>,
        actual: Option<String>,
    },
}

/// Checks the artifact's depends (header-info and type-info, merged) against the device's
/// type and stored provides. Every key must be provided with one of the listed values.
pub fn check_depends(
    header: &ArtifactHeader,
    device_type: &str,
    provides: &Provides,
) -> Result<(), DependsError> {
    let d = &header.depends;
    if !d.device_type.iter().any(|t| t == device_type) {
        return Err(DependsError::DeviceType {
            device_type: device_type.to_string(),
            compatible: d.device_type.clone(),
        });
    }
    let global = [
        ("artifact_name", &d.artifact_name),
        ("artifact_group", &d.artifact_group),
    ];
    let globals = global
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_slice()));
    let payload = header
        .payload
        .depends
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()));
    for (key, accepted) in globals.chain(payload) {
        let actual = provides.get(key);
        if !actual.is_some_and(|a| accepted.iter().any(|v| v == a)) {
            return Err(DependsError::Unmet {
                key: key.to_string(),
                accepted: accepted.to_vec(),
                actual: actual.cloned(),
            });
        }
    }
    Ok(())
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The device's provides after installing the artifact:
/// - neither provides nor clears in the artifact: all old payload provides are dropped;
/// - clears but no provides: old provides matching a clears glob are dropped;
/// - provides but no clears: the new provides replace all old ones (clears = `["*"]`);
/// - both: old provides matching a clears glob are dropped, then the new ones added.
///
/// `artifact_name` is always the artifact's; `artifact_group` the artifact's when it has one,
/// else the old one only if it survived the rules above (mender-update's CommitArtifactData).
pub fn apply_provides(stored: &Provides, header: &ArtifactHeader) -> Provides {
    let p = &header.payload;
    let mut out = match (&p.provides, &p.clears_provides) {
        (None, None) => Provides::new(),
        (new, Some(clears)) => {
            let mut kept: Provides = stored
                .iter()
                .filter(|(k, _)| !clears.iter().any(|c| glob_match(c, k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(new) = new {
                kept.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            kept
        }
        (Some(new), None) => new.clone(),
    };
    out.insert("artifact_name".into(), header.name.clone());
    if let Some(g) = &header.group {
        out.insert("artifact_group".into(), g.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::header::{ArtifactDepends, PayloadHeader};
    use super::*;

    fn header(
        provides: Option<&[(&str, &str)]>,
        clears: Option<&[&str]>,
        group: Option<&str>,
    ) -> ArtifactHeader {
        ArtifactHeader {
            name: "rel-2".into(),
            group: group.map(String::from),
            depends: ArtifactDepends {
                device_type: vec!["dev-a".into(), "dev-b".into()],
                artifact_name: vec![],
                artifact_group: vec![],
            },
            scripts: vec![],
            payload: PayloadHeader {
                payload_type: Some("rootfs-image".into()),
                provides: provides.map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                clears_provides: clears.map(|c| c.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
            augment: None,
        }
    }

    fn provides(p: &[(&str, &str)]) -> Provides {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn glob() {
        assert!(glob_match("rootfs-image.*", "rootfs-image.version"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "prefix and suffix must not overlap"
        );
        assert!(glob_match("artifact_group", "artifact_group"));
        assert!(!glob_match("artifact_group", "artifact_group2"));
        assert!(glob_match("*.version", "single-file.f1.version"));
    }

    #[test]
    fn depends_device_type_and_keys() {
        let mut h = header(None, None, None);
        let dev = provides(&[
            ("artifact_name", "rel-1"),
            ("rootfs-image.version", "rel-1"),
        ]);
        check_depends(&h, "dev-b", &dev).unwrap();
        assert!(matches!(
            check_depends(&h, "dev-c", &dev),
            Err(DependsError::DeviceType { .. })
        ));
        h.depends.artifact_name = vec!["rel-0".into(), "rel-1".into()];
        check_depends(&h, "dev-a", &dev).unwrap();
        h.depends.artifact_group = vec!["g".into()];
        let e = check_depends(&h, "dev-a", &dev).unwrap_err();
        assert_eq!(
            e.to_string(),
            "artifact depends on artifact_group being one of [g], the device has none"
        );
        h.depends.artifact_group.clear();
        h.payload
            .depends
            .insert("rootfs-image.version".into(), vec!["rel-0".into()]);
        let e = check_depends(&h, "dev-a", &dev).unwrap_err();
        assert!(e.to_string().contains("'rel-1'"), "{e}");
    }

    #[test]
    fn provides_rules_match_the_official_client() {
        let old = provides(&[
            ("artifact_name", "rel-1"),
            ("artifact_group", "g1"),
            ("rootfs-image.version", "rel-1"),
            ("rootfs-image.checksum", "aa"),
            ("single-file.f1.version", "1"),
        ]);
        // Default rootfs clears: group and rootfs-image.* go, other provides stay.
        let h = header(
            Some(&[("rootfs-image.version", "rel-2")]),
            Some(&["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]),
            None,
        );
        assert_eq!(
            apply_provides(&old, &h),
            provides(&[
                ("artifact_name", "rel-2"),
                ("rootfs-image.version", "rel-2"),
                ("single-file.f1.version", "1"),
            ])
        );
        // Provides without clears replace everything.
        let h = header(Some(&[("x", "1")]), None, Some("g2"));
        assert_eq!(
            apply_provides(&old, &h),
            provides(&[
                ("artifact_name", "rel-2"),
                ("artifact_group", "g2"),
                ("x", "1")
            ])
        );
        // Neither: everything old is dropped, the old group too.
        let h = header(None, None, None);
        assert_eq!(
            apply_provides(&old, &h),
            provides(&[("artifact_name", "rel-2")])
        );
        // Clears only.
        let h = header(None, Some(&["single-file.*"]), None);
        let got = apply_provides(&old, &h);
        assert!(!got.contains_key("single-file.f1.version"));
        assert_eq!(
            got.get("rootfs-image.checksum").map(String::as_str),
            Some("aa")
        );
    }
}
