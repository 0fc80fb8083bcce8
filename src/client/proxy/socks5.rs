//! SOCKS5 `CONNECT` (RFC 1928) with username/password authentication (RFC 1929), as Go's
//! `net/http` speaks it to a `socks5://` proxy: it offers "no authentication" and, when
//! the proxy URL has `user:pass@`, "username/password"; the target's host name goes to the
//! proxy, which resolves it (an IP literal goes as an address).
//!
//! Invariants: every length read from the proxy is bounded by the protocol (the reply is
//! at most 262 bytes); the credentials are never in an error or `Debug` output; the
//! caller bounds the whole exchange with its tunnel timeout.

use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

/// The protocol version byte.
const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// The proxy URL's user name and password (RFC 1929: at most 255 bytes each); `Debug`
/// shows neither.
#[derive(Clone)]
pub struct Credentials {
    user: Zeroizing<Vec<u8>>,
    pass: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

impl Credentials {
    /// `None` when either is over 255 bytes (RFC 1929 cannot carry it).
    pub fn new(user: Vec<u8>, pass: Vec<u8>) -> Option<Self> {
        (user.len() <= 255 && pass.len() <= 255).then(|| Credentials {
            user: Zeroizing::new(user),
            pass: Zeroizing::new(pass),
        })
    }
}

/// Why the proxy did not open the connection (names neither the credentials nor more
/// than the proxy's reply code).
#[derive(Debug, thiserror::Error)]
pub enum Socks5Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The proxy wants a method we do not offer (it requires credentials, or others).
    #[error("no authentication method accepted")]
    NoAcceptableMethod,
    /// RFC 1929: the proxy refused the user name and password.
    #[error("the user name and password were refused")]
    CredentialsRefused,
    /// The proxy refused the connection; `code` is its reply code.
    #[error("{} (SOCKS5 reply {code})", reply_meaning(*code))]
    Refused { code: u8 },
    /// Not a SOCKS5 answer (the detail names the field).
    #[error("{0}")]
    BadAnswer(String),
    /// The target host name is over 255 bytes.
    #[error("host name over 255 bytes")]
    HostTooLong,
}

/// RFC 1928 §6's reply codes.
fn reply_meaning(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// Asks the proxy on `stream` for a connection to `host:port` (`host` as in a URI, an
/// IPv6 address possibly in brackets); on `Ok` the stream carries the connection.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: Option<&Credentials>,
    host: &str,
    port: u16,
) -> Result<(), Socks5Error> {
    let greeting: &[u8] = match credentials {
        Some(_) => &[VERSION, 2, NO_AUTH, USER_PASS],
        None => &[VERSION, 1, NO_AUTH],
    };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice[0] != VERSION {
        return Err(Socks5Error::BadAnswer(format!(
            "version {} in the method choice (a SOCKS5 proxy answers 5)",
            choice[0]
        )));
    }
    match (choice[1], credentials) {
        (NO_AUTH, _) => {}
        (USER_PASS, Some(c)) => authenticate(stream, c).await?,
        (NO_ACCEPTABLE, _) => return Err(Socks5Error::NoAcceptableMethod),
        (m, _) => {
            return Err(Socks5Error::BadAnswer(format!(
                "method {m:#04x}, which was not offered"
            )))
        }
    }
    stream.write_all(&request(host, port)?).await?;
    read_reply(stream).await
}

/// RFC 1929's sub-negotiation.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    c: &Credentials,
) -> Result<(), Socks5Error> {
    let mut msg = Zeroizing::new(Vec::with_capacity(3 + c.user.len() + c.pass.len()));
    msg.push(1);
    msg.push(c.user.len() as u8);
    msg.extend_from_slice(&c.user);
    msg.push(c.pass.len() as u8);
    msg.extend_from_slice(&c.pass);
    stream.write_all(&msg).await?;
    let mut status = [0u8; 2];
    stream.read_exact(&mut status).await?;
    match status {
        [1, 0] => Ok(()),
        [1, _] => Err(Socks5Error::CredentialsRefused),
        [v, _] => Err(Socks5Error::BadAnswer(format!(
            "version {v} in the authentication status (RFC 1929 says 1)"
        ))),
    }
}

