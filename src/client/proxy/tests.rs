use std::collections::HashMap;

use super::*;

fn env(vars: &[(&str, &str)]) -> ProxyEnv {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxyEnv::from_lookup(|k| map.get(k).cloned()).expect("proxy env")
}

fn via(e: &ProxyEnv, url: &str) -> Option<String> {
    e.proxy_for(&url.parse().expect("uri"))
        .map(|p| p.to_string())
}

#[test]
fn scheme_picks_the_variable_upper_case_first() {
    let e = env(&[
        ("HTTPS_PROXY", "http://sp:3128"),
        ("https_proxy", "http://lower:1"),
        ("http_proxy", "hp:8080"),
    ]);
    assert_eq!(via(&e, "https://m.example/x").as_deref(), Some("sp:3128"));
    assert_eq!(via(&e, "http://m.example/x").as_deref(), Some("hp:8080"));
    let only_http = env(&[("HTTP_PROXY", "http://hp")]);
    assert_eq!(via(&only_http, "https://m.example"), None, "no fallback");
    assert_eq!(
        via(&only_http, "http://m.example").as_deref(),
        Some("hp:80")
    );
    let lower = env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://low:9")]);
    assert_eq!(via(&lower, "https://m.example").as_deref(), Some("low:9"));
}

#[test]
fn loopback_and_localhost_are_never_proxied() {
    let e = env(&[("HTTPS_PROXY", "http://p:1")]);
    for u in [
        "https://localhost:8443",
        "https://127.0.0.1",
        "https://127.9.9.9:1",
        "https://[::1]:443",
        "https://[::ffff:127.0.0.1]/",
    ] {
        assert_eq!(via(&e, u), None, "{u}");
    }
    assert!(via(&e, "https://10.0.0.1").is_some());
}

#[test]
fn no_proxy_rules() {
    let e = env(&[
        ("HTTPS_PROXY", "http://p:1"),
        (
            "NO_PROXY",
            " Example.com, .sub.org,*.star.net, 10.1.0.0/16, 192.168.1.5, 192.168.1.6:8443, \
             ports.io:444, [fd00::1]:443, fd00::2, bad/xx,",
        ),
    ]);
    let direct = [
        "https://example.com",
        "https://a.b.example.com",
        "https://x.sub.org",
        "https://x.star.net",
        "https://10.1.200.3",
        "https://192.168.1.5:1234",
        "https://192.168.1.6:8443",
        "https://ports.io:444",
        "https://[fd00::1]",
        "https://[fd00::2]:9",
    ];
    for u in direct {
        assert_eq!(via(&e, u), None, "{u} goes direct");
    }
    let proxied = [
        "https://notexample.com",
        "https://sub.org",
        "https://star.net",
        "https://10.2.0.1",
        "https://192.168.1.6",
        "https://ports.io",
        "https://[fd00::1]:8443",
    ];
    for u in proxied {
        assert!(via(&e, u).is_some(), "{u} goes through the proxy");
    }
    let all = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "x.com,*")]);
    assert_eq!(via(&all, "https://anything.example"), None);
}

#[test]
fn credentials_become_basic_auth_and_never_show() {
    let e = env(&[("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.lan:3128")]);
    let p = e.proxy_for(&"https://m.example".parse().unwrap()).unwrap();
    let auth = p.authorization().expect("auth");
    assert!(auth.is_sensitive());
    // base64("us@er:p:ss")
    assert_eq!(auth.to_str().unwrap(), "Basic dXNAZXI6cDpzcw==");
    for shown in [
        p.to_string(),
        format!("{p:?}"),
        format!("{e:?}"),
        e.describe(),
    ] {
        assert!(
            !shown.contains("p%3Ass") && !shown.contains("p:ss"),
            "{shown}"
        );
        assert!(!shown.contains("dXNAZXI6"), "{shown}");
    }
    assert_eq!(p.to_string(), "proxy.lan:3128");
}

