//! The Mender device API client (PROTOCOL.md §0–3): authentication, inventory, update
//! check, status reports, deployment log, and the resumable artifact download.
//!
//! One job per module: [`config`](ClientConfig) (plain settings), `tls` (rustls trust and
//! client certificate), `http` (one bounded exchange), `auth` (token lifecycle, re-auth,
//! server failover), `inventory`, `deployments` (update check), `status`, `log`,
//! [`download`] (resumable presigned-URL stream), [`backoff`] (retry schedules),
//! `range` (`Content-Range`), [`proxy`] (`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` and the
//! `CONNECT` tunnel), [`retry_after`] (server pushback), `error`.
//!
//! Invariants:
//! - The JWT lives in memory only; it, the tenant token and key material are never logged
//!   (a SHA-256 fingerprint at most) and never appear in errors.
//! - Every network wait is bounded by a timeout; every body read from the network other
//!   than the artifact is capped ([`ClientConfig::max_response_body`], the JWT at 16 KiB).
//! - The artifact download is a separate request path that never sends `Authorization`.
//! - Errors name the call and the URL path, never a query string.

mod auth;
pub mod backoff;
mod config;
mod deployments;
pub mod download;
mod error;
mod http;
mod inventory;
mod log;
pub mod proxy;
mod range;
pub mod retry_after;
mod status;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use auth::{
    reauth_and_retry, signed_auth_request, Authorization, FirstAnswer, SignedAuthRequest,
};
pub use backoff::Backoff;
pub use config::{ClientConfig, DownloadConfig, Timeouts, TlsConfig};
pub use download::{Download, DownloadReader, DownloadStats, Downloader, RefreshUrl};
pub use error::{BoxError, Call, ClientError, DownloadError, ServerMessage};
pub use inventory::InventoryOutcome;
pub use log::{prepare_log, MAX_LOG_BODY};
pub use proxy::{ProxyEnv, ProxyError};
pub use range::ContentRange;
pub use status::truncate_substate;
pub use tls::client_config as tls_client_config;
pub(crate) use tls::fingerprint;

use crate::keys::DeviceKey;

/// A Mender device API client. Cheap to clone (shared state behind an `Arc`); safe to use
/// from several tasks: re-authentication is serialised, so concurrent 401s cause one auth
/// request.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.inner.servers)
            .field("key", &self.inner.key.kind())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: ClientConfig,
    /// `config.servers` without trailing slashes.
    servers: Vec<String>,
    http: http::HttpClient,
    tls: Arc<rustls::ClientConfig>,
    /// The environment's proxies, read once in [`Client::new`]; the downloader shares them.
    proxies: Arc<ProxyEnv>,
    key: DeviceKey,
    /// The identity attributes as a JSON object text (keys sorted): the auth `id_data`.
    id_data: String,
    session: tokio::sync::Mutex<Option<auth::Session>>,
    /// The latest token (or `None` after a refusal), for [`Client::authorization`].
    #[cfg(feature = "dbus")]
    authorization: tokio::sync::watch::Sender<Option<auth::Authorization>>,
    /// SHA-256 of the last inventory body the server accepted (since the last auth).
    inventory_sent: std::sync::Mutex<Option<[u8; 32]>>,
}

impl Client {
    /// Builds a client: checks the configuration, loads the TLS settings, reads the proxy
    /// variables ([`ProxyEnv::from_env`]), serialises the identity (keys sorted). No network
    /// traffic until the first call; the first call authenticates.
    pub fn new(
        config: ClientConfig,
        key: DeviceKey,
        identity: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ClientError> {
        let proxies = ProxyEnv::from_env().map_err(|e| ClientError::Config(e.to_string()))?;
        Self::with_proxies(config, key, identity, proxies)
    }

    /// As [`Client::new`] with the given proxies instead of the environment's.
    pub fn with_proxies(
        config: ClientConfig,
        key: DeviceKey,
        identity: &serde_json::Map<String, serde_json::Value>,
        proxies: ProxyEnv,
    ) -> Result<Self, ClientError> {
        config.validate().map_err(ClientError::Config)?;
        let sorted: BTreeMap<&String, &serde_json::Value> = identity.iter().collect();
        let id_data = serde_json::to_string(&sorted)
            .map_err(|e| ClientError::Config(format!("identity: {e}")))?;
        let tls = tls::client_config(&config.tls)?;
        if !proxies.is_empty() {
            tracing::info!("proxies from the environment: {}", proxies.describe());
        }
        let proxies = Arc::new(proxies);
        let http = http::build_client(tls.clone(), config.timeouts.connect, proxies.clone());
        let servers = config
            .servers
            .iter()
            .map(|s| s.trim_end_matches('/').to_string())
            .collect();
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                servers,
                http,
                tls,
                proxies,
                key,
                id_data,
                session: tokio::sync::Mutex::new(None),
                #[cfg(feature = "dbus")]
                authorization: tokio::sync::watch::Sender::new(None),
                inventory_sent: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The `id_data` text sent in auth requests.
    pub fn id_data(&self) -> &str {
        &self.inner.id_data
    }

    /// A downloader for presigned artifact URLs: same TLS trust, its own connection pool,
    /// never an `Authorization` header.
    pub fn downloader(&self) -> Downloader {
        Downloader::with_tls(
            self.inner.tls.clone(),
            self.inner.proxies.clone(),
            self.inner.config.timeouts.connect,
            self.inner.config.download.clone(),
            &self.inner.config.user_agent,
        )
    }
}