/// The `CONNECT` request for `host:port`.
fn request(host: &str, port: u16) -> Result<Vec<u8>, Socks5Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut req = vec![VERSION, CONNECT, 0];
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            req.push(ATYP_V4);
            req.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            req.push(ATYP_V6);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let len = u8::try_from(bare.len()).map_err(|_| Socks5Error::HostTooLong)?;
            req.push(ATYP_DOMAIN);
            req.push(len);
            req.extend_from_slice(bare.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

/// The reply: version, code, reserved, and the bound address (read and dropped, its
/// length fixed by its type or by one length byte).
async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(), Socks5Error> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    let [version, code, _, atyp] = head;
    if version != VERSION {
        return Err(Socks5Error::BadAnswer(format!(
            "version {version} in the reply (a SOCKS5 proxy answers 5)"
        )));
    }
    if code != 0 {
        return Err(Socks5Error::Refused { code });
    }
    let addr_len = match atyp {
        ATYP_V4 => 4,
        ATYP_V6 => 16,
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await?;
            usize::from(len[0])
        }
        t => {
            return Err(Socks5Error::BadAnswer(format!(
                "address type {t} in the reply"
            )))
        }
    };
    let mut rest = [0u8; 255 + 2];
    stream.read_exact(&mut rest[..addr_len + 2]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `connect` against a scripted proxy: `answers` are written as the client's
    /// messages arrive; returns the result and everything the client sent.
    async fn exchange(
        answers: Vec<u8>,
        credentials: Option<Credentials>,
        host: &str,
    ) -> (Result<(), Socks5Error>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(4096);
        server.write_all(&answers).await.unwrap();
        server.shutdown().await.unwrap();
        let r = connect(&mut client, credentials.as_ref(), host, 443).await;
        drop(client);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        (r, sent)
    }

    fn creds() -> Credentials {
        Credentials::new(b"bridge".to_vec(), b"s3cret".to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_host_name_goes_to_the_proxy_with_the_credentials() {
        let answers = [&[5, 2][..], &[1, 0], &[5, 0, 0, 1, 10, 0, 0, 1, 0x01, 0xbb]].concat();
        let (r, sent) = exchange(answers, Some(creds()), "mender.example.com").await;
        r.unwrap();
        let mut want = vec![5, 2, 0, 2, 1, 6];
        want.extend_from_slice(b"bridge");
        want.push(6);
        want.extend_from_slice(b"s3cret");
        want.extend_from_slice(&[5, 1, 0, 3, 18]);
        want.extend_from_slice(b"mender.example.com");
        want.extend_from_slice(&[1, 0xbb]);
        assert_eq!(sent, want);
    }

    #[tokio::test]
    async fn ip_literals_go_as_addresses_and_no_auth_is_offered_without_credentials() {
        let reply = [
            5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80,
        ];
        let answers = [&[5, 0][..], &reply].concat();
        let (r, sent) = exchange(answers, None, "[::1]").await;
        r.unwrap();
        let mut want = vec![5, 1, 0, 5, 1, 0, 4];
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(&[1, 1, 0xbb]);
        assert_eq!(sent, want);
        let answers = [&[5, 0][..], &[5, 0, 0, 3, 2, b'a', b'b', 0, 80]].concat();
        let (r, sent) = exchange(answers, None, "10.1.2.3").await;
        r.unwrap();
        assert_eq!(sent[3..], [5, 1, 0, 1, 10, 1, 2, 3, 1, 0xbb]);
    }

    #[tokio::test]
    async fn refusals_say_what_the_proxy_said_without_the_password() {
        let (r, _) = exchange(vec![5, 2, 1, 1], Some(creds()), "h").await;
        let e = r.unwrap_err();
        assert!(matches!(e, Socks5Error::CredentialsRefused), "{e:?}");
        assert!(!format!("{e} {e:?} {:?}", creds()).contains("s3cret"));
        let (r, _) = exchange(vec![5, 0xff], None, "h").await;
        assert!(matches!(r, Err(Socks5Error::NoAcceptableMethod)));
        let (r, _) = exchange(vec![5, 0, 5, 5, 0, 1], None, "h").await;
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "connection refused (SOCKS5 reply 5)");
        let (r, _) = exchange(b"HTTP/1.1 400 Bad".to_vec(), None, "h").await;
        assert!(matches!(r, Err(Socks5Error::BadAnswer(_))), "{r:?}");
        // A method that was not offered (username/password without credentials).
        let (r, _) = exchange(vec![5, 2], None, "h").await;
        assert!(matches!(r, Err(Socks5Error::BadAnswer(_))), "{r:?}");
        // An unknown address type in the reply.
        let (r, _) = exchange(vec![5, 0, 5, 0, 0, 9], None, "h").await;
        assert!(matches!(r, Err(Socks5Error::BadAnswer(_))), "{r:?}");
        // A reply cut short.
        let (r, _) = exchange(vec![5, 0, 5, 0, 0, 1, 10], None, "h").await;
        assert!(matches!(r, Err(Socks5Error::Io(_))), "{r:?}");
    }

    #[test]
    fn limits() {
        assert!(Credentials::new(vec![b'u'; 256], b"p".to_vec()).is_none());
        assert!(Credentials::new(vec![b'u'; 255], vec![b'p'; 255]).is_some());
        assert!(matches!(
            request(&"a".repeat(256), 1),
            Err(Socks5Error::HostTooLong)
        ));
    }
}
