//! The resumable artifact download against a tiny scripted HTTP/1.1 server of our own
//! (raw TCP on 127.0.0.1:0, or TLS over it, so a test can cut a connection at an exact
//! byte, reset it, redirect, or
//! stall it). Each connection serves one request by the next action of the script.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mender_bridge::client::{
    Backoff, Client, ClientConfig, Download, DownloadConfig, DownloadError, Downloader, RefreshUrl,
    TlsConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[cfg(feature = "sim")]
type TlsAcceptor = tokio_rustls::TlsAcceptor;
/// TLS needs the `sim` feature (rcgen, tokio-rustls); without it no server is TLS.
#[cfg(not(feature = "sim"))]
enum TlsAcceptor {}
#[cfg(not(feature = "sim"))]
impl TlsAcceptor {
    async fn accept(&self, _: TcpStream) -> std::io::Result<TcpStream> {
        match *self {}
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Act {
    /// Serve the requested range (206 with `Range`, else 200).
    Serve,
    /// Like `Serve`, but close the connection (FIN) once the file offset reaches `at`.
    CutAt(u64),
    /// Like `CutAt`, with an RST (SO_LINGER 0) instead of a FIN.
    ResetAt(u64),
    /// Like `Serve`, but stop sending at `at` and keep the connection open.
    StallAt(u64),
    /// 200 with the whole file, whatever the `Range`.
    IgnoreRange,
    /// 206 whose Content-Range starts `n` bytes after the requested offset.
    RangeAfterOffset(u64),
    /// 206 whose Content-Range total is one byte more than the file.
    WrongTotal,
    /// A bare status with an empty body.
    Status(u16),
    /// A redirect (`code`) with this `Location`; `{base}` stands for the server's own
    /// `scheme://addr`.
    Redirect(u16, String),
}

fn redirect(code: u16, location: &str) -> Act {
    Act::Redirect(code, location.to_string())
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    range: Option<String>,
    authorization: bool,
}

struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests whose target contains this are answered 403 (an expired link).
    expired: Arc<Mutex<Option<String>>>,
}

/// A connection the server can answer on, and reset.
trait Wire: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {
    /// Closes with an RST (SO_LINGER 0).
    fn reset(self) -> std::io::Result<()>;
}

impl Wire for TcpStream {
    fn reset(self) -> std::io::Result<()> {
        self.set_zero_linger()
    }
}

impl Server {
    async fn start(data: Arc<Vec<u8>>, script: Vec<Act>) -> Server {
        Self::start_with(data, script, None).await
    }

