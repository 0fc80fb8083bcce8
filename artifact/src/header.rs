//! The parsed header of an artifact (`header.tar*`, and `header-augment.tar*`): what the
//! artifact is, what it needs and provides, its state scripts. Only ever built from bytes
//! whose checksum already matched the (signature-checked) manifest.

use std::collections::BTreeMap;
use std::io::Cursor;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_tar::Archive;

use super::compression::{BoxRead, Compression};
use super::error::ArtifactError;
use super::io::{capped, map_io, read_bounded};
use super::member::{check_entry, entry_path, header_number};
use super::rules::{is_valid_meta_data_value, is_valid_script_name};
use super::tarend::finish_tar;
use super::Limits;

/// Everything the header says about the artifact, in the form of format v3 (v2 headers are
/// mapped onto it: name from `artifact_name`, compatible devices from
/// `device_types_compatible`, no provides, depends or clears).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArtifactHeader {
    /// `artifact_provides.artifact_name` (v3) or `artifact_name` (v2).
    pub name: String,
    /// `artifact_provides.artifact_group`, when present.
    pub group: Option<String>,
    pub depends: ArtifactDepends,
    /// State scripts in the order they appear, with their tar mode.
    pub scripts: Vec<StateScript>,
    /// Payload 0000 (the format allows one payload per artifact).
    pub payload: PayloadHeader,
    /// The augmented header, when the artifact has `header-augment.tar*`.
    pub augment: Option<AugmentHeader>,
}

/// `header-info` → `artifact_depends`: lists, any one value of which must match.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ArtifactDepends {
    /// Mandatory and never empty in v3.
    pub device_type: Vec<String>,
    pub artifact_name: Vec<String>,
    pub artifact_group: Vec<String>,
}

/// A state script shipped in the artifact (`scripts/<name>`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StateScript {
    pub name: String,
    pub mode: u32,
    #[serde(skip)]
    pub content: Bytes,
}

/// `headers/0000/*` of the header.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PayloadHeader {
    /// `None` for an empty (bootstrap) payload, `"type": null`.
    pub payload_type: Option<String>,
    /// `type-info` → `artifact_provides`; `None` when the key is absent.
    pub provides: Option<BTreeMap<String, String>>,
    /// `type-info` → `artifact_depends`; single strings become one-element lists.
    pub depends: BTreeMap<String, Vec<String>>,
    /// `type-info` → `clears_artifact_provides`; `None` when absent (which is not `[]`).
    pub clears_provides: Option<Vec<String>>,
    /// `meta-data`; `None` when absent or a blank file (an empty object stays `Some({})`).
    pub meta_data: Option<Map<String, Value>>,
    /// v2 only: `headers/0000/files`, the names the data tar must hold.
    pub v2_files: Option<Vec<String>>,
}

/// The augmented header (unsigned, covered by `manifest-augment`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AugmentHeader {
    /// Payload types from the augmented `header-info`, overriding the signed ones.
    pub payload_types: Vec<Option<String>>,
    pub payload: PayloadHeader,
}

#[derive(Deserialize)]
struct HeaderInfoV3 {
    payloads: Vec<PayloadType>,
    artifact_provides: Option<ProvidesV3>,
    artifact_depends: Option<DependsV3>,
}

#[derive(Deserialize)]
struct PayloadType {
    #[serde(rename = "type")]
    type_: Option<String>,
}

#[derive(Deserialize)]
struct ProvidesV3 {
    artifact_name: Option<String>,
    artifact_group: Option<String>,
}

#[derive(Deserialize)]
struct DependsV3 {
    #[serde(default)]
    device_type: Vec<String>,
    #[serde(default)]
    artifact_name: Vec<String>,
    #[serde(default)]
    artifact_group: Vec<String>,
}

#[derive(Deserialize)]
struct HeaderInfoV2 {
    artifact_name: String,
    updates: Vec<PayloadType>,
    device_types_compatible: Vec<String>,
}