#[test]
fn unsupported_and_invalid_values() {
    let map = |k: &str, v: &str| {
        let (k, v) = (k.to_string(), v.to_string());
        move |name: &str| (name == k).then(|| v.clone())
    };
    let e = ProxyEnv::from_lookup(map("HTTPS_PROXY", "https://u:secret@p:443")).unwrap_err();
    assert!(e.to_string().contains("\"https\""), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    // SOCKS5: port 1080 by default, both kinds of request, credentials never shown and
    // never sent as an HTTP header.
    let env = ProxyEnv::from_lookup(|n: &str| {
        matches!(n, "HTTPS_PROXY" | "HTTP_PROXY").then(|| "socks5://u:s%40cret@p".to_string())
    })
    .unwrap();
    for uri in ["https://mender.example.com/", "http://mender.example.com/"] {
        let p = env.proxy_for(&uri.parse().unwrap()).expect(uri);
        assert_eq!(p.to_string(), "socks5://p:1080");
        assert!(p.authorization().is_none() && !p.forwards_http());
        assert!(!format!("{p:?}").contains("cret"), "{p:?}");
    }
    let long = format!("socks5://{}:p@h", "u".repeat(256));
    // A user name RFC 1929 cannot carry: ignored with a warning, as an unusable value.
    assert!(ProxyEnv::from_lookup(map("HTTPS_PROXY", &long))
        .unwrap()
        .is_empty());
    let ignored = ProxyEnv::from_lookup(map("HTTPS_PROXY", "http://bad host:1")).unwrap();
    assert!(ignored.is_empty());
}

#[test]
fn split_host_port_like_go() {
    assert_eq!(split_host_port("a.b:80"), Some(("a.b", "80")));
    assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", "80")));
    assert_eq!(split_host_port("::1"), None);
    assert_eq!(split_host_port("a.b"), None);
}

async fn fake_proxy(
    answer: &'static [u8],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = vec![0u8; 4096];
        let n = s.read(&mut got).await.unwrap();
        got.truncate(n);
        if !answer.is_empty() {
            s.write_all(answer).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        got
    });
    (addr, task)
}

fn proxy_at(addr: std::net::SocketAddr, creds: &str) -> Proxy {
    Proxy::parse("HTTPS_PROXY", &format!("http://{creds}{addr}"))
        .unwrap()
        .unwrap()
}

async fn connect(addr: std::net::SocketAddr) -> TokioIo<TcpStream> {
    TokioIo::new(TcpStream::connect(addr).await.unwrap())
}

#[tokio::test]
async fn tunnel_sends_connect_with_auth_and_reads_the_answer() {
    let (addr, task) = fake_proxy(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
    let p = proxy_at(addr, "u:pw@");
    tunnel(connect(addr).await, &p, "10.0.0.1:443")
        .await
        .expect("tunnel");
    let req = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(
        req.starts_with("CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n"),
        "{req}"
    );
    assert!(
        req.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
        "{req}"
    );
}

#[tokio::test]
async fn tunnel_refusals_name_the_proxy_and_status() {
    let (addr, _t) = fake_proxy(
        b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
    )
    .await;
    let e = tunnel(
        connect(addr).await,
        &proxy_at(addr, "u:topsecret@"),
        "h:443",
    )
    .await
    .unwrap_err();
    let t = e.to_string();
    assert!(t.contains(&addr.to_string()) && t.contains("407"), "{t}");
    assert!(!t.contains("topsecret"), "{t}");
    let (addr, _t) = fake_proxy(b"HTTP/1.1 403 Filtered\r\n\r\n").await;
    let e = tunnel(connect(addr).await, &proxy_at(addr, ""), "h:443")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 403 Filtered"), "{e}");
    let (addr, _t) = fake_proxy(b"SSH-2.0-nope\r\n\r\n").await;
    let e = tunnel(connect(addr).await, &proxy_at(addr, ""), "h:443")
        .await
        .unwrap_err();
    assert!(matches!(e, ProxyError::BadAnswer { .. }), "{e}");
}

#[tokio::test]
async fn tunnel_head_is_bounded() {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let big = BIG.get_or_init(|| {
        let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
        v.extend(std::iter::repeat_n(b'x', MAX_PROXY_HEAD + 10));
        v
    });
    let (addr, _t) = fake_proxy(big).await;
    let e = tunnel(connect(addr).await, &proxy_at(addr, ""), "h:443")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("over"), "{e}");
}

#[tokio::test]
async fn connector_times_out_a_silent_proxy() {
    let (addr, _t) = fake_proxy(b"").await;
    let env = Arc::new(env(&[("HTTPS_PROXY", &format!("http://{addr}"))]));
    let mut c = ProxyConnector::new(HttpConnector::new(), env, Duration::from_millis(200));
    let e = tower_service::Service::call(&mut c, "https://10.9.9.9/".parse().unwrap())
        .await
        .expect_err("timeout");
    assert!(e.to_string().contains("no answer to CONNECT"), "{e}");
}
