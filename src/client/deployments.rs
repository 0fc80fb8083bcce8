//! The update check (PROTOCOL.md §3.1): POST v2 `next` with the device's provides; on 404
//! (the open-source server has no v2 route) GET v1 with `artifact_name` and `device_type`
//! as URL-encoded query parameters, as the C++ client does. 204 is the only "no update";
//! 200 carries [`DeploymentInstructions`]; anything else is an error (409: the device
//! reported different data for the same active deployment).

use bytes::Bytes;
use http::{Method, StatusCode};

use super::auth::status_error;
use super::error::{Call, ClientError};
use super::http::{form_encode, Answer};
use super::Client;
use mender_api::deployments::{
    DeploymentInstructions, DeviceProvides, NextQuery, NextRequestV2, NEXT_V1, NEXT_V2,
};

/// The GET v1 path with its query: `?artifact_name=..&device_type=..` (form-encoded).
pub(crate) fn v1_path(q: &NextQuery) -> String {
    format!(
        "{NEXT_V1}?artifact_name={}&device_type={}",
        form_encode(&q.artifact_name),
        form_encode(&q.device_type)
    )
}

/// The POST v2 body: `{"device_provides": {...}}` (no `update_control_map`, as the C++
/// client). `artifact_name`/`device_type` keys inside `provides` are dropped: the typed
/// fields are the ones sent.
pub(crate) fn v2_body(p: &DeviceProvides) -> Result<Vec<u8>, ClientError> {
    let mut provides = p.clone();
    provides.provides.remove("artifact_name");
    provides.provides.remove("device_type");
    serde_json::to_vec(&NextRequestV2 {
        device_provides: provides,
        update_control_map: None,
    })
    .map_err(|e| ClientError::InvalidRequest {
        call: Call::CheckUpdate,
        detail: e.to_string(),
    })
}

/// Interprets a `next` answer: 204 → none, 200 → instructions (checked), else an error.
fn instructions(path: &str, a: &Answer) -> Result<Option<DeploymentInstructions>, ClientError> {
    match a.status {
        StatusCode::NO_CONTENT => Ok(None),
        StatusCode::OK => {
            let invalid = |detail: String| ClientError::InvalidResponse {
                call: Call::CheckUpdate,
                path: path.to_string(),
                detail,
            };
            let i: DeploymentInstructions =
                serde_json::from_slice(&a.body).map_err(|e| invalid(e.to_string()))?;
            i.validate().map_err(|e| invalid(e.to_string()))?;
            Ok(Some(i))
        }
        _ => Err(status_error(Call::CheckUpdate, path, a)),
    }
}

impl Client {
    /// Asks the server for a deployment. `Ok(None)`: nothing to do (204).
    pub async fn check_update(
        &self,
        provides: &DeviceProvides,
    ) -> Result<Option<DeploymentInstructions>, ClientError> {
        provides
            .validate()
            .map_err(|e| ClientError::InvalidRequest {
                call: Call::CheckUpdate,
                detail: e.to_string(),
            })?;
        let body = Bytes::from(v2_body(provides)?);
        let a = self
            .authorized(Call::CheckUpdate, Method::POST, NEXT_V2, Some(body))
            .await?;
        if a.status != StatusCode::NOT_FOUND {
            return instructions(NEXT_V2, &a);
        }
        tracing::debug!("update check: no v2 route (404); falling back to GET v1");
        let q = NextQuery {
            artifact_name: provides.artifact_name.clone(),
            device_type: provides.device_type.clone(),
        };
        let a = self
            .authorized(Call::CheckUpdate, Method::GET, &v1_path(&q), None)
            .await?;
        instructions(NEXT_V1, &a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_query_is_encoded() {
        let q = NextQuery {
            artifact_name: "rel 1&x=y".into(),
            device_type: "qemux86-64".into(),
        };
        assert_eq!(
            v1_path(&q),
            format!("{NEXT_V1}?artifact_name=rel+1%26x%3Dy&device_type=qemux86-64")
        );
    }

    #[test]
    fn v2_body_is_flat_provides() {
        let mut p = DeviceProvides {
            artifact_name: "release-1".into(),
            device_type: "dev".into(),
            provides: Default::default(),
        };
        p.provides
            .insert("rootfs-image.version".into(), "release-1".into());
        p.provides.insert("device_type".into(), "other".into());
        assert_eq!(
            String::from_utf8(v2_body(&p).unwrap()).unwrap(),
            r#"{"device_provides":{"artifact_name":"release-1","device_type":"dev","rootfs-image.version":"release-1"}}"#
        );
    }

    #[test]
    fn answers() {
        let a = |status: u16, body: &str| Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: Bytes::from(body.to_string()),
        };
        assert!(instructions("/p", &a(204, "")).unwrap().is_none());
        let ok = r#"{"id":"d1","artifact":{"artifact_name":"r2","source":{"uri":"https://s/x?sig=1"},"device_types_compatible":["dev"]}}"#;
        assert_eq!(instructions("/p", &a(200, ok)).unwrap().unwrap().id, "d1");
        assert!(matches!(
            instructions("/p", &a(200, "{}")),
            Err(ClientError::InvalidResponse { .. })
        ));
        let e =
            instructions("/p", &a(409, r#"{"error":"conflict","request_id":"r1"}"#)).unwrap_err();
        assert_eq!(e.status(), Some(409));
        assert!(e.to_string().contains("r1"), "{e}");
    }
}
