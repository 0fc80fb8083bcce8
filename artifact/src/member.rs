//! Names and order of the members of the outer artifact tar (PROTOCOL.md §5.1), and the checks
//! every tar entry must pass before its content is looked at.

use tokio_tar::{EntryType, Header};

use super::compression::Compression;
use super::error::ArtifactError;

/// Largest size or mtime a ustar header field holds (11 octal digits). Beyond it the value
/// goes into a PAX extended header and the ustar field holds 0, as Go's archive/tar writes it.
pub const USTAR_MAX: u64 = 0o77777777777;

/// What an outer member is, from its exact name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    Version,
    Manifest,
    ManifestSig,
    ManifestAugment,
    Header(Compression),
    HeaderAugment(Compression),
    /// `data/0000.tar[.gz|.xz|.zst]`: only payload index 0000 exists.
    Data(Compression),
}

impl MemberKind {
    /// Position in the fixed grammar; members must appear in strictly increasing rank.
    pub fn rank(self) -> u8 {
        match self {
            MemberKind::Version => 0,
            MemberKind::Manifest => 1,
            MemberKind::ManifestSig => 2,
            MemberKind::ManifestAugment => 3,
            MemberKind::Header(_) => 4,
            MemberKind::HeaderAugment(_) => 5,
            MemberKind::Data(_) => 6,
        }
    }

    /// Classifies an outer member by its exact name. Unknown names are an error naming them.
    pub fn classify(name: &str) -> Result<Self, ArtifactError> {
        match name {
            "version" => return Ok(MemberKind::Version),
            "manifest" => return Ok(MemberKind::Manifest),
            "manifest.sig" => return Ok(MemberKind::ManifestSig),
            "manifest-augment" => return Ok(MemberKind::ManifestAugment),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("header.tar") {
            return Compression::from_suffix(rest)
                .map(MemberKind::Header)
                .ok_or_else(|| unknown(name));
        }
        if let Some(rest) = name.strip_prefix("header-augment.tar") {
            return Compression::from_suffix(rest)
                .map(MemberKind::HeaderAugment)
                .ok_or_else(|| unknown(name));
        }
        if let Some(rest) = name.strip_prefix("data/") {
            let (index, suffix) = rest.split_once(".tar").ok_or_else(|| unknown(name))?;
            let compression = Compression::from_suffix(suffix).ok_or_else(|| unknown(name))?;
            if index.len() == 4 && index.bytes().all(|b| b.is_ascii_digit()) {
                if index != "0000" {
                    return Err(ArtifactError::unexpected(
                        name,
                        "only payload 0000 is supported (one payload per artifact)",
                    ));
                }
                return Ok(MemberKind::Data(compression));
            }
        }
        Err(unknown(name))
    }
}

fn unknown(name: &str) -> ArtifactError {
    ArtifactError::unexpected(name, "not a member of the Mender artifact format")
}

/// Checks that a tar path is a safe relative path: not empty, not absolute, no `..`, `.` or
/// empty components, no NUL or backslash. `context` names the tar it came from.
pub fn check_path(context: &str, path: &str) -> Result<(), ArtifactError> {
    let unsafe_path = || ArtifactError::UnsafePath {
        context: context.to_string(),
        path: path.to_string(),
    };
    if path.is_empty() || path.starts_with('/') || path.contains(['\0', '\\']) {
        return Err(unsafe_path());
    }
    // A trailing slash is how directories are written; ignore one.
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(unsafe_path());
    }
    Ok(())
}

/// The decoded, checked path of an entry (tokio-tar's `path_bytes()` result). Paths must be
/// UTF-8.
pub fn entry_path(
    context: &str,
    raw: std::io::Result<std::borrow::Cow<'_, [u8]>>,
) -> Result<String, ArtifactError> {
    let raw = raw.map_err(|e| ArtifactError::Tar {
        context: context.to_string(),
        detail: format!("entry name: {e}"),
    })?;
    let raw: &[u8] = &raw;
    let path = std::str::from_utf8(raw).map_err(|_| ArtifactError::UnsafePath {
        context: context.to_string(),
        path: String::from_utf8_lossy(raw).into_owned(),
    })?;
    check_path(context, path)?;
    Ok(path.to_string())
}

/// A numeric header field (mode, mtime) that must parse; `field` names it in the error.
pub fn header_number(
    context: &str,
    path: &str,
    field: &str,
    value: std::io::Result<impl Into<u64>>,
) -> Result<u64, ArtifactError> {
    value.map(Into::into).map_err(|e| ArtifactError::Tar {
        context: context.to_string(),
        detail: format!("{field} field of '{path}': {e}"),
    })
}

/// Refuses anything but a regular file (directories only when `allow_dir`), and a PAX `size`
/// that disagrees with the ustar size field (the TARmageddon header-desync pattern).
/// Returns true for a directory entry.
pub fn check_entry(
    context: &str,
    path: &str,
    header: &Header,
    effective_size: u64,
    allow_dir: bool,
) -> Result<bool, ArtifactError> {
    let ty = header.entry_type();
    let kind = match ty {
        EntryType::Regular => None,
        EntryType::Directory if allow_dir => return Ok(true),
        EntryType::Directory => Some("directory"),
        EntryType::Symlink => Some("symbolic link"),
        EntryType::Link => Some("hard link"),
        EntryType::Char => Some("character device"),
        EntryType::Block => Some("block device"),
        EntryType::Fifo => Some("fifo"),
        EntryType::Continuous => Some("contiguous file"),
        EntryType::GNUSparse => Some("GNU sparse file"),
        EntryType::XGlobalHeader => Some("PAX global header"),
        _ => Some("special entry"),
    };
    if let Some(kind) = kind {
        return Err(ArtifactError::NotRegularFile {
            context: context.to_string(),
            path: path.to_string(),
            kind: kind.to_string(),
        });
    }
    let raw = header.raw_entry_size().map_err(|e| ArtifactError::Tar {
        context: context.to_string(),
        detail: format!("size field of '{path}': {e}"),
    })?;
    // Go writes 0 in the ustar field when the size needs PAX (>= 8 GiB); anything else that
    // differs from the PAX size would make two readers see two different archives.
    let representable = effective_size <= USTAR_MAX;
    if raw != effective_size && (representable || raw != 0) {
        return Err(ArtifactError::Tar {
            context: context.to_string(),
            detail: format!(
                "'{path}': PAX size {effective_size} disagrees with header size {raw} \
                 (header desync)"
            ),
        });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_members() {
        assert_eq!(
            MemberKind::classify("header.tar.gz").unwrap(),
            MemberKind::Header(Compression::Gzip)
        );
        assert_eq!(
            MemberKind::classify("data/0000.tar.zst").unwrap(),
            MemberKind::Data(Compression::Zstd)
        );
        assert_eq!(
            MemberKind::classify("data/0000.tar").unwrap(),
            MemberKind::Data(Compression::None)
        );
        for bad in [
            "data/0001.tar.gz",
            "header.tar.bz2",
            "./version",
            "data/0000",
            "foo",
        ] {
            let e = MemberKind::classify(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "", "./a", "a\\b"] {
            assert!(check_path("t", bad).is_err(), "{bad}");
        }
        for good in [
            "version",
            "data/0000.tar.gz",
            "scripts/",
            "headers/0000/type-info",
        ] {
            check_path("t", good).unwrap();
        }
    }
}