#[derive(Deserialize)]
struct TypeInfo {
    #[serde(rename = "type")]
    type_: Option<String>,
    artifact_provides: Option<BTreeMap<String, Value>>,
    artifact_depends: Option<BTreeMap<String, Value>>,
    clears_artifact_provides: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct FilesV2 {
    files: Vec<String>,
}

fn json<T: serde::de::DeserializeOwned>(file: &str, data: &[u8]) -> Result<T, ArtifactError> {
    serde_json::from_slice(data)
        .map_err(|e| ArtifactError::header(file, format!("invalid JSON: {e}")))
}

/// A string, or a list of strings, as type-info depends allow.
fn string_list(file: &str, key: &str, v: Value) -> Result<Vec<String>, ArtifactError> {
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(ArtifactError::header(
                    file,
                    format!("'{key}' must be a string or a list of strings"),
                )),
            })
            .collect(),
        _ => Err(ArtifactError::header(
            file,
            format!("'{key}' must be a string or a list of strings"),
        )),
    }
}

/// meta-data: a JSON object whose values are strings, numbers, or lists of those.
fn parse_meta_data(file: &str, data: &[u8]) -> Result<Option<Map<String, Value>>, ArtifactError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let map: Map<String, Value> = json(file, data)?;
    for (k, v) in &map {
        if !is_valid_meta_data_value(v) {
            return Err(ArtifactError::header(
                file,
                format!("key '{k}': values must be strings, numbers or lists of them"),
            ));
        }
    }
    Ok(Some(map))
}

fn parse_type_info(
    file: &str,
    data: &[u8],
    payload: &mut PayloadHeader,
) -> Result<Option<String>, ArtifactError> {
    let ti: TypeInfo = json(file, data)?;
    if let Some(p) = ti.artifact_provides {
        let mut provides = BTreeMap::new();
        for (k, v) in p {
            match v {
                Value::String(s) => {
                    provides.insert(k, s);
                }
                _ => {
                    return Err(ArtifactError::header(
                        file,
                        format!("artifact_provides '{k}' must be a string"),
                    ))
                }
            }
        }
        payload.provides = Some(provides);
    }
    if let Some(d) = ti.artifact_depends {
        for (k, v) in d {
            let list = string_list(file, &k, v)?;
            payload.depends.insert(k, list);
        }
    }
    payload.clears_provides = ti.clears_artifact_provides;
    Ok(ti.type_)
}

/// Accumulates header files in whatever order the tar holds them (the format asks readers
/// to cache and assemble), refusing unknown names and duplicates.
#[derive(Default)]
struct Collected {
    header_info: Option<Bytes>,
    files: Option<Bytes>,
    type_info: Option<Bytes>,
    meta_data: Option<Bytes>,
    scripts: Vec<StateScript>,
}

