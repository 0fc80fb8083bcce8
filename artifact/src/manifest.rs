//! `manifest` and `manifest-augment`: sha256sum-format lines, and the bookkeeping that every
//! line is matched by exactly one file of the artifact.
//!
//! Trust rule (DESIGN.md "Trust model"): only the signed `manifest` vouches for `version`,
//! `header.tar*` and every data file. `manifest-augment` is not covered by the signature:
//! its lines may name only `header-augment.tar*`, and a line naming anything else refuses
//! the artifact when `manifest-augment` is read. A file is looked up in the one manifest
//! that may vouch for it, so a name the signed manifest does not list is refused the moment
//! the file is read, never at the end.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::error::ArtifactError;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    Sha256::digest(data).into()
}

/// The two manifests' lines. Invariants: names are unique across both; each is marked seen
/// at most once; `augment` holds only `header-augment.tar*` names.
#[derive(Debug, Default, Clone)]
pub struct Manifest {
    /// Lines of the (signed, when keys are configured) `manifest`.
    signed: BTreeMap<String, Entry>,
    /// Lines of the unsigned `manifest-augment`.
    augment: BTreeMap<String, Entry>,
}

/// The member names `manifest-augment` may vouch for.
pub fn augment_may_cover(name: &str) -> bool {
    name.strip_prefix("header-augment.tar")
        .is_some_and(|rest| super::compression::Compression::from_suffix(rest).is_some())
}

#[derive(Debug, Clone)]
struct Entry {
    digest: Digest,
    seen: bool,
    /// Which member listed it (`manifest` or `manifest-augment`), for error messages.
    source: &'static str,
}

impl Manifest {
    /// Adds the lines of `manifest` (the member the signature covers).
    pub fn add_signed(&mut self, text: &[u8]) -> Result<(), ArtifactError> {
        self.add_member("manifest", text)
    }

    /// Adds the lines of `manifest-augment`, which may only name `header-augment.tar*`.
    pub fn add_augment(&mut self, text: &[u8]) -> Result<(), ArtifactError> {
        self.add_member("manifest-augment", text)
    }

