//! Authentication (PROTOCOL.md §1) and the authorised-call wrapper.
//!
//! - The auth body is serialised once (`id_data`, `pubkey`, `tenant_token`; keys in that
//!   order, no trailing newline, as the C++ client sends it), signed, and sent unchanged.
//! - Servers are tried in order; 401, 400, 5xx or no answer → the next server. The server
//!   that issued the token serves every later call.
//! - The token is kept in memory only and never logged (its SHA-256 fingerprint is).
//! - 401 on an API call: re-authenticate once, retry once. No answer (transport error or
//!   timeout): the same, as the Go client does — re-auth walks the server list, so this is
//!   also the failover path.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;

use super::error::{Call, ClientError};
use super::http::{exchange, Answer};
use super::tls::fingerprint;
use super::Client;
use crate::keys::DeviceKey;
use mender_api::auth::{AuthRequest, AUTH_REQUESTS, SIGNATURE_HEADER};

/// Largest JWT accepted (real tokens are well under 2 KiB).
pub(crate) const MAX_JWT: usize = 16 * 1024;

/// The first answer to an authorised call, as [`reauth_and_retry`] judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAnswer {
    /// The server answered with this HTTP status.
    Status(u16),
    /// No answer: a transport error or a timeout.
    NoAnswer,
    /// Any other failure (the request could not be made, a body too large, ...).
    Failed,
}

/// The authorised-call rule (the module doc): after a 401 or no answer, authenticate again
/// and retry the call once; after anything else, the first answer stands. Pure, so the
/// fleet simulation (`fleet/`) follows the very rule the client does.
pub fn reauth_and_retry(first: FirstAnswer) -> bool {
    matches!(first, FirstAnswer::Status(401) | FirstAnswer::NoAnswer)
}

/// A device token. `Debug` shows only its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(Arc<str>);

impl Token {
    /// Checks the 200 body is a plausible JWT: after trimming whitespace, 1..=16 KiB of
    /// base64url characters and dots, usable as a header value.
    fn parse(body: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|_| "token is not UTF-8".to_string())?;
        let t = text.trim();
        if t.is_empty() {
            return Err("empty token".into());
        }
        if !t.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
        }) {
            return Err("token has characters a JWT cannot have".into());
        }
        Ok(Token(Arc::from(t)))
    }

    fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }

    fn bearer(&self) -> HeaderValue {
        // Checked characters only, so this cannot fail; an empty value would be refused.
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        v.set_sensitive(true);
        v
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(sha256:{})", self.fingerprint())
    }
}

/// What the device holds now, as the D-Bus token API publishes it: the token and the
/// server that issued it. `Debug` shows only the token's fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    token: Token,
    server_url: String,
}

impl Authorization {
    /// The JWT itself: a secret, for the D-Bus API only; never log it.
    pub fn token(&self) -> &str {
        &self.token.0
    }

    /// The configured server URL that issued the token (no trailing slash).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("token", &self.token)
            .field("server_url", &self.server_url)
            .finish()
    }
}

/// The current token and the index of the server that issued it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    token: Token,
    server: usize,
}

/// The auth body bytes: serialised once; these exact bytes are signed and sent.
pub(crate) fn auth_body(
    id_data: &str,
    pubkey: String,
    tenant_token: Option<&str>,
) -> Result<Vec<u8>, ClientError> {
    let req = AuthRequest {
        id_data: id_data.to_string(),
        pubkey,
        tenant_token: tenant_token.filter(|t| !t.is_empty()).map(str::to_string),
    };
    serde_json::to_vec(&req).map_err(|e| ClientError::InvalidRequest {
        call: Call::Auth,
        detail: e.to_string(),
    })
}

/// An auth request as the client sends it: the body bytes and their `X-MEN-Signature`.
/// `Debug` shows neither (the body may hold the tenant token).
pub struct SignedAuthRequest {
    /// The exact bytes sent (and signed).
    pub body: Vec<u8>,
    /// The base64 signature over `body`.
    pub signature: String,
}

impl std::fmt::Debug for SignedAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedAuthRequest({} bytes)", self.body.len())
    }
}

/// Builds and signs the auth request with `key`: the one code path of
/// [`Client::authenticate`] (and of `mender-bridge doctor`, which verifies it locally).
/// `id_data` is the identity as a JSON object text.
pub fn signed_auth_request(
    key: &DeviceKey,
    id_data: &str,
    tenant_token: Option<&str>,
) -> Result<SignedAuthRequest, ClientError> {
    let body = auth_body(id_data, key.public_key_pem()?, tenant_token)?;
    let signature = key.sign_header(&body)?;
    Ok(SignedAuthRequest { body, signature })
}

impl Client {
    /// Authenticates now (even with a valid token): tries each server in order and keeps
    /// the first token issued. On failure, the error of a server that answered 401 wins
    /// ([`ClientError::AuthRejected`]: pending or rejected — back off, never regenerate the
    /// key); otherwise the last server's error.
    pub async fn authenticate(&self) -> Result<(), ClientError> {
        let mut session = self.inner.session.lock().await;
        *session = None;
        *session = Some(self.auth_locked().await?);
        Ok(())
    }