/// Reads the header tar from its verified compressed bytes. `augment` selects the
/// header-augment rules (no scripts).
async fn collect(
    member: &str,
    compressed: Vec<u8>,
    compression: Compression,
    limits: &Limits,
    allow_scripts: bool,
) -> Result<Collected, ArtifactError> {
    let decoded: BoxRead = compression.decoder(Cursor::new(compressed), limits.decoder_memory);
    let decoded = capped(
        decoded,
        limits.header_total,
        format!("{member} (decompressed)"),
    );
    let mut archive = Archive::new(Box::pin(decoded) as BoxRead);
    let mut entries = archive.entries().map_err(|e| map_io(member, e))?;
    let mut out = Collected::default();
    let mut count = 0usize;
    while let Some(entry) = entries.next().await {
        let mut entry = entry.map_err(|e| map_io(member, e))?;
        count += 1;
        if count > limits.header_entries {
            return Err(ArtifactError::TooLarge {
                what: format!("{member} entry count"),
                limit: limits.header_entries as u64,
            });
        }
        let path = entry_path(member, entry.path_bytes())?;
        let size = entry.effective_size();
        if check_entry(member, &path, entry.header(), size, true)? {
            continue; // directory entry, e.g. "scripts/"
        }
        if count == 1 && path != "header-info" {
            return Err(ArtifactError::unexpected(
                format!("{member}/{path}"),
                "header-info must be the first file of the header",
            ));
        }
        let what = format!("{member}/{path}");
        let data = Bytes::from(read_bounded(&mut entry, limits.header_file, &what).await?);
        let slot = match path.as_str() {
            "header-info" => &mut out.header_info,
            "headers/0000/files" => &mut out.files,
            "headers/0000/type-info" => &mut out.type_info,
            "headers/0000/meta-data" => &mut out.meta_data,
            p if p.starts_with("scripts/") && allow_scripts => {
                let name = &p["scripts/".len()..];
                check_script_name(&what, name)?;
                if out.scripts.iter().any(|s| s.name == name) {
                    return Err(ArtifactError::unexpected(what, "appears twice"));
                }
                let mode = header_number(member, &path, "mode", entry.header().mode())? as u32;
                out.scripts.push(StateScript {
                    name: name.to_string(),
                    mode,
                    content: data,
                });
                continue;
            }
            p if p.starts_with("headers/") && !p.starts_with("headers/0000/") => {
                return Err(ArtifactError::unexpected(
                    what,
                    "only payload 0000 is supported (one payload per artifact)",
                ))
            }
            _ => {
                return Err(ArtifactError::unexpected(
                    what,
                    "not a file of the artifact header",
                ))
            }
        };
        if slot.is_some() {
            return Err(ArtifactError::unexpected(what, "appears twice"));
        }
        *slot = Some(data);
    }
    drop(entries);
    finish_tar(archive, member).await?;
    Ok(out)
}

fn check_script_name(what: &str, name: &str) -> Result<(), ArtifactError> {
    if is_valid_script_name(name) {
        Ok(())
    } else {
        Err(ArtifactError::header(
            what,
            "state script name must be <State>_<Enter|Leave|Error>_<NN>[_<description>]",
        ))
    }
}

/// Parses a v3 (or v2, by `format_version`) header from its verified compressed bytes.
pub async fn parse_header(
    member: &str,
    compressed: Vec<u8>,
    compression: Compression,
    format_version: u32,
    limits: &Limits,
) -> Result<ArtifactHeader, ArtifactError> {
    let c = collect(member, compressed, compression, limits, true).await?;
    let hi_name = format!("{member}/header-info");
    let hi = c
        .header_info
        .clone()
        .ok_or_else(|| ArtifactError::header(&hi_name, "missing"))?;
    let (name, group, depends, types) = if format_version == 2 {
        let h: HeaderInfoV2 = json(&hi_name, &hi)?;
        let depends = ArtifactDepends {
            device_type: h.device_types_compatible,
            ..Default::default()
        };
        (h.artifact_name, None, depends, h.updates)
    } else {
        let h: HeaderInfoV3 = json(&hi_name, &hi)?;
        let provides = h
            .artifact_provides
            .ok_or_else(|| ArtifactError::header(&hi_name, "artifact_provides is missing"))?;
        let d = h
            .artifact_depends
            .ok_or_else(|| ArtifactError::header(&hi_name, "artifact_depends is missing"))?;
        let name = provides.artifact_name.unwrap_or_default();
        let depends = ArtifactDepends {
            device_type: d.device_type,
            artifact_name: d.artifact_name,
            artifact_group: d.artifact_group,
        };
        let group = provides.artifact_group.filter(|g| !g.is_empty());
        (name, group, depends, h.payloads)
    };
    if name.is_empty() {
        return Err(ArtifactError::header(
            &hi_name,
            "artifact name is missing or empty",
        ));
    }
    if depends.device_type.is_empty() {
        return Err(ArtifactError::header(&hi_name, "no compatible device type"));
    }
    if types.len() != 1 {
        return Err(ArtifactError::header(
            &hi_name,
            format!("{} payloads; exactly one (0000) is supported", types.len()),
        ));
    }
    let declared = types.into_iter().next().and_then(|t| t.type_);
    let payload = parse_payload(member, &c, declared, format_version)?;
    Ok(ArtifactHeader {
        name,
        group,
        depends,
        scripts: c.scripts,
        payload,
        augment: None,
    })
}

