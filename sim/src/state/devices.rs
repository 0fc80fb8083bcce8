//! Device admission and tokens (authentication requests, accept, reject, preauthorize,
//! decommission) and inventory, as the real server's rules have them.

use super::deployments::set_status;
use super::{device_mut, lock, AuthOutcome, OpError, Sim};
use crate::auth::DevicePublicKey;
use crate::ids::{self, now, now_rfc3339};
use crate::jwt::{self, Claims, TokenError};
use crate::model::{AuthSet, AuthStatus, Device, ServerStatus};
use mender_api::{inventory, Attribute, AuthRequest};

impl Sim {
    /// Handles an auth request whose signature already verified with `key`.
    pub fn authenticate(
        &self,
        req: &AuthRequest,
        key: &DevicePublicKey,
    ) -> Result<AuthOutcome, OpError> {
        let identity = req
            .canonical_identity()
            .map_err(|e| OpError::BadRequest(e.to_string()))?;
        let identity_data: serde_json::Value = serde_json::from_str(&identity)
            .map_err(|e| OpError::BadRequest(format!("id_data: {e}")))?;
        let pubkey = key.canonical_pem();
        let kind = key.kind();
        let jwt_key = self.jwt_key.clone();
        self.mutate(|d| {
            let now_s = now_rfc3339();
            let lifetime = d.settings.jwt_lifetime_secs;
            let device_id = match d.devices.values().find(|dev| dev.identity == identity) {
                Some(dev) => dev.id.clone(),
                None => {
                    let id = ids::uuid();
                    tracing::info!(device = %id, identity = %identity, "new device (pending)");
                    d.devices.insert(
                        id.clone(),
                        Device {
                            id: id.clone(),
                            identity: identity.clone(),
                            identity_data,
                            auth_sets: Vec::new(),
                            inventory: Vec::new(),
                            created: now_s.clone(),
                            inventory_updated: None,
                            last_auth: None,
                            auth_requests: 0,
                            tokens_not_before: None,
                        },
                    );
                    id
                }
            };
            let dev = d
                .devices
                .get_mut(&device_id)
                .ok_or_else(|| OpError::Internal("device vanished".into()))?;
            dev.last_auth = Some(now_s.clone());
            dev.auth_requests += 1;
            let idx = match dev.auth_sets.iter().position(|a| a.pubkey == pubkey) {
                Some(i) => i,
                None => {
                    dev.auth_sets.push(AuthSet {
                        id: ids::uuid(),
                        pubkey: pubkey.clone(),
                        key_type: kind.clone(),
                        status: AuthStatus::Pending,
                        created: now_s.clone(),
                    });
                    dev.auth_sets.len() - 1
                }
            };
            match dev.auth_sets[idx].status {
                AuthStatus::Pending => Ok(AuthOutcome::Pending { device_id }),
                AuthStatus::Rejected => Ok(AuthOutcome::Rejected { device_id }),
                AuthStatus::Accepted | AuthStatus::Preauthorized => {
                    accept_set(dev, idx);
                    let iat = now().max(dev.tokens_not_before.unwrap_or(0));
                    let claims = Claims {
                        jti: dev.auth_sets[idx].id.clone(),
                        sub: device_id,
                        iss: "Mender".into(),
                        iat,
                        exp: iat + lifetime,
                        device: true,
                    };
                    Ok(AuthOutcome::Token(jwt::issue(&jwt_key, &claims)))
                }
            }
        })
    }

    /// The device id of a valid token whose auth set is still accepted.
    pub fn device_of_token(&self, authorization: Option<&str>) -> Result<String, OpError> {
        let unauthorized = |e: TokenError| OpError::Unauthorized(e.to_string());
        let token = jwt::bearer(authorization).map_err(unauthorized)?;
        let claims = jwt::verify(&self.jwt_key, token, now()).map_err(unauthorized)?;
        let d = lock(&self.data);
        let dev = d
            .devices
            .get(&claims.sub)
            .ok_or_else(|| OpError::Unauthorized("device not found (decommissioned?)".into()))?;
        if dev.tokens_not_before.is_some_and(|t| claims.iat < t) {
            return Err(OpError::Unauthorized(
                "token expired (the simulator expired the device's tokens)".into(),
            ));
        }
        match dev.auth_sets.iter().find(|a| a.id == claims.jti) {
            Some(a) if a.status == AuthStatus::Accepted => Ok(dev.id.clone()),
            _ => Err(OpError::Unauthorized(
                "the token's auth set is no longer accepted".into(),
            )),
        }
    }

