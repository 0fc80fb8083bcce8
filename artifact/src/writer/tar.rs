//! Tar framing as Go's archive/tar writes it in USTAR format (what mender-artifact's output
//! is made of): header blocks, PAX extended headers for what does not fit, padding, the end
//! of an archive. Used for all three tars (outer, header, data).

use crate::member::USTAR_MAX;

/// The tar block size.
pub(super) const BLOCK: u64 = 512;

/// The end of an archive: two zero blocks, no padding to a 10 KiB record (as Go writes it).
pub(super) const END_OF_ARCHIVE: [u8; 2 * BLOCK as usize] = [0u8; 2 * BLOCK as usize];

/// Zeros that pad `size` bytes of content to a whole block.
pub(super) fn padding(size: u64) -> Vec<u8> {
    vec![0u8; ((BLOCK - size % BLOCK) % BLOCK) as usize]
}

/// A whole regular-file entry (header, content, padding) appended to `tar`.
pub(super) fn append_file(tar: &mut Vec<u8>, name: &str, data: &[u8], mode: u32, mtime: u64) {
    tar.extend_from_slice(&tar_header(name, data.len() as u64, mode, mtime));
    tar.extend_from_slice(data);
    tar.extend_from_slice(&padding(data.len() as u64));
}

/// Writes `value` as zero-padded octal filling `field` but for a trailing NUL (Go's
/// formatOctal). The caller guarantees it fits.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// The header block(s) of a regular file, as Go's archive/tar writes them in USTAR format:
/// numeric fields zero-padded octal, magic `ustar\0` version `00`, uid/gid 0, no user or
/// group names. A name longer than 100 bytes or not ASCII, a size or mtime beyond 11 octal
/// digits go into a preceding PAX extended header (`PaxHeaders.0/<name>`), with the ustar
/// fields truncated or zeroed, as Go does.
pub(super) fn tar_header(name: &str, size: u64, mode: u32, mtime: u64) -> Vec<u8> {
    let mut records = String::new();
    let long_name = name.len() > 100 || !name.is_ascii();
    if long_name {
        records.push_str(&pax_record("path", name));
    }
    if size > USTAR_MAX {
        records.push_str(&pax_record("size", &size.to_string()));
    }
    if mtime > USTAR_MAX {
        records.push_str(&pax_record("mtime", &mtime.to_string()));
    }
    let mut out = Vec::new();
    if !records.is_empty() {
        let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
        let pax_name = if dir.is_empty() {
            format!("PaxHeaders.0/{file}")
        } else {
            format!("{dir}/PaxHeaders.0/{file}")
        };
        out.extend_from_slice(&ustar_block(&pax_name, records.len() as u64, 0, 0, b'x'));
        out.extend_from_slice(records.as_bytes());
        out.extend_from_slice(&padding(records.len() as u64));
    }
    let size_field = if size > USTAR_MAX { 0 } else { size };
    let mtime_field = if mtime > USTAR_MAX { 0 } else { mtime };
    out.extend_from_slice(&ustar_block(name, size_field, mode, mtime_field, b'0'));
    out
}

fn ustar_block(name: &str, size: u64, mode: u32, mtime: u64, typeflag: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    // Non-ASCII characters are dropped and the rest truncated (the full name is in PAX).
    let ascii: Vec<u8> = name.bytes().filter(u8::is_ascii).take(100).collect();
    h[..ascii.len()].copy_from_slice(&ascii);
    put_octal(&mut h[100..108], u64::from(mode & 0o7777));
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put_octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            ("path", "x"),
            ("size", "12345678901"),
            ("path", &"a".repeat(95)),
        ] {
            let r = pax_record(k, v);
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{r:?}");
        }
    }

    #[test]
    fn ustar_header_matches_go() {
        // The bytes of mender-artifact 3.9.0's `version` member header.
        let h = tar_header("version", 31, 0o600, 0);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[100..108], b"0000600\0");
        assert_eq!(&h[124..136], b"00000000037\0");
        assert_eq!(&h[148..156], b"010605\0 ");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\x00");
    }

    #[test]
    fn long_names_and_sizes_use_pax() {
        let name = "n".repeat(150);
        let h = tar_header(&name, 9 << 30, 0o644, 0);
        assert_eq!(h.len(), 3 * 512);
        assert_eq!(h[156], b'x');
        let records = std::str::from_utf8(&h[512..1024])
            .unwrap()
            .trim_end_matches('\0');
        assert!(records.contains(&format!(" path={name}\n")), "{records}");
        assert!(
            records.contains(&format!(" size={}\n", 9u64 << 30)),
            "{records}"
        );
        assert_eq!(&h[1024 + 124..1024 + 136], b"00000000000\0");
    }
}
