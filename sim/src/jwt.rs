//! Device tokens: HS256 JWTs with the claims the real server issues (PROTOCOL.md §1.4):
//! `jti` (auth set id), `sub` (device id), `iss` (`Mender`), `exp`, `iat`,
//! `mender.device: true`. The key is the simulator's own (kept in the state directory).

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The claims of a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub jti: String,
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(rename = "mender.device")]
    pub device: bool,
}

/// Why a bearer token was refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing 'Authorization: Bearer' header")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("not a device token")]
    NotDevice,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Signs `claims` with `key`.
pub fn issue(key: &[u8], claims: &Claims) -> String {
    let header = b64().encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64().encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(key);
    m.update(signing_input.as_bytes());
    let sig = b64().encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Checks the signature, expiry (against `now`) and `mender.device` claim.
pub fn verify(key: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let sig = b64().decode(s).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = b64()
        .decode(p)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    if !claims.device {
        return Err(TokenError::NotDevice);
    }
    Ok(claims)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, TokenError> {
    let v = header.ok_or(TokenError::Missing)?.trim();
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or(TokenError::Missing)?
        .trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_verify() {
        let c = Claims {
            jti: "a".into(),
            sub: "d".into(),
            iss: "Mender".into(),
            exp: 200,
            iat: 100,
            device: true,
        };
        let t = issue(b"k", &c);
        assert_eq!(verify(b"k", &t, 150).unwrap(), c);
        assert_eq!(verify(b"k", &t, 200), Err(TokenError::Expired));
        assert_eq!(verify(b"other", &t, 150), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k", "a.b", 150), Err(TokenError::Malformed));
        let payload = t.split('.').nth(1).unwrap();
        let raw = b64().decode(payload).unwrap();
        assert!(String::from_utf8(raw)
            .unwrap()
            .contains(r#""mender.device":true"#));
        assert_eq!(bearer(Some("Bearer x")), Ok("x"));
        assert_eq!(bearer(Some("x")), Err(TokenError::Missing));
    }
}