    /// Accepts the device's auth set `auth_set` (default: the newest one).
    pub fn accept(&self, device_id: &str, auth_set: Option<&str>) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            let idx = pick_set(dev, auth_set)?;
            accept_set(dev, idx);
            tracing::info!(device = %device_id, "device accepted");
            Ok(())
        })
    }

    /// Rejects the auth set `auth_set`, or all of the device's auth sets.
    pub fn reject(&self, device_id: &str, auth_set: Option<&str>) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            match auth_set {
                Some(_) => {
                    let idx = pick_set(dev, auth_set)?;
                    dev.auth_sets[idx].status = AuthStatus::Rejected;
                }
                None => dev
                    .auth_sets
                    .iter_mut()
                    .for_each(|a| a.status = AuthStatus::Rejected),
            }
            tracing::info!(device = %device_id, "device rejected");
            Ok(())
        })
    }

    /// Pre-authorises identity + key: the device's first request gets a token.
    pub fn preauthorize(
        &self,
        identity_data: &serde_json::Value,
        pubkey: &str,
    ) -> Result<String, OpError> {
        let key =
            DevicePublicKey::from_pem(pubkey).map_err(|e| OpError::BadRequest(e.to_string()))?;
        let req = AuthRequest {
            id_data: identity_data.to_string(),
            pubkey: pubkey.to_string(),
            tenant_token: None,
        };
        let identity = req
            .canonical_identity()
            .map_err(|e| OpError::BadRequest(e.to_string()))?;
        let identity_value: serde_json::Value =
            serde_json::from_str(&identity).map_err(|e| OpError::BadRequest(e.to_string()))?;
        self.mutate(|d| {
            if d.devices.values().any(|dev| dev.identity == identity) {
                return Err(OpError::Conflict(
                    "a device with this identity exists".into(),
                ));
            }
            let now_s = now_rfc3339();
            let id = ids::uuid();
            d.devices.insert(
                id.clone(),
                Device {
                    id: id.clone(),
                    identity,
                    identity_data: identity_value,
                    auth_sets: vec![AuthSet {
                        id: ids::uuid(),
                        pubkey: key.canonical_pem(),
                        key_type: key.kind(),
                        status: AuthStatus::Preauthorized,
                        created: now_s.clone(),
                    }],
                    inventory: Vec::new(),
                    created: now_s,
                    inventory_updated: None,
                    last_auth: None,
                    auth_requests: 0,
                    tokens_not_before: None,
                },
            );
            Ok(id)
        })
    }

    /// Expires every token issued to the device so far (as if their lifetime had ended):
    /// they get 401 from now on, and the device's next authentication gets a working one.
    pub fn expire_tokens(&self, device_id: &str) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            dev.tokens_not_before = Some(now() + 1);
            tracing::info!(device = %device_id, "device tokens expired");
            Ok(())
        })
    }

    /// Removes a device: its tokens stop working and its active deployments become
    /// `decommissioned`-like aborted entries (409 on status reports).
    pub fn decommission(&self, device_id: &str) -> Result<(), OpError> {
        self.mutate(|d| {
            d.devices
                .remove(device_id)
                .ok_or_else(|| OpError::NotFound(format!("device {device_id} not found")))?;
            let now_s = now_rfc3339();
            for dep in d.deployments.values_mut() {
                if let Some(dd) = dep.devices.get_mut(device_id) {
                    if !dd.status.is_finished() {
                        set_status(
                            dd,
                            ServerStatus::Aborted,
                            Some("decommissioned".into()),
                            &now_s,
                            "server",
                            d.seq + 1,
                        );
                        d.seq += 1;
                    }
                }
            }
            Ok(())
        })
    }

    // ----- inventory -----

    /// PUT (`replace`) or PATCH: applies the attributes, refusing a result over the limit.
    pub fn inventory(
        &self,
        device_id: &str,
        attrs: Vec<Attribute>,
        replace: bool,
    ) -> Result<(), OpError> {
        self.mutate(|d| {
            let dev = device_mut(d, device_id)?;
            let mut next: Vec<Attribute> = if replace {
                Vec::new()
            } else {
                dev.inventory.clone()
            };
            for a in attrs {
                match next.iter_mut().find(|x| x.name == a.name) {
                    Some(x) => *x = a,
                    None => next.push(a),
                }
            }
            inventory::check_limit(next.len()).map_err(|e| OpError::BadRequest(e.to_string()))?;
            dev.inventory = next;
            dev.inventory_updated = Some(now_rfc3339());
            Ok(())
        })
    }
}

fn pick_set(dev: &Device, auth_set: Option<&str>) -> Result<usize, OpError> {
    match auth_set {
        Some(id) => dev
            .auth_sets
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| OpError::NotFound(format!("auth set {id} not found"))),
        None if dev.auth_sets.is_empty() => {
            Err(OpError::BadRequest("the device has no auth set".into()))
        }
        None => Ok(dev.auth_sets.len() - 1),
    }
}

/// Accepting one auth set rejects the device's other accepted ones, as the server does.
fn accept_set(dev: &mut Device, idx: usize) {
    for (i, a) in dev.auth_sets.iter_mut().enumerate() {
        if i == idx {
            a.status = AuthStatus::Accepted;
        } else if a.status == AuthStatus::Accepted {
            a.status = AuthStatus::Rejected;
        }
    }
}