    /// With `tls`, every connection is TLS (`https://`).
    async fn start_with(
        data: Arc<Vec<u8>>,
        script: Vec<Act>,
        tls: Option<Arc<TlsAcceptor>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expired: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (s, v, x) = (script.clone(), seen.clone(), expired.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (data, s, v, x) = (data.clone(), s.clone(), v.clone(), x.clone());
                let (tls, base) = (tls.clone(), base.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        None => serve(sock, &base, data, s, v, x).await,
                        Some(tls) => match tls.accept(sock).await {
                            Ok(sock) => serve(sock, &base, data, s, v, x).await,
                            Err(_) => Ok(()),
                        },
                    };
                });
            }
        });
        Server {
            addr,
            scheme,
            seen,
            expired,
        }
    }

    fn url(&self, query: &str) -> String {
        format!("{}://{}/artifacts/a.mender?{query}", self.scheme, self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve<S: Wire>(
    mut sock: S,
    base: &str,
    data: Arc<Vec<u8>>,
    script: Arc<Mutex<VecDeque<Act>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    expired: Arc<Mutex<Option<String>>>,
) -> std::io::Result<()> {
    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let mut range = None;
    let mut authorization = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = true,
                _ => {}
            }
        }
    }
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        range: range.clone(),
        authorization,
    });
    let expired_now = expired
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|x| target.contains(x.as_str()));
    let act = if expired_now {
        Act::Status(403)
    } else {
        script.lock().unwrap().pop_front().unwrap_or(Act::Serve)
    };
    let total = data.len() as u64;
    let offset: u64 = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let (status, start, content_range) = match &act {
        Act::Status(code) => {
            let resp =
                format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            sock.write_all(resp.as_bytes()).await?;
            sock.shutdown().await?;
            return Ok(());
        }
        Act::Redirect(code, location) => {
            let location = location.replace("{base}", base);
            let resp = format!(
                "HTTP/1.1 {code} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
            sock.write_all(resp.as_bytes()).await?;
            sock.shutdown().await?;
            return Ok(());
        }
        Act::IgnoreRange => ("200 OK", 0, None),
        Act::RangeAfterOffset(n) => (
            "206 Partial Content",
            offset + n,
            Some(format!("bytes {}-{}/{total}", offset + n, total - 1)),
        ),
        Act::WrongTotal => (
            "206 Partial Content",
            offset,
            Some(format!("bytes {offset}-{}/{}", total - 1, total + 1)),
        ),
        _ if range.is_some() => (
            "206 Partial Content",
            offset,
            Some(format!("bytes {offset}-{}/{total}", total - 1)),
        ),
        _ => ("200 OK", 0, None),
    };
    let body = &data[start as usize..];
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(cr) = content_range {
        resp.push_str(&format!("Content-Range: {cr}\r\n"));
    }
    resp.push_str("\r\n");
    sock.write_all(resp.as_bytes()).await?;
    let stop = |at: u64| (at.saturating_sub(start) as usize).min(body.len());
    match act {
        Act::CutAt(at) => {
            sock.write_all(&body[..stop(at)]).await?;
            sock.flush().await?;
            sock.shutdown().await?;
        }
        Act::ResetAt(at) => {
            sock.write_all(&body[..stop(at)]).await?;
            sock.flush().await?;
            // Let the bytes leave before the reset discards anything unsent.
            tokio::time::sleep(Duration::from_millis(50)).await;
            // SO_LINGER 0: closing sends RST.
            sock.reset()?;
        }
        Act::StallAt(at) => {
            sock.write_all(&body[..stop(at)]).await?;
            sock.flush().await?;
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        _ => {
            sock.write_all(body).await?;
            sock.flush().await?;
        }
    }
    Ok(())
}

fn test_data(len: usize) -> Arc<Vec<u8>> {
    // Incompressible and position-dependent, so any misplaced byte shows.
    Arc::new(common::image(len, 0x9E37_79B9_7F4A_7C15))
}

fn config() -> DownloadConfig {
    DownloadConfig {
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(400),
        max_resume_attempts: 5,
        resume_backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(80),
            repeats: 1,
            max_tries: None,
        },
        max_url_refreshes: 2,
    }
}

fn downloader(cfg: DownloadConfig) -> Downloader {
    Downloader::new(&TlsConfig::default(), Duration::from_secs(5), cfg).unwrap()
}

async fn read_all(d: Download) -> (Vec<u8>, Option<std::io::Error>) {
    let mut r = d.into_reader();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn assert_no_authorization(s: &Server) {
    let seen = s.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| !r.authorization),
        "an Authorization header reached the download server: {seen:?}"
    );
}

const SIZE: usize = 1024 * 1024 + 123;

#[tokio::test]
async fn resumes_across_three_cuts_from_the_exact_offset() {
    let data = test_data(SIZE);
    let s = Server::start(
        data.clone(),
        vec![
            Act::CutAt(100_000),
            Act::ResetAt(400_000),
            Act::CutAt(800_003),
        ],
    )
    .await;
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    assert_eq!(d.total_len(), SIZE as u64);
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data, "the stream differs from the original bytes");
    let seen = s.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    // The reset may drop bytes in flight; the resume starts where delivery stopped.
    let reset_offset: u64 = seen[2].range.as_deref().unwrap()[6..]
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(
        (100_000..=400_000).contains(&reset_offset),
        "{reset_offset}"
    );
    assert_eq!(seen[3].range.as_deref(), Some("bytes=800003-"));
    assert_eq!(stats.resumes(), 3);
    assert_eq!(stats.delivered(), SIZE as u64);
    assert_eq!(stats.fetched(), SIZE as u64, "nothing re-fetched");
    assert_eq!(stats.refetched(), 0);
    eprintln!(
        "three cuts: size {SIZE}, fetched {}, re-fetched {}, requests {}",
        stats.fetched(),
        stats.refetched(),
        stats.requests()
    );
    assert_no_authorization(&s);
}

#[tokio::test]
async fn idle_timeout_ends_a_stalled_connection_and_resumes() {
    let data = test_data(SIZE);
    let s = Server::start(data.clone(), vec![Act::StallAt(300_000)]).await;
    let t = Instant::now();
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.resumes(), 1);
    assert_eq!(s.seen()[1].range.as_deref(), Some("bytes=300000-"));
    assert_eq!(stats.fetched(), SIZE as u64);
    assert_no_authorization(&s);
}

