//! Stored artifacts and their download links: links are HMAC-signed, expire, and are all
//! refused at once after `expire_links`; a tampered artifact keeps its record.

use std::path::PathBuf;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{artifacts_dir, device_deployment_mut, lock, Link, OpError, Sim};
use crate::ids::now;
use crate::model::ArtifactRecord;

impl Sim {
    /// Records an uploaded artifact (its file already in place).
    pub fn add_artifact(&self, record: ArtifactRecord) -> Result<(), OpError> {
        self.mutate(|d| {
            d.artifacts.insert(record.id.clone(), record);
            Ok(())
        })
    }

    /// The stored bytes of artifact `id` were replaced (already in place): new size and
    /// SHA-256, `tampered` set; the rest of the record stays. Returns the record.
    pub fn tamper_artifact(
        &self,
        id: &str,
        size: u64,
        sha256: String,
    ) -> Result<ArtifactRecord, OpError> {
        self.mutate(|d| {
            let a = d
                .artifacts
                .get_mut(id)
                .ok_or_else(|| OpError::NotFound(format!("artifact {id} not found")))?;
            a.size = size;
            a.sha256 = sha256;
            a.tampered = true;
            Ok(a.clone())
        })
    }

    /// Path of an artifact's bytes.
    pub fn artifact_path(&self, artifact_id: &str) -> PathBuf {
        artifacts_dir(&self.dir).join(format!("{artifact_id}.mender"))
    }

    /// Bumps the link generation: every link handed out so far is refused (403).
    pub fn expire_links(&self) -> Result<(), OpError> {
        self.mutate(|d| {
            d.link_generation += 1;
            Ok(())
        })
    }

    /// Remembers that a download of the deployment carried an Authorization header.
    pub fn note_download_authorization(&self, link: &Link) -> Result<(), OpError> {
        self.mutate(|d| {
            if let Ok(dd) = device_deployment_mut(d, &link.deployment_id, &link.device_id) {
                dd.download_authorization_seen = true;
            }
            Ok(())
        })
    }

    /// Checks a download link's query (`deployment`, `device`, `expire`, `gen`,
    /// `signature`) for `artifact_id`.
    pub fn verify_link(&self, artifact_id: &str, query: &str) -> Result<Link, OpError> {
        let q: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| {
            q.get(k)
                .cloned()
                .ok_or_else(|| OpError::Forbidden(format!("link without {k}")))
        };
        let (dep, dev, sig) = (get("deployment")?, get("device")?, get("signature")?);
        let expire: u64 = get("expire")?
            .parse()
            .map_err(|_| OpError::Forbidden("bad expire".into()))?;
        let generation: u64 = get("gen")?
            .parse()
            .map_err(|_| OpError::Forbidden("bad gen".into()))?;
        let sig = hex::decode(sig).map_err(|_| OpError::Forbidden("bad signature".into()))?;
        let m = link_mac(&self.link_key, artifact_id, &dep, &dev, expire, generation);
        if m.verify_slice(&sig).is_err() {
            return Err(OpError::Forbidden("link signature does not match".into()));
        }
        if expire <= now() {
            return Err(OpError::Forbidden("link expired".into()));
        }
        if generation != lock(&self.data).link_generation {
            return Err(OpError::Forbidden(
                "link expired (all links were expired)".into(),
            ));
        }
        Ok(Link {
            artifact_id: artifact_id.to_string(),
            deployment_id: dep,
            device_id: dev,
        })
    }
}

fn link_mac(
    key: &[u8],
    artifact: &str,
    dep: &str,
    dev: &str,
    expire: u64,
    generation: u64,
) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(format!("{artifact}\n{dep}\n{dev}\n{expire}\n{generation}").as_bytes());
    m
}

pub(super) fn sign_link(
    key: &[u8],
    base_url: &str,
    artifact: &str,
    dep: &str,
    dev: &str,
    expire: u64,
    generation: u64,
) -> String {
    let sig = hex::encode(
        link_mac(key, artifact, dep, dev, expire, generation)
            .finalize()
            .into_bytes(),
    );
    format!(
        "{base_url}{}/{artifact}?deployment={dep}&device={dev}&expire={expire}&gen={generation}&signature={sig}",
        crate::DOWNLOAD_PREFIX
    )
}
