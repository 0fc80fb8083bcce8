//! A passive observer of a tar byte stream that bounds what tokio-tar would otherwise buffer
//! without limit: the content of extension entries (PAX `x`/`g`, GNU long names `L`/`K`),
//! which it reads whole into memory. A PAX header of gigabytes, or one that compresses to
//! kilobytes inside the data tar, must fail fast instead of exhausting memory.
//!
//! The guard frames the archive the same way the tar reader does (512-byte headers, the
//! PAX `size` record overriding the next header's size) and passes every byte through
//! unchanged. At the end-of-archive block it stops looking.

use std::io;

use super::io::{LimitExceeded, Observed, Observer};

/// Largest extension entry accepted. Real PAX headers are a few hundred bytes.
pub const MAX_EXTENSION: u64 = 64 * 1024;

enum State {
    /// Collecting a 512-byte header; `usize` bytes so far.
    Header(usize),
    /// Skipping entry data plus padding.
    Skip(u64),
    /// Collecting a PAX extension body of `u64` more bytes, then `pad` bytes of padding.
    Pax { remaining: u64, pad: u64 },
    /// Past the end-of-archive block (or framing this guard does not follow): not looking.
    Done,
}

/// The framing state of one tar stream; see the module doc.
pub struct TarFraming {
    context: String,
    state: State,
    header: [u8; 512],
    pax: Vec<u8>,
    /// `size` from the last PAX header, applying to the next entry.
    pax_size: Option<u64>,
}

fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

/// Octal (possibly space/NUL terminated) or GNU base-256 numeric field.
fn numeric(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The `size` record of a PAX body, if any (`<len> size=<decimal>\n`).
fn pax_size(body: &[u8]) -> Option<u64> {
    let mut rest = body;
    let mut size = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() {
            return None;
        }
        let record = &rest[sp + 1..len];
        if let Some(v) = record.strip_prefix(b"size=") {
            let v = v.strip_suffix(b"\n")?;
            size = Some(std::str::from_utf8(v).ok()?.parse().ok()?);
        }
        rest = &rest[len..];
    }
    size
}

/// A tar stream read through its framing guard.
pub type TarGuard<R> = Observed<R, TarFraming>;

/// Wraps a tar stream; `context` names the tar in errors.
pub fn tar_guard<R>(inner: R, context: impl Into<String>) -> TarGuard<R> {
    Observed::new(
        inner,
        TarFraming {
            context: context.into(),
            state: State::Header(0),
            header: [0; 512],
            pax: Vec::new(),
            pax_size: None,
        },
    )
}

impl TarFraming {
    fn too_large(&self, what: &str, size: u64) -> io::Error {
        io::Error::other(LimitExceeded {
            what: format!("a {what} of {size} bytes in {}", self.context),
            limit: MAX_EXTENSION,
        })
    }

    /// Follows the framing over `data`; fails on an oversized extension entry.
    fn follow(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Skip(n) => {
                    let k = n.min(data.len() as u64);
                    data = &data[k as usize..];
                    self.state = if n == k {
                        State::Header(0)
                    } else {
                        State::Skip(n - k)
                    };
                }
                State::Pax { remaining, pad } => {
                    let k = remaining.min(data.len() as u64) as usize;
                    self.pax.extend_from_slice(&data[..k]);
                    data = &data[k..];
                    if remaining == k as u64 {
                        self.pax_size = pax_size(&self.pax);
                        self.state = State::Skip(pad);
                    } else {
                        self.state = State::Pax {
                            remaining: remaining - k as u64,
                            pad,
                        };
                    }
                }
                State::Header(fill) => {
                    let k = (512 - fill).min(data.len());
                    self.header[fill..fill + k].copy_from_slice(&data[..k]);
                    data = &data[k..];
                    if fill + k < 512 {
                        self.state = State::Header(fill + k);
                        continue;
                    }
                    self.on_header()?;
                }
            }
        }
        Ok(())
    }

    fn on_header(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            self.state = State::Done;
            return Ok(());
        }
        let Some(size) = numeric(&self.header[124..136]) else {
            // Unparsable: the tar reader reports it; nothing more to follow here.
            self.state = State::Done;
            return Ok(());
        };
        let override_size = self.pax_size.take();
        match self.header[156] {
            b'x' | b'g' | b'L' | b'K' if size > MAX_EXTENSION => {
                let what = match self.header[156] {
                    b'x' | b'g' => "PAX extension header",
                    _ => "GNU long name entry",
                };
                Err(self.too_large(what, size))
            }
            b'x' => {
                self.pax.clear();
                self.state = State::Pax {
                    remaining: size,
                    pad: padded(size) - size,
                };
                Ok(())
            }
            _ => {
                self.state = State::Skip(padded(override_size.unwrap_or(size)));
                Ok(())
            }
        }
    }
}

impl Observer for TarFraming {
    fn observe(&mut self, data: &[u8]) -> io::Result<()> {
        self.follow(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn header(name: &str, size: u64, typeflag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = typeflag;
        h
    }

    async fn observe_all(bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Read in small pieces so headers straddle reads.
        let mut g = tar_guard(&bytes[..], "test tar");
        let mut buf = [0u8; 97];
        loop {
            let n = g.read(&mut buf).await?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn passes_archives_through_unchanged() {
        let mut a = Vec::new();
        let body = b"13 size=1000\n".to_vec();
        a.extend_from_slice(&header("p", body.len() as u64, b'x'));
        a.extend_from_slice(&body);
        a.resize(1024, 0);
        a.extend_from_slice(&header("f", 5, b'0')); // PAX says 1000, ustar 5: guard follows PAX
        a.extend_from_slice(&[1u8; 1024]);
        a.extend_from_slice(&header("g", 0, b'0'));
        a.extend_from_slice(&[0u8; 1024]);
        assert_eq!(observe_all(a.clone()).await.unwrap(), a);
    }

    #[tokio::test]
    async fn refuses_a_huge_extension_header_before_reading_it() {
        let mut a = header("p", 1 << 32, b'x').to_vec();
        a.extend_from_slice(&[b'9'; 4096]);
        let e = observe_all(a).await.unwrap_err();
        let l = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<LimitExceeded>())
            .expect("limit error");
        assert!(
            l.what
                .contains("PAX extension header of 4294967296 bytes in test tar"),
            "{}",
            l.what
        );
        let mut a = header("././@LongLink", 1 << 20, b'L').to_vec();
        a.extend_from_slice(&[b'a'; 512]);
        assert!(observe_all(a).await.is_err());
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"00000001750\0"), Some(1000));
        assert_eq!(numeric(b"        \0   "), Some(0));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 0x01;
        b256[10] = 0x02;
        assert_eq!(numeric(&b256), Some(0x0201));
        assert_eq!(numeric(b"zz"), None);
        assert_eq!(pax_size(b"11 size=42\n"), Some(42));
        assert_eq!(pax_size(b"30 mtime=1350244992.023960108\n"), None);
    }
}