#[tokio::test]
async fn expired_link_gets_a_fresh_url_and_continues_at_the_offset() {
    let data = test_data(SIZE);
    // The first link works until a cut; the resume finds it expired (403).
    let s = Server::start(data.clone(), vec![Act::CutAt(500_000), Act::Status(403)]).await;
    let calls = Arc::new(Mutex::new(0u32));
    let (c, fresh) = (calls.clone(), s.url("sig=new"));
    let refresh: RefreshUrl = Box::new(move || {
        *c.lock().unwrap() += 1;
        let u = fresh.clone();
        Box::pin(async move { Ok(u) })
    });
    let d = downloader(config())
        .start(&s.url("sig=old"), Some(refresh))
        .await
        .unwrap();
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(stats.url_refreshes(), 1);
    let seen = s.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[1].target.contains("sig=old"));
    assert_eq!(seen[1].range.as_deref(), Some("bytes=500000-"));
    assert!(seen[2].target.contains("sig=new"));
    assert_eq!(seen[2].range.as_deref(), Some("bytes=500000-"));
    assert_eq!(stats.fetched(), SIZE as u64);
    assert_no_authorization(&s);
}

#[tokio::test]
async fn forbidden_without_a_refresh_callback_fails_at_start() {
    let data = test_data(1000);
    let s = Server::start(data, vec![Act::Status(403)]).await;
    let e = downloader(config())
        .start(&s.url("X-Amz-Signature=topsecret"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, DownloadError::Forbidden { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("/artifacts/a.mender"), "{text}");
    assert!(!text.contains("topsecret"), "query leaked: {text}");
}

#[tokio::test]
async fn refresh_limit_is_bounded() {
    let data = test_data(1000);
    let s = Server::start(data, vec![]).await;
    *s.expired.lock().unwrap() = Some("sig=".into());
    let fresh = s.url("sig=again");
    let refresh: RefreshUrl = Box::new(move || {
        let u = fresh.clone();
        Box::pin(async move { Ok(u) })
    });
    let e = downloader(config())
        .start(&s.url("sig=old"), Some(refresh))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DownloadError::Forbidden { refreshes: 2, .. }),
        "{e}"
    );
    assert_eq!(s.seen().len(), 3);
}

#[tokio::test]
async fn a_200_to_a_range_request_discards_the_prefix() {
    let data = test_data(SIZE);
    let s = Server::start(data.clone(), vec![Act::CutAt(600_000), Act::IgnoreRange]).await;
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert_eq!(stats.fetched(), SIZE as u64 + 600_000);
    assert_eq!(stats.refetched(), 600_000);
    eprintln!(
        "200 on resume: size {SIZE}, fetched {}, re-fetched {}",
        stats.fetched(),
        stats.refetched()
    );
}

