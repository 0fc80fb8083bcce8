//! The device API's routing table: which handler answers a method and path, and which
//! injectable fault route it belongs to.

use hyper::{Method, StatusCode};

use super::call::Call;
use super::faults::Route;
use super::http::{error, Response};
use super::{deployments, device_auth, inventory};
use mender_api::{auth::AUTH_REQUESTS, deployments as dep_api, inventory::ATTRIBUTES};

/// The device routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRoute {
    Auth,
    Inventory,
    NextV2,
    NextV1,
    Status(String),
    Log(String),
}

impl DeviceRoute {
    /// The route of a path, whatever the method (the method is checked by `dispatch`).
    pub fn classify(path: &str) -> Option<DeviceRoute> {
        let path = path.strip_suffix('/').unwrap_or(path);
        match path {
            AUTH_REQUESTS => return Some(DeviceRoute::Auth),
            ATTRIBUTES => return Some(DeviceRoute::Inventory),
            dep_api::NEXT_V2 => return Some(DeviceRoute::NextV2),
            dep_api::NEXT_V1 => return Some(DeviceRoute::NextV1),
            _ => {}
        }
        let rest = path.strip_prefix(dep_api::DEPLOYMENTS)?.strip_prefix('/')?;
        let (id, what) = rest.split_once('/')?;
        if id.is_empty() || id.contains('/') {
            return None;
        }
        match what {
            "status" => Some(DeviceRoute::Status(id.to_string())),
            "log" => Some(DeviceRoute::Log(id.to_string())),
            _ => None,
        }
    }

    pub fn fault_route(&self) -> Route {
        match self {
            DeviceRoute::Auth => Route::Auth,
            DeviceRoute::Inventory => Route::Inventory,
            DeviceRoute::NextV2 | DeviceRoute::NextV1 => Route::Next,
            DeviceRoute::Status(_) => Route::Status,
            DeviceRoute::Log(_) => Route::Log,
        }
    }
}

/// Answers a device API call.
pub fn dispatch(call: &Call<'_>, route: &DeviceRoute) -> Response {
    let m = call.method;
    match (route, m) {
        (DeviceRoute::Auth, &Method::POST) => device_auth::handle(call),
        (DeviceRoute::Inventory, &Method::PUT | &Method::PATCH) => inventory::handle(call),
        (DeviceRoute::NextV2, &Method::POST) => deployments::next_v2(call),
        (DeviceRoute::NextV1, &Method::POST) => deployments::next_v1_post(call),
        (DeviceRoute::NextV1, &Method::GET) => deployments::next_v1_get(call),
        (DeviceRoute::Status(id), &Method::PUT) => deployments::status(call, id),
        (DeviceRoute::Log(id), &Method::PUT) => deployments::log(call, id),
        (DeviceRoute::NextV2, _) if !call.sim.settings().next_v2 => {
            error(StatusCode::NOT_FOUND, "not found", call.request_id)
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {m} not allowed here"),
            call.request_id,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(
            DeviceRoute::classify(AUTH_REQUESTS),
            Some(DeviceRoute::Auth)
        );
        assert_eq!(
            DeviceRoute::classify("/api/devices/v1/deployments/device/deployments/abc/status"),
            Some(DeviceRoute::Status("abc".into()))
        );
        assert_eq!(
            DeviceRoute::classify("/api/devices/v1/deployments/device/deployments/abc/log"),
            Some(DeviceRoute::Log("abc".into()))
        );
        assert_eq!(
            DeviceRoute::classify("/api/devices/v1/deployments/device/deployments/next"),
            Some(DeviceRoute::NextV1)
        );
        assert_eq!(
            DeviceRoute::classify("/api/devices/v1/deployments/device/deployments/a/b/log"),
            None
        );
        assert_eq!(DeviceRoute::classify("/api/sim/devices"), None);
    }
}
