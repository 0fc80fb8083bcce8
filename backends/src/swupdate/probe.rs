//! The signature probe: does this SWUpdate refuse an image that is not signed?
//!
//! SWUpdate acts on a .swu as it reads it, so streaming an unverified payload into it is
//! safe only when SWUpdate itself checks `sw-description`'s signature before it acts
//! (`swupdate -k`). The operator's word is not taken for it: at preflight the backend sends
//! [`probe_swu`] as a dry run (`RUN_DRYRUN`: SWUpdate parses and verifies, runs no pre- or
//! post-update command, writes nothing and leaves the bootloader state alone).
//!
//! The probe is a complete, installable-looking .swu that nobody signed: `sw-description`
//! (any hardware revision, one 5-byte `raw` image for `/dev/null`), a `sw-description.sig`
//! that is not a signature, and the image. Observed with SWUpdate 2022.12:
//! - built with signed images and started with `-k`: FAILURE, "ERROR :
//!   …/sw-description.sig cannot be parsed as DER-encoded CMS signature blob" at error level
//!   (so whatever the daemon's log level); without a `.sig` entry at all the only error-level
//!   text would be "Image invalid or corrupted", which names no cause;
//! - built without signed images: SUCCESS (the `.sig` entry is skipped as an unknown file).
//!
//! [`classify`] turns the answer into a [`Verdict`]: only a failure whose error-level text
//! names the signature proves enforcement; SUCCESS proves the opposite; anything else is
//! [`Verdict::Unknown`], which callers treat as not enforcing (never stream on a guess).

use sha2::{Digest, Sha256};

use super::abi::Status;

/// The image's name inside the probe (also how the daemon's log shows it).
pub const PROBE_IMAGE: &str = "mender-bridge-probe";
/// The `info` of the probe's install request.
pub const PROBE_INFO: &str = "mender-bridge signature probe";
/// Error-level texts naming the signature check, lower case: CMS/PKCS#7 ("…/sw-description.sig
/// cannot be parsed…", "Signature verification failed", "Authentication of all signatures
/// failed", "failed to verify signer name"), RSA ("Error reading signature file",
/// "EVP_DigestVerifyFinal failed"), GPG ("Failed to open …/sw-description.sig").
const SIGNATURE_WORDS: &[&str] = &["sw-description.sig", "signature", "signer", "digestverify"];

/// What the probe showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// SWUpdate refused the unsigned probe for its signature (its message).
    Enforcing(String),
    /// SWUpdate accepted the unsigned probe: it installs unsigned images.
    NotEnforcing,
    /// No answer that proves either (the reason); treated as not enforcing.
    Unknown(String),
}

impl Verdict {
    pub fn enforcing(&self) -> bool {
        matches!(self, Verdict::Enforcing(_))
    }

    /// For log lines and errors.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Enforcing(why) => format!(
                "SWUpdate enforces signed images (it refused an unsigned .swu in a dry run: {why})"
            ),
            Verdict::NotEnforcing => "SWUpdate accepted an unsigned .swu in a dry run, so it \
                                      does not enforce signed images"
                .to_string(),
            Verdict::Unknown(why) => format!(
                "SWUpdate did not show that it enforces signed images (an unsigned .swu in a \
                 dry run: {why}), so it is taken as not enforcing them"
            ),
        }
    }
}

/// The verdict from the run's result (`None`: none came, `why` says why) and SWUpdate's
/// error-level messages.
pub fn classify(result: Result<Status, String>, errors: &[String]) -> Verdict {
    let named = errors.iter().find(|e| {
        let l = e.to_ascii_lowercase();
        SIGNATURE_WORDS.iter().any(|w| l.contains(w))
    });
    match result {
        Ok(Status::Success) => Verdict::NotEnforcing,
        Ok(Status::Failure) => match named {
            Some(e) => Verdict::Enforcing(e.clone()),
            None => Verdict::Unknown(format!(
                "FAILURE without naming the signature: {}",
                errors.first().map(String::as_str).unwrap_or("no message")
            )),
        },
        Ok(other) => Verdict::Unknown(format!("unexpected result {}", other.name())),
        Err(why) => Verdict::Unknown(why),
    }
}

/// The probe .swu (cpio newc, padded to 512 bytes like `cpio -H newc` does).
pub fn probe_swu() -> Vec<u8> {
    let image = b"probe";
    let sha = hex::encode(Sha256::digest(image));
    let description = format!(
        "software = {{\n  version = \"0.0.0\";\n  description = \"{PROBE_INFO}\";\n  \
         hardware-compatibility = [ \"#RE:.*\" ];\n  images: ( {{ filename = \"{PROBE_IMAGE}\"; \
         type = \"raw\"; device = \"/dev/null\"; sha256 = \"{sha}\"; }} );\n}};\n"
    );
    let mut out = Vec::with_capacity(1024);
    for (ino, (name, data)) in [
        ("sw-description", description.as_bytes()),
        ("sw-description.sig", b"not a signature".as_slice()),
        (PROBE_IMAGE, image.as_slice()),
    ]
    .into_iter()
    .enumerate()
    {
        cpio_entry(&mut out, ino as u32 + 1, name, 0o100644, data);
    }
    cpio_entry(&mut out, 0, "TRAILER!!!", 0, &[]);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// One `070701` (newc) entry: header, name with its NUL, data, each padded to 4 bytes.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(4) * 4, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_a_newc_archive_with_description_signature_image_and_trailer() {
        let swu = probe_swu();
        assert_eq!(swu.len() % 512, 0);
        assert!(swu.starts_with(b"070701"));
        // Entry names in order, as SWUpdate requires (sw-description first, .sig second).
        let text = String::from_utf8_lossy(&swu);
        let at = |n: &str| text.find(n).unwrap_or(usize::MAX);
        assert!(at("sw-description\0") < at("sw-description.sig\0"));
        assert!(at("sw-description.sig\0") < at("mender-bridge-probe\0"));
        assert!(at("mender-bridge-probe\0") < at("TRAILER!!!\0"));
        // The header of the first entry: name size 15 ("sw-description" + NUL).
        assert_eq!(&swu[94..102], b"0000000f");
        assert!(text.contains(&hex::encode(Sha256::digest(b"probe"))));
    }

    #[test]
    fn only_a_failure_naming_the_signature_proves_enforcement() {
        let e = |s: &str| vec![s.to_string()];
        let cms = "ERROR : /tmp/sw-description.sig cannot be parsed as DER-encoded CMS \
                   signature blob";
        assert!(classify(Ok(Status::Failure), &e(cms)).enforcing());
        assert!(classify(
            Ok(Status::Failure),
            &e("ERROR : EVP_DigestVerifyFinal failed, error 0x0")
        )
        .enforcing());
        assert_eq!(
            classify(Ok(Status::Success), &e(cms)),
            Verdict::NotEnforcing,
            "SUCCESS wins over any text"
        );
        assert!(matches!(
            classify(
                Ok(Status::Failure),
                &e("Image invalid or corrupted. Not installing ...")
            ),
            Verdict::Unknown(_)
        ));
        assert!(matches!(
            classify(Err("no result within 10 s".into()), &e(cms)),
            Verdict::Unknown(_)
        ));
        assert!(classify(Ok(Status::Failure), &[])
            .describe()
            .contains("taken as not enforcing"));
    }
}
