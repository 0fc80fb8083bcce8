//! The management API under `/api/sim/` (JSON, no auth; bind it to loopback): devices
//! (accept, reject, preauthorise, decommission, inventory), artifacts (upload, list, and
//! `PUT artifacts/{id}/content`: replace the stored bytes unchecked, for attack tests),
//! deployments (create, abort, status history, logs), faults, link expiry, settings, and
//! the recorded requests and downloads.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::artifacts;
use super::faults::{FailSpec, Route};
use super::http::{empty, error, json, op_error, read_body, Response};
use super::model::{AuthStatus, Deployment, Device, DeviceDeployment};
use super::state::{OpError, Sim};

/// Largest JSON body of a management call.
const MAX_JSON: usize = 1024 * 1024;

#[derive(Serialize)]
struct DeviceView<'a> {
    #[serde(flatten)]
    device: &'a Device,
    status: AuthStatus,
}

#[derive(Serialize)]
struct DeploymentView<'a> {
    #[serde(flatten)]
    deployment: &'a Deployment,
    /// `pending` (nobody started), `finished` (every device finished), else `inprogress`.
    status: &'static str,
}

fn deployment_view(d: &Deployment) -> DeploymentView<'_> {
    use super::model::ServerStatus;
    let all = |f: &dyn Fn(ServerStatus) -> bool| d.devices.values().all(|dd| f(dd.status));
    let status = if !d.devices.is_empty() && all(&|s| s.is_finished()) {
        "finished"
    } else if all(&|s| s == ServerStatus::Pending) {
        "pending"
    } else {
        "inprogress"
    };
    DeploymentView {
        deployment: d,
        status,
    }
}

#[derive(Deserialize, Default)]
struct AuthSetBody {
    auth_set_id: Option<String>,
}

#[derive(Deserialize)]
struct PreauthBody {
    identity_data: serde_json::Value,
    pubkey: String,
}