    /// Adds the lines of one manifest member. Lines are `<64 lower-hex>  <name>\n`; every line
    /// must end in LF, names must be unique across both manifests.
    fn add_member(&mut self, member: &'static str, text: &[u8]) -> Result<(), ArtifactError> {
        let augment = member == "manifest-augment";
        let err = |line: usize, reason: &str| ArtifactError::Manifest {
            member: member.to_string(),
            line,
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(err(0, "is empty"));
        }
        if !text.ends_with(b"\n") {
            return Err(err(
                text.split(|b| *b == b'\n').count(),
                "does not end in a newline",
            ));
        }
        for (i, raw) in text[..text.len() - 1].split(|b| *b == b'\n').enumerate() {
            let n = i + 1;
            let line = std::str::from_utf8(raw).map_err(|_| err(n, "is not UTF-8"))?;
            let (hex_part, name) = line
                .split_once("  ")
                .ok_or_else(|| err(n, "is not '<sha256>  <name>'"))?;
            if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(n, "checksum is not 64 hex digits"));
            }
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut digest)
                .map_err(|_| err(n, "checksum is not hex"))?;
            if name.is_empty() || name.contains(['\r', '\0']) {
                return Err(err(n, "file name is empty or has control characters"));
            }
            if self.signed.contains_key(name) || self.augment.contains_key(name) {
                return Err(err(n, &format!("'{name}' is listed twice")));
            }
            if augment && !augment_may_cover(name) {
                return Err(err(
                    n,
                    &format!(
                        "'{name}': manifest-augment is not signed and may only list \
                         header-augment.tar*; '{name}' must be in 'manifest'"
                    ),
                ));
            }
            let map = if augment {
                &mut self.augment
            } else {
                &mut self.signed
            };
            map.insert(
                name.to_string(),
                Entry {
                    digest,
                    seen: false,
                    source: member,
                },
            );
        }
        Ok(())
    }

    /// The expected digest for `name`, marking it seen. `header-augment.tar*` is looked up in
    /// `manifest-augment`, every other name in the signed `manifest` only. A name not listed
    /// there, or already seen (a duplicate file), is an error.
    pub fn take(&mut self, name: &str) -> Result<Digest, ArtifactError> {
        let (map, member) = if augment_may_cover(name) {
            (&mut self.augment, "manifest-augment")
        } else {
            (&mut self.signed, "manifest")
        };
        match map.get_mut(name) {
            None => Err(ArtifactError::NotInManifest {
                name: name.to_string(),
                member: member.to_string(),
            }),
            Some(e) if e.seen => Err(ArtifactError::unexpected(
                name,
                "appears twice in the artifact",
            )),
            Some(e) => {
                e.seen = true;
                Ok(e.digest)
            }
        }
    }

    /// Checks `actual` against the manifest entry for `name` (marking it seen).
    pub fn verify(&mut self, name: &str, actual: &Digest) -> Result<(), ArtifactError> {
        let expected = self.take(name)?;
        check_digest(name, &expected, actual)
    }

    /// Every line must have been matched by a file of the artifact.
    pub fn ensure_all_seen(&self) -> Result<(), ArtifactError> {
        match self
            .signed
            .iter()
            .chain(self.augment.iter())
            .find(|(_, e)| !e.seen)
        {
            Some((name, e)) => Err(ArtifactError::MissingFromArtifact {
                name: name.clone(),
                member: e.source.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// Compares two digests, producing the error that names the file and both values.
pub fn check_digest(name: &str, expected: &Digest, actual: &Digest) -> Result<(), ArtifactError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ArtifactError::Checksum {
            name: name.to_string(),
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "96bcd965947569404798bcbdb614f103db5a004eb6e364cfc162c146890ea35b";

    #[test]
    fn parses_and_tracks_lines() {
        let text = format!("{A}  version\n{A}  header.tar.gz\n");
        let mut m = Manifest::default();
        m.add_signed(text.as_bytes()).unwrap();
        assert!(m.ensure_all_seen().is_err());
        let mut d = [0u8; 32];
        hex::decode_to_slice(A, &mut d).unwrap();
        m.verify("version", &d).unwrap();
        assert!(m.take("version").is_err(), "second sight is a duplicate");
        m.verify("header.tar.gz", &d).unwrap();
        m.ensure_all_seen().unwrap();
        assert!(matches!(
            m.take("other"),
            Err(ArtifactError::NotInManifest { .. })
        ));
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            format!("{A} version\n"),
            format!("{A}  version"),
            format!("{}  version\n", &A[..63]),
            format!("{A}  version\n{A}  version\n"),
            format!("zz{}  version\n", &A[2..]),
            String::new(),
        ] {
            let mut m = Manifest::default();
            assert!(m.add_signed(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn augment_vouches_only_for_header_augment() {
        let mut m = Manifest::default();
        m.add_signed(format!("{A}  version\n{A}  header.tar.gz\n").as_bytes())
            .unwrap();
        for name in [
            "header.tar",
            "data/0000/x",
            "version2",
            "header-augment.tar.bz2",
        ] {
            let e = m
                .clone()
                .add_augment(format!("{A}  {name}\n").as_bytes())
                .unwrap_err();
            assert!(e.to_string().contains("may only list"), "{name}: {e}");
        }
        m.add_augment(format!("{A}  header-augment.tar.gz\n").as_bytes())
            .unwrap();
        let mut d = [0u8; 32];
        hex::decode_to_slice(A, &mut d).unwrap();
        m.verify("header-augment.tar.gz", &d).unwrap();
        // A signed name is never satisfied by the augment, nor the other way round.
        let mut only_augment = Manifest::default();
        only_augment
            .add_augment(format!("{A}  header-augment.tar\n").as_bytes())
            .unwrap();
        let e = only_augment.take("header.tar").unwrap_err();
        assert!(e.to_string().contains("which the signature covers"), "{e}");
    }

    #[test]
    fn mismatch_names_file_and_both_digests() {
        let e = check_digest("data/0000/a", &[1; 32], &[2; 32]).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("data/0000/a") && s.contains(&hex::encode([1u8; 32])),
            "{s}"
        );
    }
}
