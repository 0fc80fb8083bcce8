//! The auth request: built and signed by the client's own code
//! ([`crate::client::signed_auth_request`]), then checked here before anything is sent —
//! the body is a valid request by the server's rules and the signature verifies with the
//! public key by the server's rules ([`mender_api::signature`]). Then each reachable
//! server's answer, through [`Client::authenticate`]: accepted (the token is never shown),
//! pending (a warning: accept the device), or refused (the server's message).

use mender_api::signature::DevicePublicKey;
use mender_api::AuthRequest;

use crate::client::{signed_auth_request, Client, ClientError, Timeouts};
use crate::config::Config;
use crate::identity::DeviceIdentity;
use crate::keys::DeviceKey;

use super::{Check, Sink, CHECK_TIMEOUT};

/// Why the local check of the signed request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthCheckError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("the request body is not an auth request: {0}")]
    Body(String),
    #[error("{0}")]
    Key(#[from] mender_api::signature::KeyError),
    #[error("{0}")]
    Signature(#[from] mender_api::signature::SignatureError),
}

/// The client for one server, as the daemon builds it, with this check's timeouts.
fn client_for(
    cfg: &Config,
    server: &str,
    key: &DeviceKey,
    identity: &DeviceIdentity,
) -> Result<Client, ClientError> {
    let mut c = crate::setup::client_config(cfg);
    c.servers = vec![server.to_string()];
    c.timeouts = Timeouts {
        connect: CHECK_TIMEOUT,
        request: CHECK_TIMEOUT,
    };
    Client::new(c, key.clone(), &identity.to_json_map())
}

/// Signs the request as the client does and verifies it locally; returns its description.
pub fn verify_locally(
    key: &DeviceKey,
    id_data: &str,
    tenant_token: Option<&str>,
) -> Result<String, AuthCheckError> {
    let signed = signed_auth_request(key, id_data, tenant_token)?;
    let req: AuthRequest =
        serde_json::from_slice(&signed.body).map_err(|e| AuthCheckError::Body(e.to_string()))?;
    req.validate()
        .map_err(|e| AuthCheckError::Body(e.to_string()))?;
    let public = DevicePublicKey::from_pem(&req.pubkey)?;
    public.verify(&signed.body, &signed.signature)?;
    Ok(format!(
        "{} bytes signed with the {} key and verified with its public key; tenant token {}",
        signed.body.len(),
        public.kind(),
        if req.tenant_token.is_some() {
            "set (not shown)"
        } else {
            "not set"
        }
    ))
}

/// The request check, then each reachable server's answer.
pub async fn check(
    cfg: &Config,
    key: Option<&DeviceKey>,
    identity: Option<&DeviceIdentity>,
    reachable: &[String],
    out: &mut dyn Sink,
) {
    let (Some(key), Some(identity)) = (key, identity) else {
        let why = if key.is_none() {
            "no device key"
        } else {
            "no identity"
        };
        out.add(Check::skip("auth request", why));
        out.add(Check::skip("auth", why));
        return;
    };
    let Some(first) = cfg.servers.first() else {
        out.add(Check::skip("auth request", "no server configured"));
        return;
    };
    let token = cfg.tenant_token.expose();
    let tenant = (!token.is_empty()).then_some(token);
    let request_ok = match client_for(cfg, first.as_str(), key, identity) {
        Ok(client) => match verify_locally(key, client.id_data(), tenant) {
            Ok(found) => {
                out.add(Check::ok("auth request", found));
                true
            }
            Err(e) => {
                out.add(Check::fail(
                    "auth request",
                    e.to_string(),
                    "the device key cannot sign a request the server accepts; check the key \
                     (see the device key check)",
                ));
                false
            }
        },
        Err(e) => {
            out.add(Check::fail(
                "auth request",
                e.to_string(),
                "correct the client settings it names",
            ));
            false
        }
    };
    for server in &cfg.servers {
        let url = server.as_str();
        if !request_ok {
            out.add(Check::skip(
                "auth",
                format!("{url}: the auth request failed"),
            ));
            continue;
        }
        if !reachable.iter().any(|r| r == url) {
            out.add(Check::skip("auth", format!("{url}: not reachable")));
            continue;
        }
        let client = match client_for(cfg, url, key, identity) {
            Ok(c) => c,
            Err(e) => {
                out.add(Check::fail(
                    "auth",
                    format!("{url}: {e}"),
                    "correct the client settings",
                ));
                continue;
            }
        };
        out.add(answer(url, client.authenticate().await));
    }
}

/// The server's answer as a check line. A 401 is pending unless the server's text says
/// the device is rejected or the request was refused (signature, tenant token).
pub fn answer(url: &str, result: Result<(), ClientError>) -> Check {
    match result {
        Ok(()) => Check::ok(
            "auth",
            format!("{url}: accepted (a token was issued; not shown)"),
        ),
        Err(ClientError::AuthRejected { message, .. }) => {
            let text = message.error.clone().unwrap_or_default().to_lowercase();
            let refused = ["reject", "signature", "tenant", "decommission", "invalid"]
                .iter()
                .any(|w| text.contains(w));
            if refused {
                Check::fail(
                    "auth",
                    format!("{url}: refused (401){message}"),
                    "a rejected device must be accepted again on the dashboard; a refused \
                     signature or tenant token needs the key or TenantToken corrected",
                )
            } else {
                Check::warn(
                    "auth",
                    format!("{url}: pending (401){message}"),
                    "accept the device on the dashboard (Devices → Pending)",
                )
            }
        }
        Err(e) => Check::fail(
            "auth",
            format!("{url}: {e}"),
            "see the server's message; check ServerURL and the server's logs",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ServerMessage;
    use crate::doctor::Status;
    use crate::keys::KeyType;

    #[test]
    fn each_key_type_signs_a_request_that_verifies() {
        for kind in [KeyType::Ed25519, KeyType::P256] {
            let key = DeviceKey::generate(kind).expect("key");
            let found = verify_locally(&key, r#"{"mac":"02:00:00:00:00:01"}"#, Some("secret-tt"))
                .expect("verifies");
            assert!(found.contains("verified with its public key"), "{found}");
            assert!(found.contains("tenant token set (not shown)"), "{found}");
            assert!(!found.contains("secret-tt"), "{found}");
        }
        // An identity the server would refuse is caught before sending.
        let key = DeviceKey::generate(KeyType::Ed25519).expect("key");
        assert!(matches!(
            verify_locally(&key, "", None),
            Err(AuthCheckError::Body(_))
        ));
    }

    #[test]
    fn the_answer_pending_rejected_or_accepted() {
        let refused = |text: &str| ClientError::AuthRejected {
            server: "https://s".into(),
            message: ServerMessage {
                error: Some(text.into()),
                request_id: None,
            },
        };
        assert_eq!(answer("https://s", Ok(())).status, Status::Ok);
        let c = answer(
            "https://s",
            Err(refused("unauthorized: device 1 is pending acceptance")),
        );
        assert_eq!(c.status, Status::Warn, "{c}");
        assert!(c.fix.as_deref().unwrap_or("").contains("dashboard"), "{c}");
        let c = answer("https://s", Err(refused("dev auth: unauthorized")));
        assert_eq!(c.status, Status::Warn, "the real server says no more: {c}");
        let c = answer(
            "https://s",
            Err(refused("unauthorized: device 1 is rejected")),
        );
        assert_eq!(c.status, Status::Fail, "{c}");
        assert!(c.found.contains("is rejected"), "{c}");
        let c = answer(
            "https://s",
            Err(refused("signature verification failed: …")),
        );
        assert_eq!(c.status, Status::Fail, "{c}");
        let c = answer(
            "https://s",
            Err(ClientError::Status {
                call: crate::client::Call::Auth,
                path: "/p".into(),
                status: 500,
                message: ServerMessage::default(),
                retry_after: None,
            }),
        );
        assert_eq!(c.status, Status::Fail, "{c}");
    }
}