fn parse_payload(
    member: &str,
    c: &Collected,
    declared: Option<String>,
    format_version: u32,
) -> Result<PayloadHeader, ArtifactError> {
    let mut payload = PayloadHeader::default();
    let ti_name = format!("{member}/headers/0000/type-info");
    let ti = c
        .type_info
        .as_ref()
        .ok_or_else(|| ArtifactError::header(&ti_name, "missing"))?;
    let ti_type = parse_type_info(&ti_name, ti, &mut payload)?;
    // mender-artifact before 4.4 writes "type":"" for rootfs-image payloads.
    payload.payload_type = match (declared, ti_type) {
        (Some(d), Some(t)) if t.is_empty() && d == "rootfs-image" => Some(d),
        (d, t) if d == t => d,
        (d, t) => {
            return Err(ArtifactError::header(
                &ti_name,
                format!(
                    "type {} differs from header-info payload type {}",
                    t.map_or("null".into(), |t| format!("'{t}'")),
                    d.map_or("null".into(), |d| format!("'{d}'"))
                ),
            ))
        }
    };
    if let Some(md) = &c.meta_data {
        payload.meta_data = parse_meta_data(&format!("{member}/headers/0000/meta-data"), md)?;
    }
    let files_name = format!("{member}/headers/0000/files");
    match (&c.files, format_version) {
        (Some(f), 2) => payload.v2_files = Some(json::<FilesV2>(&files_name, f)?.files),
        (None, 2) => return Err(ArtifactError::header(files_name, "missing (format v2)")),
        (Some(_), _) => {
            return Err(ArtifactError::unexpected(
                files_name,
                "only format v2 headers have a files list",
            ))
        }
        (None, _) => {}
    }
    Ok(payload)
}

/// Parses `header-augment.tar*`: a header-info with only `payloads`, and type-info/meta-data.
pub async fn parse_augment(
    member: &str,
    compressed: Vec<u8>,
    compression: Compression,
    limits: &Limits,
) -> Result<AugmentHeader, ArtifactError> {
    let c = collect(member, compressed, compression, limits, false).await?;
    let hi_name = format!("{member}/header-info");
    let mut out = AugmentHeader::default();
    if let Some(hi) = &c.header_info {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct AugmentInfo {
            payloads: Vec<PayloadType>,
        }
        let h: AugmentInfo = json(&hi_name, hi)?;
        out.payload_types = h.payloads.into_iter().map(|p| p.type_).collect();
    }
    let declared = out.payload_types.first().cloned().flatten();
    if c.type_info.is_some() {
        out.payload = parse_payload(member, &c, declared, 3)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names() {
        for good in [
            "ArtifactInstall_Enter_01",
            "ArtifactInstall_Enter_01_hello",
            "ArtifactRollbackReboot_Leave_99_x-y",
        ] {
            check_script_name("s", good).unwrap();
        }
        for bad in [
            "ArtifactInstall_Enter",
            "ArtifactInstall_Enter_1",
            "Foo_Enter_01",
            "ArtifactInstall_Start_01",
            "ArtifactInstall_Enter_01_",
            "ArtifactInstall_Enter_01_a/b",
        ] {
            assert!(check_script_name("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn meta_data_rules() {
        assert!(parse_meta_data("m", b"").unwrap().is_none());
        assert!(parse_meta_data("m", br#"{"a":1,"b":"x","c":["y",2]}"#)
            .unwrap()
            .is_some());
        for bad in [&br#"{"a":{"b":1}}"#[..], br#"{"a":true}"#, br#"[1]"#, b"{"] {
            assert!(parse_meta_data("m", bad).is_err());
        }
    }
}
