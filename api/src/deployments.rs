//! Checking for an update: `.../deployments/device/deployments/next` (PROTOCOL.md §3.1).
//!
//! Three request forms: POST v2 with [`NextRequestV2`] (enterprise/hosted only; 404 on the
//! open-source server), POST v1 with the flat [`NextRequestV1`], and GET v1 with
//! [`NextQuery`]. Clients fall back on 404 only. Answers: **200** with
//! [`DeploymentInstructions`], **204** no update (the only "nothing to do" answer, also when
//! the server decided the device already has the artifact), **400** empty or over-long
//! `artifact_name`/`device_type`, **409** the device reported different data for the same
//! active deployment (the server fails that deployment).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_len, ValidationError};

/// POST v2 route (enterprise).
pub const NEXT_V2: &str = "/api/devices/v2/deployments/device/deployments/next";
/// POST and GET v1 route.
pub const NEXT_V1: &str = "/api/devices/v1/deployments/device/deployments/next";
/// Prefix of the per-deployment routes: `{DEPLOYMENTS}/{id}/status`, `{DEPLOYMENTS}/{id}/log`.
pub const DEPLOYMENTS: &str = "/api/devices/v1/deployments/device/deployments";

/// Longest `artifact_name`, `device_type` or provides value the server accepts.
pub const MAX_NEXT_VALUE_LEN: usize = 4096;

/// What the device has: its name and type plus every other stored provide (flat
/// string map). Serialises flat: `{"artifact_name":..,"device_type":..,"<key>":..}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProvides {
    #[serde(default)]
    pub artifact_name: String,
    #[serde(default)]
    pub device_type: String,
    #[serde(flatten)]
    pub provides: BTreeMap<String, String>,
}

impl DeviceProvides {
    /// `artifact_name` and `device_type` 1..=4096 characters; provides values 1..=4096.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_len("artifact_name", &self.artifact_name, MAX_NEXT_VALUE_LEN)?;
        check_len("device_type", &self.device_type, MAX_NEXT_VALUE_LEN)?;
        for v in self.provides.values() {
            check_len("artifact_provides", v, MAX_NEXT_VALUE_LEN)?;
        }
        Ok(())
    }
}

/// Body of POST v2 `next`: `{"device_provides": {...}, "update_control_map": true}`.
/// The Go 3.x client sends `update_control_map: true`; C++ and mender-mcu omit it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRequestV2 {
    pub device_provides: DeviceProvides,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_control_map: Option<bool>,
}

/// Body of POST v1 `next`: the flat map the Go 3.x client sends. The server uses only
/// `artifact_name` and `device_type` and ignores other keys.
pub type NextRequestV1 = DeviceProvides;

/// Query of GET v1 `next`: `?artifact_name=<url-encoded>&device_type=<url-encoded>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    pub artifact_name: String,
    #[serde(default)]
    pub device_type: String,
}

impl NextQuery {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_len("artifact_name", &self.artifact_name, MAX_NEXT_VALUE_LEN)?;
        check_len("device_type", &self.device_type, MAX_NEXT_VALUE_LEN)
    }
}

/// 200 answer of `next`. The Go 3.x client requires `id`, `artifact.artifact_name`,
/// `artifact.source.uri` and a non-empty `device_types_compatible`; the C++ client reads only
/// `id`, `source.uri` and `source.expire`. See [`DeploymentInstructions::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentInstructions {
    /// Deployment id (used in the status and log routes).
    pub id: String,
    pub artifact: DeploymentArtifact,
    /// Enterprise v2 only; passed through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_control_map: Option<serde_json::Value>,
}

/// `artifact` of [`DeploymentInstructions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentArtifact {
    /// Artifact id on the server.
    #[serde(default)]
    pub id: String,
    pub artifact_name: String,
    pub source: ArtifactSource,
    #[serde(default)]
    pub device_types_compatible: Vec<String>,
}

/// Where to download the artifact: a presigned URL, fetched with a plain GET and **no
/// Authorization header** (S3 refuses extra auth). Links expire (24 h on the real server;
/// 403 afterwards); polling `next` again with identical data yields a fresh link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactSource {
    pub uri: String,
    /// RFC 3339 time the link stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<String>,
    /// HTTP method filled by some storage back-ends (`GET`); clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl DeploymentInstructions {
    /// The fields the Go client insists on: `id`, `artifact_name`, `source.uri`, and at
    /// least one compatible device type.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.id.is_empty() {
            return Err(ValidationError::Empty { field: "id" });
        }
        if self.artifact.artifact_name.is_empty() {
            return Err(ValidationError::Empty {
                field: "artifact.artifact_name",
            });
        }
        if self.artifact.source.uri.is_empty() {
            return Err(ValidationError::Empty {
                field: "artifact.source.uri",
            });
        }
        if self.artifact.device_types_compatible.is_empty() {
            return Err(ValidationError::Empty {
                field: "artifact.device_types_compatible",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_body_is_flat_and_v2_nested() {
        let mut p = DeviceProvides {
            artifact_name: "release-1".into(),
            device_type: "test-dev".into(),
            provides: BTreeMap::new(),
        };
        p.provides
            .insert("rootfs-image.x.version".into(), "release-1".into());
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"artifact_name":"release-1","device_type":"test-dev","rootfs-image.x.version":"release-1"}"#
        );
        let v2 = NextRequestV2 {
            device_provides: p.clone(),
            update_control_map: Some(true),
        };
        let s = serde_json::to_string(&v2).unwrap();
        assert!(s.starts_with(r#"{"device_provides":{"artifact_name":"release-1""#));
        assert!(s.ends_with(r#""update_control_map":true}"#));
        let back: NextRequestV2 = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v2);
        assert!(p.validate().is_ok());
        p.artifact_name.clear();
        assert!(p.validate().is_err());
    }

    #[test]
    fn instructions_round_trip() {
        let s = r#"{"id":"d1","artifact":{"id":"a1","artifact_name":"rel-2","source":{"uri":"https://x/y","expire":"2026-01-01T00:00:00Z"},"device_types_compatible":["dev-a"]}}"#;
        let i: DeploymentInstructions = serde_json::from_str(s).unwrap();
        assert!(i.validate().is_ok());
        assert_eq!(serde_json::to_string(&i).unwrap(), s);
    }
}