    /// Every token the client obtains (first auth, re-auth after a 401 or no answer, the
    /// deliberate re-auth before commit) and every loss of authorization (`None`, when the
    /// server refuses the device): the hook of the D-Bus token API (feature `dbus`; the
    /// device build without it carries none of this). The value is the latest.
    #[cfg(feature = "dbus")]
    pub fn authorization(&self) -> tokio::sync::watch::Receiver<Option<Authorization>> {
        self.inner.authorization.subscribe()
    }

    /// [`authenticate`](Self::authenticate) until accepted, waiting by the configured
    /// backoff ([`ClientConfig::auth_retry`](super::ClientConfig::auth_retry)) after each
    /// transient failure (pending device, no answer, 5xx), or the server's `Retry-After`
    /// after a 429 or 503. Returns the last error when the
    /// schedule is over, or at once on a permanent one (e.g. a key that cannot sign).
    pub async fn authenticate_with_backoff(&self) -> Result<(), ClientError> {
        let mut retry = 0;
        loop {
            match self.authenticate().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() => match self.inner.config.auth_retry.delay(retry) {
                    // The server's Retry-After (429/503) replaces the backoff's wait; the
                    // try still counts against the schedule.
                    Some(d) => {
                        let d = e.retry_after().unwrap_or(d);
                        tracing::warn!("{e}; retrying authentication in {}s", d.as_secs_f32());
                        tokio::time::sleep(d).await;
                        retry += 1;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Forgets the token: the next call authenticates again (the Go client does this right
    /// before ArtifactCommit, so the new software proves it can authenticate).
    pub async fn invalidate_token(&self) {
        *self.inner.session.lock().await = None;
    }

    /// True when a token is held (no network traffic).
    pub async fn is_authenticated(&self) -> bool {
        self.inner.session.lock().await.is_some()
    }

    /// The server URL that issued the current token, if any.
    pub async fn current_server(&self) -> Option<String> {
        let s = self.inner.session.lock().await;
        s.as_ref().map(|s| self.inner.servers[s.server].clone())
    }

    /// Runs the auth request against every server in order and publishes the outcome (a
    /// new token, or `None` when refused); call with the session locked.
    #[cfg(feature = "dbus")]
    async fn auth_locked(&self) -> Result<Session, ClientError> {
        let result = self.auth_servers().await;
        self.publish(&result);
        result
    }

    /// Without the token API there is nothing to publish: the auth request's own future
    /// (no wrapping state machine in the device build).
    #[cfg(not(feature = "dbus"))]
    fn auth_locked(&self) -> impl std::future::Future<Output = Result<Session, ClientError>> + '_ {
        self.auth_servers()
    }

    /// A new token, or the loss of authorization (a refusal after a token), to
    /// [`authorization`](Self::authorization)'s subscribers.
    #[cfg(feature = "dbus")]
    fn publish(&self, result: &Result<Session, ClientError>) {
        match result {
            Ok(s) => {
                self.inner.authorization.send_replace(Some(Authorization {
                    token: s.token.clone(),
                    server_url: self.inner.servers[s.server].clone(),
                }));
            }
            Err(ClientError::AuthRejected { .. }) => {
                self.inner
                    .authorization
                    .send_if_modified(|a| a.take().is_some());
            }
            Err(_) => {}
        }
    }

    async fn auth_servers(&self) -> Result<Session, ClientError> {
        let inner = &self.inner;
        let signed = signed_auth_request(
            &inner.key,
            &inner.id_data,
            inner.config.tenant_token.as_deref(),
        )?;
        let body = Bytes::from(signed.body);
        let signature = signed.signature;
        let mut rejected: Option<ClientError> = None;
        let mut last: Option<ClientError> = None;
        for (i, server) in inner.servers.iter().enumerate() {
            let req = Request::builder()
                .method(Method::POST)
                .uri(format!("{server}{AUTH_REQUESTS}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::USER_AGENT, inner.config.user_agent.as_str())
                .header(SIGNATURE_HEADER, signature.as_str())
                .body(Full::new(body.clone()))
                .map_err(|e| ClientError::Config(format!("server URL {server:?}: {e}")))?;
            let answer = exchange(
                &inner.http,
                req,
                MAX_JWT,
                inner.config.timeouts.request,
                Call::Auth,
                AUTH_REQUESTS,
            )
            .await;
            match answer {
                Ok(a) if a.status == StatusCode::OK => match Token::parse(&a.body) {
                    Ok(token) => {
                        tracing::info!(
                            server = %server,
                            token = %format!("sha256:{}", token.fingerprint()),
                            "authenticated"
                        );
                        // A new token may mean a new device record: send inventory again.
                        self.forget_inventory();
                        return Ok(Session { token, server: i });
                    }
                    Err(detail) => {
                        last = Some(ClientError::InvalidResponse {
                            call: Call::Auth,
                            path: AUTH_REQUESTS.into(),
                            detail,
                        })
                    }
                },
                Ok(a) if a.status == StatusCode::UNAUTHORIZED => {
                    let e = ClientError::AuthRejected {
                        server: server.clone(),
                        message: a.server_message(),
                    };
                    tracing::info!("{e}");
                    rejected.get_or_insert(e);
                }
                Ok(a) => {
                    let e = status_error(Call::Auth, AUTH_REQUESTS, &a);
                    tracing::warn!(server = %server, "{e}");
                    last = Some(e);
                }
                Err(e) => {
                    tracing::warn!(server = %server, "{e}");
                    last = Some(e);
                }
            }
        }
        Err(rejected
            .or(last)
            .unwrap_or_else(|| ClientError::Config("no server configured".into())))
    }

    /// The current session, authenticating first when there is none.
    async fn session(&self) -> Result<Session, ClientError> {
        let mut s = self.inner.session.lock().await;
        if let Some(s) = s.as_ref() {
            return Ok(s.clone());
        }
        let fresh = self.auth_locked().await?;
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    /// A new session after `used` failed: unless another task already replaced it, drop it
    /// and authenticate again.
    async fn reauthenticate(&self, used: &Token) -> Result<Session, ClientError> {
        let mut s = self.inner.session.lock().await;
        if let Some(cur) = s.as_ref() {
            if &cur.token != used {
                return Ok(cur.clone());
            }
        }
        *s = None;
        let fresh = self.auth_locked().await?;
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    /// One authorised call: `path_and_query` under the session's server, bearer token,
    /// JSON body. On 401 or no answer: re-authenticate once and retry once. The answer
    /// body is capped at `max_response_body`.
    pub(crate) async fn authorized(
        &self,
        call: Call,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, ClientError> {
        let session = self.session().await?;
        let first = self
            .send_once(call, &method, path_and_query, &body, &session)
            .await;
        let seen = match &first {
            Ok(a) => FirstAnswer::Status(a.status.as_u16()),
            Err(ClientError::Transport { .. } | ClientError::Timeout { .. }) => {
                FirstAnswer::NoAnswer
            }
            Err(_) => FirstAnswer::Failed,
        };
        if !reauth_and_retry(seen) {
            return first;
        }
        match &first {
            Ok(_) => tracing::info!("{call}: token refused (401); authenticating again"),
            Err(e) => tracing::info!("{e}; authenticating again and retrying once"),
        }
        let session = self.reauthenticate(&session.token).await?;
        self.send_once(call, &method, path_and_query, &body, &session)
            .await
    }

    async fn send_once(
        &self,
        call: Call,
        method: &Method,
        path_and_query: &str,
        body: &Option<Bytes>,
        session: &Session,
    ) -> Result<Answer, ClientError> {
        let inner = &self.inner;
        let path = path_and_query.split('?').next().unwrap_or_default();
        let server = &inner.servers[session.server];
        let mut b = Request::builder()
            .method(method.clone())
            .uri(format!("{server}{path_and_query}"))
            .header(header::USER_AGENT, inner.config.user_agent.as_str())
            .header(header::AUTHORIZATION, session.token.bearer());
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(Full::new(body.clone().unwrap_or_default()))
            .map_err(|e| ClientError::InvalidRequest {
                call,
                detail: format!("{path}: {e}"),
            })?;
        exchange(
            &inner.http,
            req,
            inner.config.max_response_body,
            inner.config.timeouts.request,
            call,
            path,
        )
        .await
    }
}

/// The error for an unexpected status.
pub(crate) fn status_error(call: Call, path: &str, a: &Answer) -> ClientError {
    ClientError::Status {
        call,
        path: path.to_string(),
        status: a.status.as_u16(),
        message: a.server_message(),
        retry_after: super::retry_after::retry_after(a.status, &a.headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_layout_is_stable() {
        let b = auth_body(
            r#"{"mac":"02:00:00:00:00:01"}"#,
            "PEM\n".into(),
            Some("tok"),
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"id_data":"{\"mac\":\"02:00:00:00:00:01\"}","pubkey":"PEM\n","tenant_token":"tok"}"#
        );
        let b = auth_body("{}", "P".into(), Some("")).unwrap();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"id_data":"{}","pubkey":"P"}"#
        );
    }

    #[test]
    fn token_checks_and_redacts() {
        let t = Token::parse(b"aaa.bbb.ccc\n").unwrap();
        assert_eq!(t.0.as_ref(), "aaa.bbb.ccc");
        assert!(!format!("{t:?}").contains("aaa"));
        assert!(t.bearer().is_sensitive());
        assert!(Token::parse(b"").is_err());
        assert!(Token::parse(b"a b").is_err());
        assert!(Token::parse(b"{\"token\":1}").is_err());
    }
}
