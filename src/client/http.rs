//! The HTTP layer: a hyper-util client over hyper-rustls, and one bounded exchange
//! (request sent, head and capped body read, all under one timeout). No authentication
//! here: the API client adds its `Authorization` header, the download path never does.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

use super::error::{chain, Call, ClientError, ServerMessage};
use super::proxy::{ProxyConnector, ProxyEnv, ProxyError};

/// Request body type of every call.
pub(crate) type Body = Full<Bytes>;

/// A pooled HTTP/1.1 client for `https://` (and plain `http://`, for local tests), direct
/// or through the environment's proxies ([`super::proxy`]).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<ProxyConnector>, Body>,
    proxies: Arc<ProxyEnv>,
}

impl HttpClient {
    /// Sends a request. A plain `http://` request that a proxy forwards carries the
    /// proxy's `Proxy-Authorization` (an `https://` one has it on the `CONNECT` only).
    pub fn request(&self, mut req: Request<Body>) -> ResponseFuture {
        if req.uri().scheme_str() == Some("http") {
            if let Some(auth) = self
                .proxies
                .proxy_for(req.uri())
                .and_then(|p| p.authorization())
            {
                req.headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
            }
        }
        self.client.request(req)
    }

    /// For a 401/407 that a forwarding proxy gave a plain `http://` request to `uri`: the
    /// error naming the proxy (`host:port`, never its credentials).
    fn proxy_refusal(&self, uri: &http::Uri, status: StatusCode) -> Option<ProxyError> {
        if status != StatusCode::PROXY_AUTHENTICATION_REQUIRED || uri.scheme_str() != Some("http") {
            return None;
        }
        let proxy = self.proxies.proxy_for(uri).filter(|p| p.forwards_http())?;
        Some(ProxyError::AuthRequired {
            proxy: proxy.to_string(),
            with_credentials: proxy.authorization().is_some(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
        })
    }
}

/// Builds a client. `connect_timeout` bounds each TCP connect and, through a proxy, the
/// `CONNECT` exchange; TLS and everything after are bounded by the caller's exchange
/// timeout.
pub(crate) fn build_client(
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    proxies: Arc<ProxyEnv>,
) -> HttpClient {
    let mut http = super::proxy::tcp_connector(connect_timeout);
    http.set_nodelay(true);
    // Keepalive probes let the kernel notice a dead peer on an idle pooled connection.
    http.set_keepalive(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector::new(http, proxies.clone(), connect_timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https);
    HttpClient { client, proxies }
}

/// A complete answer: status, headers and the (capped) body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The server's error text and request id, from the JSON body or the header.
    pub fn server_message(&self) -> ServerMessage {
        server_message(&self.headers, &self.body)
    }
}

/// Extracts `{"error", "request_id"}` (both optional, body may be anything) and the
/// `X-MEN-RequestID` header. The error text is cut to 500 characters.
pub(crate) fn server_message(headers: &HeaderMap, body: &[u8]) -> ServerMessage {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Option<String>,
        request_id: Option<String>,
    }
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    let header_id = headers
        .get(mender_api::error::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (error, body_id) = match parsed {
        Some(b) => (b.error, b.request_id),
        None => (None, None),
    };
    ServerMessage {
        error: error.map(|e| e.chars().take(500).collect()),
        request_id: body_id.or(header_id),
    }
}

/// Sends `req` and reads the answer, whole, within `timeout`; bodies over `limit` bytes
/// fail with [`ClientError::TooLarge`]. `path` (no query) names the call in errors.
pub(crate) async fn exchange(
    client: &HttpClient,
    req: Request<Body>,
    limit: usize,
    timeout: Duration,
    call: Call,
    path: &str,
) -> Result<Answer, ClientError> {
    let uri = req.uri().clone();
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| ClientError::Transport {
                call,
                path: path.to_string(),
                detail: chain(&e),
            })?;
        if let Some(e) = client.proxy_refusal(&uri, resp.status()) {
            return Err(ClientError::Transport {
                call,
                path: path.to_string(),
                detail: e.to_string(),
            });
        }
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    ClientError::TooLarge {
                        call,
                        path: path.to_string(),
                        limit,
                    }
                } else {
                    ClientError::Transport {
                        call,
                        path: path.to_string(),
                        detail: format!("reading the body: {}", chain(e.as_ref())),
                    }
                }
            })?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout {
            call,
            path: path.to_string(),
            timeout,
        }),
    }
}

/// Percent-encodes one query value (`application/x-www-form-urlencoded`, as Go's
/// `url.Values.Encode` does: unreserved characters kept, space as `+`).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub(crate) fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A plain `http://` call through a forwarding proxy: absolute-form request line and
    /// the proxy's credentials; a 407 from it names the proxy, not the credentials.
    #[tokio::test]
    async fn http_is_forwarded_with_proxy_credentials() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut heads = Vec::new();
            for answer in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
                &b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"[..],
            ] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                heads.push(String::from_utf8_lossy(&buf[..n]).to_string());
                s.write_all(answer).await.unwrap();
            }
            heads
        });
        let proxies = ProxyEnv::from_lookup(|k| {
            (k == "HTTP_PROXY").then(|| format!("http://u:s3cret@{addr}"))
        })
        .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let client = build_client(Arc::new(tls), Duration::from_secs(5), Arc::new(proxies));
        let get = |url: &str| {
            Request::get(url)
                .header(http::header::CONNECTION, "close")
                .body(Body::default())
                .unwrap()
        };
        let t = Duration::from_secs(5);
        let a = exchange(
            &client,
            get("http://10.9.9.9:8080/x?q=1"),
            100,
            t,
            Call::Inventory,
            "/x",
        )
        .await
        .unwrap();
        assert_eq!(&a.body[..], b"ok");
        let e = exchange(
            &client,
            get("http://10.9.9.9:8080/y"),
            100,
            t,
            Call::Inventory,
            "/y",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("proxy {addr} refused the credentials")),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let heads = server.await.unwrap();
        assert!(
            heads[0].starts_with("GET http://10.9.9.9:8080/x?q=1 HTTP/1.1\r\n"),
            "{}",
            heads[0]
        );
        // base64("u:s3cret")
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains("proxy-authorization: basic dtpzm2nyzxq="),
            "{}",
            heads[0]
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(form_encode("release-1"), "release-1");
        assert_eq!(form_encode("a b&c=d/é+"), "a+b%26c%3Dd%2F%C3%A9%2B");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(path_segment("3fa85f64-5717"), "3fa85f64-5717");
    }

    #[test]
    fn server_message_from_body_or_header() {
        let mut h = HeaderMap::new();
        h.insert("x-men-requestid", "hdr-id".parse().unwrap());
        let m = server_message(&h, br#"{"error":"nope","request_id":"body-id"}"#);
        assert_eq!(m.error.as_deref(), Some("nope"));
        assert_eq!(m.request_id.as_deref(), Some("body-id"));
        let m = server_message(&h, b"<html>");
        assert_eq!(m.error, None);
        assert_eq!(m.request_id.as_deref(), Some("hdr-id"));
        assert_eq!(m.to_string(), " (request id hdr-id)");
    }
}
