//! The header member: the header the artifact will carry (as the reader will report it),
//! and the uncompressed header tar with its JSON files, as mender-artifact 3.9.0 writes them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::error::invalid;
use super::tar::{append_file, END_OF_ARCHIVE};
use super::{ArtifactSpec, PayloadKind, WriteError, WrittenFile};
use crate::header::{ArtifactDepends, ArtifactHeader, PayloadHeader, StateScript};

/// The header the artifact will carry, in the reader's terms: defaults applied the way
/// mender-artifact 3.9.0 applies them.
pub(super) fn expected_header(spec: &ArtifactSpec, files: &[WrittenFile]) -> ArtifactHeader {
    let mut provides = BTreeMap::new();
    let mut clears: Vec<String> = spec.clears_provides.clone();
    let payload_type = match &spec.payload {
        PayloadKind::RootfsImage => Some("rootfs-image".to_string()),
        PayloadKind::Module { type_name } => Some(type_name.clone()),
        PayloadKind::Bootstrap => None,
    };
    if spec.payload != PayloadKind::Bootstrap {
        let fs = spec
            .software
            .filesystem
            .as_deref()
            .unwrap_or("rootfs-image");
        let sw_name = match &spec.payload {
            PayloadKind::Module { type_name } => {
                Some(spec.software.name.as_deref().unwrap_or(type_name))
            }
            _ => spec.software.name.as_deref(),
        };
        let prefix = match sw_name {
            Some(n) => format!("{fs}.{n}"),
            None => fs.to_string(),
        };
        if spec.default_software_version {
            let version = spec
                .software
                .version
                .clone()
                .unwrap_or_else(|| spec.name.clone());
            provides.insert(format!("{prefix}.version"), version);
        }
        if spec.payload == PayloadKind::RootfsImage && spec.checksum_provide {
            if let Some(f) = files.first() {
                provides.insert("rootfs-image.checksum".to_string(), hex::encode(f.sha256));
            }
        }
        if spec.default_clears_provides {
            let defaults: Vec<String> = if prefix == "rootfs-image" {
                ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]
                    .map(String::from)
                    .to_vec()
            } else {
                vec![format!("{prefix}.*")]
            };
            for d in defaults {
                if !clears.contains(&d) {
                    clears.push(d);
                }
            }
        }
    }
    provides.extend(spec.provides.iter().map(|(k, v)| (k.clone(), v.clone())));
    let meta_data = spec.meta_data.clone();
    ArtifactHeader {
        name: spec.name.clone(),
        group: spec.group.clone(),
        depends: ArtifactDepends {
            device_type: spec.device_types.clone(),
            artifact_name: spec.depends_artifact_names.clone(),
            artifact_group: spec.depends_groups.clone(),
        },
        scripts: spec
            .scripts
            .iter()
            .map(|s| StateScript {
                name: s.name.clone(),
                mode: s.mode & 0o7777,
                content: s.content.clone(),
            })
            .collect(),
        payload: PayloadHeader {
            payload_type,
            provides: (!provides.is_empty()).then_some(provides),
            depends: spec.depends.clone(),
            clears_provides: (!clears.is_empty()).then_some(clears),
            meta_data,
            v2_files: None,
        },
        augment: None,
    }
}

#[derive(Serialize)]
struct HeaderInfoJson<'a> {
    payloads: [PayloadTypeJson<'a>; 1],
    artifact_provides: ProvidesJson<'a>,
    artifact_depends: DependsJson<'a>,
}

#[derive(Serialize)]
struct PayloadTypeJson<'a> {
    #[serde(rename = "type")]
    type_: Option<&'a str>,
}

#[derive(Serialize)]
struct ProvidesJson<'a> {
    artifact_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_group: Option<&'a str>,
}

#[derive(Serialize)]
struct DependsJson<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    artifact_name: &'a [String],
    device_type: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    artifact_group: &'a [String],
}

/// `type-info`; the field order is Go's struct order.
#[derive(Serialize)]
struct TypeInfoJson<'a> {
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    artifact_depends: BTreeMap<&'a str, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_provides: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clears_artifact_provides: Option<&'a Vec<String>>,
}

fn to_json<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec(v).map_err(|e| invalid(format!("{what}: {e}")))
}

/// The uncompressed header tar: `header-info`, `scripts/*`, `headers/0000/type-info`,
/// `headers/0000/meta-data` (0 bytes for a rootfs image without meta-data, absent for
/// other payloads without it, as mender-artifact 3.9.0 writes them).
pub(super) fn header_tar(spec: &ArtifactSpec, h: &ArtifactHeader) -> Result<Vec<u8>, WriteError> {
    let info = HeaderInfoJson {
        payloads: [PayloadTypeJson {
            type_: h.payload.payload_type.as_deref(),
        }],
        artifact_provides: ProvidesJson {
            artifact_name: &h.name,
            artifact_group: h.group.as_deref(),
        },
        artifact_depends: DependsJson {
            artifact_name: &h.depends.artifact_name,
            device_type: &h.depends.device_type,
            artifact_group: &h.depends.artifact_group,
        },
    };
    let type_info = TypeInfoJson {
        // mender-artifact 3.9.0 writes "" here for rootfs images, a bug that readers from
        // 4.4 on refuse; the type is written out.
        type_: h.payload.payload_type.as_deref(),
        artifact_depends: h
            .payload
            .depends
            .iter()
            .map(|(k, v)| {
                let v = match v.as_slice() {
                    [one] => Value::String(one.clone()),
                    many => Value::Array(many.iter().cloned().map(Value::String).collect()),
                };
                (k.as_str(), v)
            })
            .collect(),
        artifact_provides: h.payload.provides.as_ref(),
        clears_artifact_provides: h.payload.clears_provides.as_ref(),
    };
    let mut tar = Vec::new();
    let mut add = |name: &str, data: &[u8], mode: u32, mtime: u64| {
        append_file(&mut tar, name, data, mode, mtime);
    };
    add("header-info", &to_json("header-info", &info)?, 0o600, 0);
    for s in &spec.scripts {
        add(
            &format!("scripts/{}", s.name),
            &s.content,
            s.mode & 0o7777,
            s.mtime,
        );
    }
    add(
        "headers/0000/type-info",
        &to_json("type-info", &type_info)?,
        0o600,
        0,
    );
    match (&spec.meta_data, &spec.payload) {
        (Some(md), _) => add(
            "headers/0000/meta-data",
            &to_json("meta-data", md)?,
            0o600,
            0,
        ),
        (None, PayloadKind::RootfsImage) => add("headers/0000/meta-data", b"", 0o600, 0),
        (None, _) => {}
    }
    tar.extend_from_slice(&END_OF_ARCHIVE);
    Ok(tar)
}
