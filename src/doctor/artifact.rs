//! The artifact verify keys (`ArtifactVerifyKey` / `ArtifactVerifyKeys`): each file is
//! loaded with [`VerifyKey::from_file`], as the deployment engine loads them
//! ([`crate::setup::read_options`]). None configured is a warning: then only the
//! connection to the server vouches for an artifact.

use mender_artifact::VerifyKey;

use crate::config::Config;

use super::{Check, Sink};

const NAME: &str = "verify keys";

pub fn check(cfg: &Config, out: &mut dyn Sink) {
    if cfg.artifact_verify_keys.is_empty() {
        out.add(Check::warn(
            NAME,
            "no ArtifactVerifyKey: unsigned artifacts are installed, trusted on the \
             connection alone",
            "set ArtifactVerifyKey in mender.conf to the public key artifacts are signed with",
        ));
        return;
    }
    for path in &cfg.artifact_verify_keys {
        match VerifyKey::from_file(path) {
            Ok(k) => out.add(Check::ok(NAME, format!("{} {}", k.kind(), path.display()))),
            Err(e) => out.add(Check::fail(
                NAME,
                e.to_string(),
                "ArtifactVerifyKey must name a PEM RSA or ECDSA P-256 public key file \
                 (e.g. from `openssl pkey -pubout`); every deployment fails until it loads",
            )),
        }
    }
}
