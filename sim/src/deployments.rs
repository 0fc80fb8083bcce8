//! The deployment routes of the device API (PROTOCOL.md §3): `next` in its three forms,
//! status reports and the deployment log.

use hyper::StatusCode;

use super::call::Call;
use super::http::{empty, error, json, op_error, Response};
use super::state::NextOutcome;
use mender_api::{DeploymentLog, NextQuery, NextRequestV1, NextRequestV2, StatusReport};

/// POST v2 `next` (404 when switched off, as on the open-source server).
pub fn next_v2(call: &Call<'_>) -> Response {
    if !call.sim.settings().next_v2 {
        return error(StatusCode::NOT_FOUND, "not found", call.request_id);
    }
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    match serde_json::from_slice::<NextRequestV2>(call.body) {
        Ok(r) => next(
            call,
            &device,
            &r.device_provides.artifact_name,
            &r.device_provides.device_type,
            r.device_provides.validate(),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("malformed body: {e}"),
            call.request_id,
        ),
    }
}

/// POST v1 `next` with the flat map.
pub fn next_v1_post(call: &Call<'_>) -> Response {
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    match serde_json::from_slice::<NextRequestV1>(call.body) {
        Ok(r) => next(
            call,
            &device,
            &r.artifact_name,
            &r.device_type,
            r.validate(),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("malformed body: {e}"),
            call.request_id,
        ),
    }
}

/// GET v1 `next?artifact_name=&device_type=`.
pub fn next_v1_get(call: &Call<'_>) -> Response {
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    let mut q = NextQuery::default();
    for (k, v) in url::form_urlencoded::parse(call.query.unwrap_or("").as_bytes()) {
        match &*k {
            "artifact_name" => q.artifact_name = v.into_owned(),
            "device_type" => q.device_type = v.into_owned(),
            _ => {}
        }
    }
    next(
        call,
        &device,
        &q.artifact_name,
        &q.device_type,
        q.validate(),
    )
}

fn next(
    call: &Call<'_>,
    device: &str,
    artifact_name: &str,
    device_type: &str,
    valid: Result<(), mender_api::ValidationError>,
) -> Response {
    if let Err(e) = valid {
        return error(StatusCode::BAD_REQUEST, &e.to_string(), call.request_id);
    }
    match call.sim.next(device, artifact_name, device_type) {
        Ok(NextOutcome::Update(i)) => json(StatusCode::OK, &i),
        Ok(NextOutcome::NoUpdate) => empty(StatusCode::NO_CONTENT),
        Err(e) => op_error(&e, call.request_id),
    }
}

/// PUT `{id}/status`.
pub fn status(call: &Call<'_>, deployment_id: &str) -> Response {
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    let report = match StatusReport::parse(call.body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), call.request_id),
    };
    match call.sim.report_status(&device, deployment_id, &report) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(e) => op_error(&e, call.request_id),
    }
}

/// PUT `{id}/log`.
pub fn log(call: &Call<'_>, deployment_id: &str) -> Response {
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    let log = match DeploymentLog::parse(call.body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), call.request_id),
    };
    match call.sim.upload_log(&device, deployment_id, log) {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        Err(e) => op_error(&e, call.request_id),
    }
}
