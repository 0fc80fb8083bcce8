//! What the artifact says: `ArtifactSpec` (the `header-info`, `type-info`, `meta-data` and
//! state scripts) and its parts, built the way mender-artifact's `write` options shape them.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value};

/// What the artifact's one payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadKind {
    /// `rootfs-image`: exactly one file, the filesystem image.
    RootfsImage,
    /// An update module's payload (`module-image -T <type_name>`): zero or more files.
    Module { type_name: String },
    /// `bootstrap-artifact`: payload type `null`, no files, no meta-data, no default provides.
    Bootstrap,
}

/// The default "software version" provide and its clears, as mender-artifact's
/// `--software-filesystem`, `--software-name` and `--software-version` shape them:
/// the key is `<filesystem>.<name>.version` (`<filesystem>.version` for a rootfs image
/// without a name); the value is `version` or the artifact name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftwareVersion {
    /// Defaults to `rootfs-image`.
    pub filesystem: Option<String>,
    /// Defaults to none for rootfs images and to the type name for module images.
    pub name: Option<String>,
    /// Defaults to the artifact name.
    pub version: Option<String>,
}

/// A state script to ship in the header (`scripts/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// `<State>_<Enter|Leave|Error>_<NN>[_<description>]`.
    pub name: String,
    pub content: Bytes,
    /// Permission bits written in the tar (the client makes scripts executable anyway).
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
}

impl ScriptFile {
    /// A script with mode 0755 and mtime 0.
    pub fn new(name: impl Into<String>, content: impl Into<Bytes>) -> Self {
        ScriptFile {
            name: name.into(),
            content: content.into(),
            mode: 0o755,
            mtime: 0,
        }
    }
}

/// What the artifact says: the `header-info`, `type-info`, `meta-data` and scripts.
/// Build one with [`ArtifactSpec::rootfs`], [`ArtifactSpec::module`] or
/// [`ArtifactSpec::bootstrap`], then adjust the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactSpec {
    /// `artifact_provides.artifact_name`; not empty.
    pub name: String,
    /// `artifact_depends.device_type`; at least one, none empty.
    pub device_types: Vec<String>,
    /// `artifact_provides.artifact_group` (`--provides-group`); not empty when set.
    pub group: Option<String>,
    /// `artifact_depends.artifact_name` (`--artifact-name-depends`).
    pub depends_artifact_names: Vec<String>,
    /// `artifact_depends.artifact_group` (`--depends-groups`).
    pub depends_groups: Vec<String>,
    pub payload: PayloadKind,
    /// Extra `type-info` provides (`--provides`); they win over the default ones.
    pub provides: BTreeMap<String, String>,
    /// `type-info` depends (`--depends`); a one-value list is written as a plain string,
    /// as mender-artifact writes it.
    pub depends: BTreeMap<String, Vec<String>>,
    /// Extra `clears_artifact_provides` (`--clears-provides`), written before the defaults.
    pub clears_provides: Vec<String>,
    /// The default software-version provide (not for bootstrap artifacts).
    pub software: SoftwareVersion,
    /// `false` = `--no-default-software-version`.
    pub default_software_version: bool,
    /// `false` = `--no-default-clears-provides`.
    pub default_clears_provides: bool,
    /// Rootfs images: `rootfs-image.checksum` = the image's SHA-256; `false` =
    /// `--no-checksum-provide`.
    pub checksum_provide: bool,
    /// `headers/0000/meta-data` (`--meta-data`): values must be strings, numbers or lists
    /// of them. Written as a 0-byte file when `None` for rootfs images, absent otherwise.
    pub meta_data: Option<Map<String, Value>>,
    /// State scripts, in the order given.
    pub scripts: Vec<ScriptFile>,
}

impl ArtifactSpec {
    fn new<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
        payload: PayloadKind,
    ) -> Self {
        ArtifactSpec {
            name: name.into(),
            device_types: device_types.into_iter().map(Into::into).collect(),
            group: None,
            depends_artifact_names: Vec::new(),
            depends_groups: Vec::new(),
            payload,
            provides: BTreeMap::new(),
            depends: BTreeMap::new(),
            clears_provides: Vec::new(),
            software: SoftwareVersion::default(),
            default_software_version: true,
            default_clears_provides: true,
            checksum_provide: true,
            meta_data: None,
            scripts: Vec::new(),
        }
    }

    /// `mender-artifact write rootfs-image -n <name> -t <device type>...`.
    pub fn rootfs<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(name, device_types, PayloadKind::RootfsImage)
    }

    /// `mender-artifact write module-image -T <type_name> -n <name> -t <device type>...`.
    pub fn module<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
        type_name: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            device_types,
            PayloadKind::Module {
                type_name: type_name.into(),
            },
        )
    }

    /// `mender-artifact write bootstrap-artifact -n <name> -t <device type>...`.
    pub fn bootstrap<S: Into<String>>(
        name: impl Into<String>,
        device_types: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::new(name, device_types, PayloadKind::Bootstrap)
    }
}