#[derive(Deserialize)]
struct NewDeployment {
    #[serde(default)]
    name: String,
    artifact_name: String,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
struct CutBody {
    offsets: Vec<u64>,
}

#[derive(Deserialize)]
struct ThrottleBody {
    bytes_per_sec: Option<u64>,
}

#[derive(Deserialize)]
struct FailBody {
    route: Route,
    count: u32,
    #[serde(default = "default_status")]
    status: u16,
    /// `Retry-After` of the injected answers: delay-seconds or an HTTP-date, as given.
    #[serde(default)]
    retry_after: Option<String>,
}

fn default_status() -> u16 {
    500
}

#[derive(Deserialize)]
struct SettingsBody {
    jwt_lifetime_secs: Option<u64>,
    next_v2: Option<bool>,
    link_lifetime_secs: Option<u64>,
}

#[derive(Serialize)]
struct Created {
    id: String,
}

pub async fn handle(sim: &Sim, req: Request<Incoming>, rid: &str) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path
        .trim_start_matches("/api/sim")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // Artifact uploads (and tampering with the stored bytes) stream; every other call has
    // a small JSON body.
    if method == Method::POST && segs == ["artifacts"] {
        let max = sim.max_artifact_size();
        return match artifacts::upload(sim, req.into_body(), max).await {
            Ok(rec) => json(StatusCode::CREATED, &rec),
            Err(e) => op_error(&e, rid),
        };
    }
    if let (&Method::PUT, ["artifacts", id, "content"]) = (&method, segs.as_slice()) {
        let (max, id) = (sim.max_artifact_size(), id.to_string());
        return match artifacts::replace_content(sim, &id, req.into_body(), max).await {
            Ok(rec) => json(StatusCode::OK, &rec),
            Err(e) => op_error(&e, rid),
        };
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, MAX_JSON).await {
        Ok(b) => b,
        Err(e) => return error(e.status(), &e.to_string(), rid),
    };
    let query = parts.uri.query();
    if let Some(r) = crate::connect::manage::route(sim, &method, &segs, query, &body, rid).await {
        return r;
    }
    match route(sim, &method, &segs, &body) {
        Ok(r) => r,
        Err(e) => op_error(&e, rid),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, OpError> {
    serde_json::from_slice(body).map_err(|e| OpError::BadRequest(format!("body: {e}")))
}

fn parse_or_default<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, OpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

fn not_found(what: &str) -> OpError {
    OpError::NotFound(format!("{what} not found"))
}

/// A copy of device `dev`'s part in deployment `id`.
fn device_deployment(sim: &Sim, id: &str, dev: &str) -> Result<DeviceDeployment, OpError> {
    sim.snapshot()
        .deployments
        .get(id)
        .and_then(|dep| dep.devices.get(dev))
        .cloned()
        .ok_or_else(|| not_found("device deployment"))
}

fn route(sim: &Sim, method: &Method, segs: &[&str], body: &[u8]) -> Result<Response, OpError> {
    use Method as M;
    let ok = || empty(StatusCode::NO_CONTENT);
    Ok(match (method, segs) {
        (&M::GET, ["devices"]) => {
            let d = sim.snapshot();
            let list: Vec<_> = d
                .devices
                .values()
                .map(|device| DeviceView {
                    device,
                    status: device.status(),
                })
                .collect();
            json(StatusCode::OK, &list)
        }
        (&M::POST, ["devices", "preauthorize"]) => {
            let b: PreauthBody = parse(body)?;
            let id = sim.preauthorize(&b.identity_data, &b.pubkey)?;
            json(StatusCode::CREATED, &Created { id })
        }
        (&M::GET, ["devices", id]) => {
            let d = sim.snapshot();
            let device = d.devices.get(*id).ok_or_else(|| not_found("device"))?;
            json(
                StatusCode::OK,
                &DeviceView {
                    device,
                    status: device.status(),
                },
            )
        }
        (&M::DELETE, ["devices", id]) => {
            sim.decommission(id)?;
            ok()
        }
        (&M::POST, ["devices", id, "accept"]) => {
            let b: AuthSetBody = parse_or_default(body)?;
            sim.accept(id, b.auth_set_id.as_deref())?;
            ok()
        }
        (&M::POST, ["devices", id, "reject"]) => {
            let b: AuthSetBody = parse_or_default(body)?;
            sim.reject(id, b.auth_set_id.as_deref())?;
            ok()
        }
        (&M::POST, ["devices", id, "tokens", "expire"]) => {
            sim.expire_tokens(id)?;
            ok()
        }
        (&M::GET, ["devices", id, "inventory"]) => {
            let d = sim.snapshot();
            let device = d.devices.get(*id).ok_or_else(|| not_found("device"))?;
            json(StatusCode::OK, &device.inventory)
        }
        (&M::GET, ["artifacts"]) => {
            let d = sim.snapshot();
            json(StatusCode::OK, &d.artifacts.values().collect::<Vec<_>>())
        }
        (&M::GET, ["deployments"]) => {
            let d = sim.snapshot();
            let mut list: Vec<_> = d.deployments.values().collect();
            list.sort_by_key(|dep| dep.seq);
            json(
                StatusCode::OK,
                &list.into_iter().map(deployment_view).collect::<Vec<_>>(),
            )
        }
        (&M::POST, ["deployments"]) => {
            let b: NewDeployment = parse(body)?;
            let id = sim.create_deployment(&b.name, &b.artifact_name, &b.devices, b.all)?;
            json(StatusCode::CREATED, &Created { id })
        }
        (&M::GET, ["deployments", id]) => {
            let d = sim.snapshot();
            let dep = d
                .deployments
                .get(*id)
                .ok_or_else(|| not_found("deployment"))?;
            json(StatusCode::OK, &deployment_view(dep))
        }
        (&M::POST, ["deployments", id, "abort"]) => {
            sim.abort_deployment(id)?;
            ok()
        }
        (&M::GET, ["deployments", id, "devices", dev]) => {
            json(StatusCode::OK, &device_deployment(sim, id, dev)?)
        }
        (&M::GET, ["deployments", id, "devices", dev, "log"]) => {
            let dd = device_deployment(sim, id, dev)?;
            json(StatusCode::OK, &serde_json::json!({ "messages": dd.log }))
        }
        (&M::GET, ["faults"]) => json(StatusCode::OK, &*sim.faults()),
        (&M::DELETE, ["faults"]) => {
            *sim.faults() = Default::default();
            ok()
        }
        (&M::POST, ["faults", "cut"]) => {
            let b: CutBody = parse(body)?;
            sim.faults().cut_offsets.extend(b.offsets);
            ok()
        }
        (&M::POST, ["faults", "corrupt"]) => {
            let b: CutBody = parse(body)?;
            sim.faults().corrupt_offsets.extend(b.offsets);
            ok()
        }
        (&M::POST, ["faults", "throttle"]) => {
            let b: ThrottleBody = parse(body)?;
            sim.faults().throttle_bytes_per_sec = b.bytes_per_sec.filter(|v| *v > 0);
            ok()
        }
        (&M::POST, ["faults", "fail"]) => {
            let b: FailBody = parse(body)?;
            if b.status != 429 && !(500..=599).contains(&b.status) {
                return Err(OpError::BadRequest("status must be 429 or 5xx".into()));
            }
            if let Some(v) = &b.retry_after {
                if hyper::header::HeaderValue::from_str(v).is_err() {
                    return Err(OpError::BadRequest(
                        "retry_after must be a header value".into(),
                    ));
                }
            }
            sim.faults().fail.insert(
                b.route,
                FailSpec {
                    count: b.count,
                    status: b.status,
                    retry_after: b.retry_after,
                },
            );
            ok()
        }
        (&M::POST, ["links", "expire"]) => {
            sim.expire_links()?;
            ok()
        }
        (&M::GET, ["settings"]) => json(StatusCode::OK, &sim.settings()),
        (&M::PUT, ["settings"]) => {
            let b: SettingsBody = parse(body)?;
            let s = sim.update_settings(b.jwt_lifetime_secs, b.next_v2, b.link_lifetime_secs)?;
            json(StatusCode::OK, &s)
        }
        (&M::GET, ["requests"]) => json(StatusCode::OK, &sim.requests().all()),
        (&M::DELETE, ["requests"]) => {
            sim.requests().clear();
            ok()
        }
        (&M::GET, ["downloads"]) => json(StatusCode::OK, &sim.downloads().all()),
        _ => return Err(OpError::NotFound("no such management route".into())),
    })
}