#[tokio::test]
async fn bounded_tries_end_in_a_final_error() {
    let data = test_data(SIZE);
    let mut script = vec![Act::CutAt(1000)];
    script.extend(vec![Act::Status(503); 10]);
    let s = Server::start(data.clone(), script).await;
    let mut cfg = config();
    cfg.max_resume_attempts = 3;
    let t = Instant::now();
    let d = downloader(cfg).start(&s.url("sig=1"), None).await.unwrap();
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert_eq!(got, data[..1000]);
    let err = err.expect("the download must fail, not end short");
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<DownloadError>())
        .expect("a DownloadError inside the io::Error");
    match inner {
        DownloadError::Exhausted {
            offset,
            total,
            attempts,
            last,
            ..
        } => {
            assert_eq!((*offset, *total, *attempts), (1000, SIZE as u64, 3));
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.seen().len(), 4);
    assert_eq!(stats.resumes(), 3);
    // Backoff 10, 20, 40 ms: bounded and quick.
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_dead_server_ends_in_a_final_error() {
    // Nothing listens: every connect is refused.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = config();
    cfg.max_resume_attempts = 2;
    let e = downloader(cfg)
        .start(&format!("http://{addr}/a?sig=1"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DownloadError::Exhausted { attempts: 2, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn content_range_not_covering_the_offset_fails() {
    let data = test_data(SIZE);
    let s = Server::start(
        data.clone(),
        vec![Act::CutAt(5000), Act::RangeAfterOffset(10)],
    )
    .await;
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let (got, err) = read_all(d).await;
    assert_eq!(got.len(), 5000);
    let err = err.unwrap();
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<DownloadError>()
        .unwrap();
    assert!(
        matches!(inner, DownloadError::BadContentRange { .. }),
        "{inner}"
    );

    let s = Server::start(data.clone(), vec![Act::CutAt(5000), Act::WrongTotal]).await;
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let (_, err) = read_all(d).await;
    let err = err.unwrap();
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<DownloadError>()
        .unwrap();
    assert!(
        matches!(inner, DownloadError::LengthChanged { .. }),
        "{inner}"
    );
}

#[tokio::test]
async fn not_found_is_final() {
    let s = Server::start(test_data(10), vec![Act::Status(404)]).await;
    let e = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DownloadError::Status { status: 404, .. }),
        "{e}"
    );
    assert_eq!(s.seen().len(), 1);
}

/// A device API client for `server` with the tests' download settings.
fn client_for(server: &Server) -> Client {
    let key =
        mender_bridge::keys::DeviceKey::generate(mender_bridge::keys::KeyType::Ed25519).unwrap();
    let mut cfg = ClientConfig::for_server(format!("http://{}", server.addr));
    cfg.download = config();
    let mut id = serde_json::Map::new();
    id.insert("mac".into(), "02:00:00:00:00:01".into());
    Client::new(cfg, key, &id).unwrap()
}

/// The client's downloader holds no token, even after the client authenticated: the
/// download request path is separate. (The client never authenticates here: the
/// downloader is built from it and used directly.)
#[tokio::test]
async fn client_downloader_sends_no_authorization() {
    let data = test_data(200_000);
    let s = Server::start(data.clone(), vec![Act::CutAt(50_000)]).await;
    let client = client_for(&s);
    let d = client
        .downloader()
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert_eq!(s.seen().len(), 2);
    assert_no_authorization(&s);
}

/// End to end: a signed artifact, cut three times on the wire, read and verified by the
/// artifact reader straight from the download stream.
#[tokio::test]
async fn artifact_reader_consumes_a_resumed_download() {
    use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
    use mender_artifact::{ArtifactReader, Compression, ReadOptions};

    let payload = test_data(512 * 1024);
    let spec = ArtifactSpec::rootfs("release-2", ["dev"]);
    let opts = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let file = PayloadFile::new(
        "rootfs.img",
        payload.len() as u64,
        std::io::Cursor::new(payload.as_ref().clone()),
    );
    let mut artifact = Vec::new();
    write_artifact(&mut artifact, &spec, vec![file], &opts)
        .await
        .unwrap();
    let size = artifact.len() as u64;
    let s = Server::start(
        Arc::new(artifact),
        vec![
            Act::CutAt(700),
            Act::CutAt(size / 2),
            Act::ResetAt(size - 3000),
        ],
    )
    .await;
    let d = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap();
    let stats = d.stats();
    let mut reader = ArtifactReader::open(d.into_reader(), ReadOptions::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(f) = reader.next_file().await.unwrap() {
        assert_eq!(f.name, "rootfs.img");
        while let Some(chunk) = reader.read_chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
    }
    let info = reader.finish().await.unwrap();
    assert_eq!(info.header.name, "release-2");
    assert!(got == *payload);
    assert_eq!(stats.resumes(), 3);
    assert_eq!(stats.fetched(), size);
}

#[cfg(feature = "sim")]
impl Wire for tokio_rustls::server::TlsStream<TcpStream> {
    fn reset(self) -> std::io::Result<()> {
        self.get_ref().0.set_zero_linger()
    }
}

/// Every request both servers saw, in order.
fn targets(s: &Server) -> Vec<String> {
    s.seen().into_iter().map(|r| r.target).collect()
}

/// Object storage answers the download link with a redirect; each kind is followed, relative
/// and absolute, across servers, up to five, and no request carries `Authorization` (the
/// downloader comes from a `Client`, whose download path has no token to send).
#[tokio::test]
async fn follows_up_to_five_redirects_without_authorization() {
    let data = test_data(300_000);
    let storage = Server::start(
        data.clone(),
        vec![redirect(307, "{base}/bucket/final?X-Amz-Signature=s3")],
    )
    .await;
    let to_storage = format!("http://{}/bucket/a.mender?X-Amz-Signature=s2", storage.addr);
    let origin = Server::start(
        data.clone(),
        vec![
            redirect(302, "{base}/hop2?sig=1"),
            redirect(303, "/hop3?sig=2"),
            redirect(308, "hop4?sig=3"),
            redirect(301, &to_storage),
        ],
    )
    .await;
    let client = client_for(&origin);
    let d = client
        .downloader()
        .start(&origin.url("sig=0"), None)
        .await
        .unwrap();
    assert_eq!(d.total_len(), data.len() as u64);
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert_eq!(
        targets(&origin),
        [
            "/artifacts/a.mender?sig=0",
            "/hop2?sig=1",
            "/hop3?sig=2",
            "/hop4?sig=3"
        ]
    );
    assert_eq!(
        targets(&storage),
        [
            "/bucket/a.mender?X-Amz-Signature=s2",
            "/bucket/final?X-Amz-Signature=s3"
        ]
    );
    assert_no_authorization(&origin);
    assert_no_authorization(&storage);
}

#[tokio::test]
async fn a_sixth_redirect_is_an_error() {
    let s = Server::start(
        test_data(1000),
        vec![redirect(302, "{base}/again?sig=x"); 6],
    )
    .await;
    let e = downloader(config())
        .start(&s.url("sig=secret0"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DownloadError::TooManyRedirects { limit: 5, .. }),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("more than 5 redirects"), "{text}");
    assert!(!text.contains("secret0"), "query leaked: {text}");
    assert_eq!(s.seen().len(), 6, "{:?}", s.seen());
}

#[tokio::test]
async fn a_redirect_without_a_usable_location_is_an_error() {
    let s = Server::start(test_data(1000), vec![redirect(302, "ftp://elsewhere/x")]).await;
    let e = downloader(config())
        .start(&s.url("sig=1"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, DownloadError::BadRedirect { .. }), "{e}");
}

/// A resume starts again at the URL the download was given (or the fresh one after a 403),
/// not at a redirect's target: a target is often a short-lived signed URL of its own, the
/// original link is the stable one. The redirect is followed again, and the `Range` goes
/// with it.
#[tokio::test]
async fn a_resume_follows_the_redirect_again_from_the_original_url() {
    let data = test_data(SIZE);
    let storage = Server::start(data.clone(), vec![Act::CutAt(300_000), Act::Serve]).await;
    let to_storage = format!("http://{}/bucket/a.mender?X-Amz-Signature=s", storage.addr);
    let origin = Server::start(
        data.clone(),
        vec![redirect(302, &to_storage), redirect(307, &to_storage)],
    )
    .await;
    let d = downloader(config())
        .start(&origin.url("sig=1"), None)
        .await
        .unwrap();
    let stats = d.stats();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    let ranges = |s: &Server| s.seen().into_iter().map(|r| r.range).collect::<Vec<_>>();
    assert_eq!(
        ranges(&origin),
        [None, Some("bytes=300000-".to_string())],
        "the resume goes to the original URL"
    );
    assert_eq!(ranges(&storage), [None, Some("bytes=300000-".to_string())]);
    assert_eq!(stats.resumes(), 1);
    assert_eq!(stats.fetched(), SIZE as u64, "nothing re-fetched");
    assert_no_authorization(&origin);
    assert_no_authorization(&storage);
}

/// HTTPS to HTTPS is followed; HTTPS to plain HTTP is refused before anything is sent.
#[cfg(feature = "sim")]
#[tokio::test]
async fn a_redirect_never_goes_from_https_to_http() {
    use rcgen::{CertificateParams, KeyPair, SanType};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    let cert = params.self_signed(&key).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = Arc::new(tokio_rustls::TlsAcceptor::from(Arc::new(server_config)));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let tls = TlsConfig {
        server_certificate: Some(ca),
        ..TlsConfig::default()
    };
    let dl = Downloader::new(&tls, Duration::from_secs(5), config()).unwrap();

    let data = test_data(100_000);
    let plain = Server::start(data.clone(), vec![]).await;
    let secure = Server::start_with(data.clone(), vec![], Some(acceptor.clone())).await;
    let origin = Server::start_with(
        data.clone(),
        vec![
            redirect(302, &secure.url("to=https")),
            redirect(302, &plain.url("to=http")),
        ],
        Some(acceptor),
    )
    .await;

    let d = dl.start(&origin.url("sig=1"), None).await.unwrap();
    let (got, err) = read_all(d).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == *data);
    assert_eq!(secure.seen().len(), 1);

    let e = dl.start(&origin.url("sig=2"), None).await.unwrap_err();
    assert!(matches!(e, DownloadError::InsecureRedirect { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("https") && text.contains("http"), "{text}");
    assert!(!text.contains("to=http"), "query leaked: {text}");
    assert!(
        plain.seen().is_empty(),
        "a request went out over plain HTTP"
    );
    assert_no_authorization(&origin);
    assert_no_authorization(&secure);
}
