//! `POST /api/devices/v1/authentication/auth_requests` (PROTOCOL.md §1).

use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Route of the authentication request.
pub const AUTH_REQUESTS: &str = "/api/devices/v1/authentication/auth_requests";

/// Header carrying the base64 (standard, padded) signature over the raw body bytes.
pub const SIGNATURE_HEADER: &str = "X-MEN-Signature";

/// Content type of the 200 answer, whose body is the raw JWT text (no JSON, no newline).
pub const JWT_CONTENT_TYPE: &str = "application/jwt";

/// The authentication request body.
///
/// Rules: `id_data` is a **string** holding a JSON object of identity attributes
/// (`"{\"mac\":\"02:00:00:00:00:01\"}"`), not a nested object; `pubkey` is a PEM
/// SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) — PKCS#1 `RSA PUBLIC KEY` is refused
/// with 400; `tenant_token` is only meaningful on multi-tenant servers (omitted when `None`).
///
/// A client serialises this once and signs exactly those bytes: RSA PKCS#1 v1.5 over
/// SHA-256, ECDSA P-256 over SHA-256 in **ASN.1 DER** (raw r||s is refused), Ed25519 over
/// the raw body itself. The server verifies the bytes it received, then parses them.
///
/// `Debug` shows `tenant_token` as `<redacted>`: the token is a credential, and a request
/// may reach a log through `{:?}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub id_data: String,
    pub pubkey: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_token: Option<String>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// Prints as `<redacted>`, unquoted.
        struct Redacted;
        impl std::fmt::Debug for Redacted {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("<redacted>")
            }
        }
        f.debug_struct("AuthRequest")
            .field("id_data", &self.id_data)
            .field("pubkey", &self.pubkey)
            .field(
                "tenant_token",
                &self.tenant_token.as_ref().map(|_| Redacted),
            )
            .finish()
    }
}

impl AuthRequest {
    /// The identity attributes: `id_data` parsed as a JSON object (400 when it is not one).
    pub fn identity(&self) -> Result<serde_json::Map<String, serde_json::Value>, ValidationError> {
        if self.id_data.is_empty() {
            return Err(ValidationError::Empty { field: "id_data" });
        }
        match serde_json::from_str::<serde_json::Value>(&self.id_data) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(ValidationError::Invalid {
                field: "id_data",
                detail: "must hold a JSON object".into(),
            }),
            Err(e) => Err(ValidationError::Invalid {
                field: "id_data",
                detail: format!("not JSON: {e}"),
            }),
        }
    }

    /// The canonical identity: `id_data` re-serialised with sorted keys (as the server
    /// canonicalises it), so two requests with the same attributes in another order match.
    pub fn canonical_identity(&self) -> Result<String, ValidationError> {
        let map = self.identity()?;
        // serde_json's Map is a BTreeMap without the preserve_order feature: keys sorted.
        let sorted: std::collections::BTreeMap<_, _> = map.into_iter().collect();
        serde_json::to_string(&sorted).map_err(|e| ValidationError::Invalid {
            field: "id_data",
            detail: e.to_string(),
        })
    }

    /// Checks the fields are present (`pubkey` non-empty, `id_data` a JSON object).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.identity()?;
        if self.pubkey.trim().is_empty() {
            return Err(ValidationError::Empty { field: "pubkey" });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_data_is_a_string_and_tenant_token_optional() {
        let r = AuthRequest {
            id_data: r#"{"mac":"02:00:00:00:00:01"}"#.into(),
            pubkey: "-----BEGIN PUBLIC KEY-----\n...".into(),
            tenant_token: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"id_data":"{\"mac\":\"02:00:00:00:00:01\"}","pubkey":"-----BEGIN PUBLIC KEY-----\n..."}"#
        );
        let back: AuthRequest = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn debug_hides_the_tenant_token() {
        let r = AuthRequest {
            id_data: r#"{"mac":"x"}"#.into(),
            pubkey: "k".into(),
            tenant_token: Some("tenant-secret-0123".into()),
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("tenant-secret-0123"), "{shown}");
        assert!(shown.contains("tenant_token: Some(<redacted>)"), "{shown}");
        assert!(shown.contains(r#"{\"mac\":\"x\"}"#), "{shown}");
        let none = AuthRequest {
            tenant_token: None,
            ..r
        };
        assert!(format!("{none:?}").contains("tenant_token: None"));
    }

    #[test]
    fn identity_rules() {
        let mut r = AuthRequest {
            id_data: r#"{"serial":["b","a"],"mac":"x"}"#.into(),
            pubkey: "k".into(),
            tenant_token: Some(String::new()),
        };
        assert_eq!(
            r.canonical_identity().unwrap(),
            r#"{"mac":"x","serial":["b","a"]}"#
        );
        r.id_data = "[1]".into();
        assert!(r.validate().is_err());
        r.id_data = "nope".into();
        assert!(r.validate().is_err());
        r.id_data = "{}".into();
        r.pubkey = " ".into();
        assert!(r.validate().is_err());
    }
}
