//! A tiny ustar reader/writer for building well-formed and deliberately malformed artifacts
//! in tests. Independent of the tar crate under test, so it can write what that one refuses.

/// One tar entry as the tests build it.
#[derive(Clone, Debug)]
pub struct TarEntry {
    pub name: String,
    pub data: Vec<u8>,
    /// ustar typeflag: b'0' file, b'2' symlink, b'5' directory, b'x' PAX header, ...
    pub typeflag: u8,
    pub mode: u32,
    /// Size written in the header; `None` = `data.len()`.
    pub size_field: Option<u64>,
    pub link: String,
}

impl TarEntry {
    pub fn file(name: &str, data: impl Into<Vec<u8>>) -> Self {
        TarEntry {
            name: name.to_string(),
            data: data.into(),
            typeflag: b'0',
            mode: 0o600,
            size_field: None,
            link: String::new(),
        }
    }

    pub fn with_type(mut self, t: u8) -> Self {
        self.typeflag = t;
        self
    }

    /// A PAX extended header carrying the given records.
    pub fn pax(records: &[(&str, &str)]) -> Self {
        let mut body = Vec::new();
        for (k, v) in records {
            // "<len> <key>=<value>\n" where len counts itself.
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        TarEntry::file("PaxHeaders/x", body).with_type(b'x')
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// The 512-byte ustar header of `e` (Go's USTAR layout: magic "ustar\0", version "00").
pub fn header(e: &TarEntry) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = e.name.as_bytes();
    assert!(name.len() <= 100, "test names fit the ustar field");
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], e.mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(
        &mut h[124..136],
        e.size_field.unwrap_or(e.data.len() as u64),
    );
    octal(&mut h[136..148], 0);
    h[156] = e.typeflag;
    let link = e.link.as_bytes();
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Serialises entries followed by the two zero blocks of the end of archive.
pub fn write(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&header(e));
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Splits a plain ustar archive (no extensions) into entries, and returns the byte offset
/// of each entry's header and data as (header_offset, data_offset, size).
pub fn read(bytes: &[u8]) -> (Vec<TarEntry>, Vec<(usize, usize, usize)>) {
    let mut entries = Vec::new();
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos + 512 <= bytes.len() {
        let h = &bytes[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..name_end]).into_owned();
        let size_str = String::from_utf8_lossy(&h[124..136]);
        let size = u64::from_str_radix(size_str.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .expect("octal size") as usize;
        let mode_str = String::from_utf8_lossy(&h[100..108]);
        let mode = u32::from_str_radix(mode_str.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .unwrap_or(0o600);
        let data = bytes[pos + 512..pos + 512 + size].to_vec();
        spans.push((pos, pos + 512, size));
        let mut e = TarEntry::file(&name, data).with_type(h[156]);
        e.mode = mode;
        entries.push(e);
        pos += 512 + size.div_ceil(512) * 512;
    }
    (entries, spans)
}
