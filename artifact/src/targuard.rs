//! A passive observer of a tar byte stream that bounds what tokio-tar would otherwise buffer
//! without limit: the content of extension entries (PAX `x`/`g`, GNU long names `L`/`K`),
//! which it reads whole into memory. A PAX header of gigabytes, or one that compresses to
//! kilobytes inside the data tar, must fail fast instead of exhausting memory.
//!
//! The guard frames the archive the same way the tar reader does (512-byte headers, sizes
//! parsed by tokio-tar's own code, the PAX `size` record overriding the size of the next
//! entry that is not itself an extension entry) and passes every byte through unchanged. At
//! the end-of-archive block it stops looking. It fails closed: a header it cannot frame (an
//! unparsable or overflowing size, a GNU sparse entry whose extra header blocks it does not
//! follow) is an error, never a reason to stop looking, since from there on it could no
//! longer tell extension entries from data.

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
    /// Past the end-of-archive block: not looking.
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

/// `n` rounded up to whole 512-byte blocks; an error for sizes within 511 of `u64::MAX`.
fn padded(n: u64) -> io::Result<u64> {
    n.checked_next_multiple_of(512)
        .ok_or_else(|| io::Error::other(format!("entry size {n} overflows the archive")))
}

/// The size field of a header block, parsed by tokio-tar's own code (octal cut at the first
/// NUL and trimmed, or GNU base-256 of which only the last 8 bytes count), so that the guard
/// and the tar reader cannot disagree on where the next header starts.
fn header_size(header: &[u8; 512]) -> io::Result<u64> {
    tokio_tar::Header::from_byte_slice(header).raw_entry_size()
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
        // The tar reader fails on this same header when it cannot parse the size.
        let size = header_size(&self.header)?;
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
                self.pax_size = None;
                self.state = State::Pax {
                    remaining: size,
                    pad: padded(size)? - size,
                };
                Ok(())
            }
            // Extension entries have their own size; as in tokio-tar, a pending PAX `size`
            // applies to the entry after them.
            b'g' | b'L' | b'K' => {
                self.state = State::Skip(padded(size)?);
                Ok(())
            }
            // Extra sparse-map header blocks follow the header, and tokio-tar keeps the whole
            // map in memory. The reader refuses sparse files anyway.
            b'S' => Err(io::Error::other(
                "GNU sparse entry: only regular files are allowed",
            )),
            _ => {
                let size = self.pax_size.take().unwrap_or(size);
                self.state = State::Skip(padded(size)?);
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

    fn with_size_field(name: &str, field: &[u8; 12], typeflag: u8) -> [u8; 512] {
        let mut h = header(name, 0, typeflag);
        h[124..136].copy_from_slice(field);
        h
    }

    fn limit_error(e: &io::Error) -> &LimitExceeded {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<LimitExceeded>())
            .unwrap_or_else(|| panic!("not a limit error: {e}"))
    }

    #[test]
    fn size_fields() {
        let size = |field: &[u8; 12]| header_size(&with_size_field("f", field, b'0')).ok();
        assert_eq!(size(b"00000001750\0"), Some(1000));
        assert_eq!(size(b" 1750       "), Some(1000));
        // tokio-tar cuts at the first NUL and trims whitespace (tabs included).
        assert_eq!(size(b"1750\0garbage"), Some(1000));
        assert_eq!(size(b"\t1750\0      "), Some(1000));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 0x01;
        b256[10] = 0x02;
        assert_eq!(size(&b256), Some(0x0201));
        // Base-256: only the last 8 bytes count, whatever the first 4 hold.
        b256[1] = 0x01;
        assert_eq!(size(&b256), Some(0x0201));
        assert_eq!(size(b"zz\0         "), None);
        assert_eq!(size(b"        \0   "), None);
        assert_eq!(pax_size(b"11 size=42\n"), Some(42));
        assert_eq!(pax_size(b"30 mtime=1350244992.023960108\n"), None);
    }

    /// Size fields the guard used to parse differently from tokio-tar (or not
    /// at all, after which it stopped looking) let a PAX header of gigabytes through; inside
    /// a zstd data tar, a 60 KiB artifact made the reader allocate 2 GiB.
    #[tokio::test]
    async fn refuses_huge_extension_headers_whatever_the_size_encoding() {
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[1] = 0x01; // ignored by tokio-tar; overflowed the guard's own parser
        b256[4..].copy_from_slice(&(3u64 << 30).to_be_bytes());
        for field in [&b256, b"7777777777\0x", b"\t7777777777 "] {
            let mut a = with_size_field("p", field, b'x').to_vec();
            a.extend_from_slice(&[b'9'; 4096]);
            let e = observe_all(a).await.unwrap_err();
            assert!(
                limit_error(&e).what.contains("PAX extension header"),
                "{field:?}: {e}"
            );
        }
    }

    /// A size within 511 of u64::MAX overflowed the block rounding (a panic
    /// with overflow checks, a zero-length skip and lost framing without).
    #[tokio::test]
    async fn a_size_that_overflows_the_block_rounding_is_an_error() {
        let mut field = [0xffu8; 12];
        field[..4].copy_from_slice(&[0x80, 0, 0, 0]);
        let a = with_size_field("version", &field, b'0').to_vec();
        let e = observe_all(a).await.unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }

    #[tokio::test]
    async fn an_unparsable_size_is_an_error_not_the_end_of_guarding() {
        let mut a = with_size_field("f", b"12345678z\0\0\0", b'0').to_vec();
        a.extend_from_slice(&header("p", 1 << 32, b'x'));
        assert!(observe_all(a).await.is_err());
    }

    /// A PAX `size` applies to the next entry that is not an extension entry itself (as in
    /// tokio-tar); applied to a GNU long name it made the guard skip over the headers that
    /// followed, a huge PAX header among them.
    #[tokio::test]
    async fn a_pax_size_does_not_apply_to_a_following_long_name() {
        let mut a = Vec::new();
        let body = b"16 size=1048576\n".to_vec();
        a.extend_from_slice(&header("p", body.len() as u64, b'x'));
        a.extend_from_slice(&body);
        a.resize(1024, 0);
        a.extend_from_slice(&header("././@LongLink", 5, b'L'));
        a.extend_from_slice(b"name\0");
        a.resize(2048, 0);
        a.extend_from_slice(&header("q", 1 << 32, b'x'));
        a.extend_from_slice(&[b'9'; 4096]);
        let e = observe_all(a).await.unwrap_err();
        assert!(limit_error(&e).what.contains("PAX extension header"), "{e}");
    }

    #[tokio::test]
    async fn refuses_gnu_sparse_entries() {
        let mut a = header("s", 0, b'S').to_vec();
        a.extend_from_slice(&[0u8; 1024]);
        let e = observe_all(a).await.unwrap_err();
        assert!(e.to_string().contains("GNU sparse"), "{e}");
    }
}
