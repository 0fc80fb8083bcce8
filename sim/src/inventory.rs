//! `PUT|PATCH /api/devices/v1/inventory/device/attributes`: 200 with an empty body; PUT
//! replaces the `inventory` scope, PATCH upserts; values and the 100-attribute limit as
//! PROTOCOL.md §2 says.

use hyper::{Method, StatusCode};

use super::call::Call;
use super::http::{empty, error, op_error, Response};
use mender_api::inventory::parse_attributes;

pub fn handle(call: &Call<'_>) -> Response {
    let rid = call.request_id;
    let replace = match *call.method {
        Method::PUT => true,
        Method::PATCH => false,
        _ => return error(StatusCode::METHOD_NOT_ALLOWED, "use PUT or PATCH", rid),
    };
    let device = match call.device() {
        Ok(d) => d,
        Err(e) => return op_error(&e, call.request_id),
    };
    let attrs = match parse_attributes(call.body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), rid),
    };
    match call.sim.inventory(&device, attrs, replace) {
        Ok(()) => empty(StatusCode::OK),
        Err(e) => op_error(&e, rid),
    }
}
