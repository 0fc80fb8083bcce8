//! `POST /api/devices/v1/authentication/auth_requests`: parse, check the key, verify the
//! signature over the raw body bytes (before looking the device up, as the current server
//! does), then admit: 200 + JWT when accepted, 401 when pending or rejected.

use hyper::StatusCode;

use super::auth::DevicePublicKey;
use super::call::Call;
use super::http::{error, full, op_error, Response};
use super::state::AuthOutcome;
use mender_api::auth::{AuthRequest, JWT_CONTENT_TYPE, SIGNATURE_HEADER};

pub fn handle(call: &Call<'_>) -> Response {
    let rid = call.request_id;
    let req: AuthRequest = match serde_json::from_slice(call.body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("malformed auth request (need id_data and pubkey strings): {e}"),
                rid,
            )
        }
    };
    if let Err(e) = req.validate() {
        return error(StatusCode::BAD_REQUEST, &e.to_string(), rid);
    }
    let key = match DevicePublicKey::from_pem(&req.pubkey) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), rid),
    };
    let Some(sig) = call
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing X-MEN-Signature header",
            rid,
        );
    };
    if let Err(e) = key.verify(call.body, sig) {
        tracing::warn!(request_id = %rid, "auth request: {e}");
        return error(StatusCode::UNAUTHORIZED, &e.to_string(), rid);
    }
    match call.sim.authenticate(&req, &key) {
        Ok(AuthOutcome::Token(jwt)) => full(StatusCode::OK, Some(JWT_CONTENT_TYPE), jwt),
        Ok(AuthOutcome::Pending { device_id }) => error(
            StatusCode::UNAUTHORIZED,
            &format!("unauthorized: device {device_id} is pending acceptance"),
            rid,
        ),
        Ok(AuthOutcome::Rejected { device_id }) => error(
            StatusCode::UNAUTHORIZED,
            &format!("unauthorized: device {device_id} is rejected"),
            rid,
        ),
        Err(e) => op_error(&e, rid),
    }
}
