//! Artifact upload: the raw body is streamed to `DIR/artifacts/` (bounded, with an idle
//! timeout), then read completely with the verifying [`ArtifactReader`] to learn its name
//! and device types; a file the reader refuses is refused (400).
//!
//! Tampering, for attack tests: [`replace_content`] swaps the stored bytes of an uploaded
//! artifact for any body, unchecked, keeping its record (name, device types, payload type,
//! signed) as uploaded; only `size` and `sha256` follow the new bytes, and `tampered` is
//! set. Downloads then serve the new bytes (Content-Length and ranges from the file). This
//! models a compromised object store, CDN or TLS-terminating middlebox between the server's
//! decision and the device: the device must refuse what it gets on its own checks.

use std::time::Duration;

use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::ids;
use super::model::ArtifactRecord;
use super::state::{artifacts_dir, OpError, Sim};
use mender_artifact::{ArtifactReader, ReadOptions, SignatureStatus};

/// Longest wait for the next piece of an upload.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Stores and parses an uploaded artifact, then records it.
pub async fn upload(
    sim: &Sim,
    mut body: hyper::body::Incoming,
    max_size: u64,
) -> Result<ArtifactRecord, OpError> {
    let record = store(sim, &ids::uuid(), async |tmp| {
        receive(&mut body, tmp, max_size).await
    })
    .await?;
    tracing::info!(artifact = %record.name, id = %record.id, "artifact uploaded");
    Ok(record)
}

/// Stores an artifact: `fill` writes it to a temporary file in `DIR/artifacts/` and returns
/// its size and SHA-256 (hex); then it is parsed, moved to its place and recorded. On any
/// error the temporary file is removed and nothing is recorded.
async fn store(
    sim: &Sim,
    id: &str,
    fill: impl AsyncFnOnce(&std::path::Path) -> Result<(u64, String), OpError>,
) -> Result<ArtifactRecord, OpError> {
    let dir = artifacts_dir(sim.dir());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| OpError::Internal(format!("{}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".upload-{id}"));
    let result = async {
        let (size, sha256) = fill(&tmp).await?;
        let record = inspect(&tmp, id, size, sha256).await?;
        tokio::fs::rename(&tmp, sim.artifact_path(id))
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?;
        Ok(record)
    }
    .await;
    match result {
        Ok(record) => {
            sim.add_artifact(record.clone())?;
            Ok(record)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

/// Streams a request body into a new file `tmp` (at most `max_size` bytes, each piece
/// within [`IDLE_TIMEOUT`]), synced; returns its size and SHA-256 (hex).
async fn receive(
    body: &mut hyper::body::Incoming,
    tmp: &std::path::Path,
    max_size: u64,
) -> Result<(u64, String), OpError> {
    let mut file = create_temp(tmp).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| OpError::BadRequest("upload stalled".into()))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| OpError::BadRequest(format!("upload: {e}")))?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > max_size {
                return Err(OpError::BadRequest(format!(
                    "artifact larger than {max_size} bytes"
                )));
            }
            hasher.update(&data);
            file.write_all(&data)
                .await
                .map_err(|e| OpError::Internal(e.to_string()))?;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| OpError::Internal(e.to_string()))?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Replaces the stored bytes of uploaded artifact `id` with the request body, unchecked
/// (attack tests: see the module docs). The record keeps what the upload learned; its
/// `size` and `sha256` become the new bytes', `tampered` is set. A download already
/// running keeps reading the old bytes; the next one gets the new.
pub async fn replace_content(
    sim: &Sim,
    id: &str,
    mut body: hyper::body::Incoming,
    max_size: u64,
) -> Result<ArtifactRecord, OpError> {
    if !sim.snapshot().artifacts.contains_key(id) {
        return Err(OpError::NotFound(format!("artifact {id} not found")));
    }
    let tmp = artifacts_dir(sim.dir()).join(format!(".replace-{}", ids::uuid()));
    let result = async {
        let (size, sha256) = receive(&mut body, &tmp, max_size).await?;
        tokio::fs::rename(&tmp, sim.artifact_path(id))
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?;
        sim.tamper_artifact(id, size, sha256)
    }
    .await;
    match &result {
        Ok(r) => tracing::warn!(
            artifact = %r.name,
            id = %r.id,
            size = r.size,
            "artifact bytes replaced, unchecked (tampered)"
        ),
        Err(_) => {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
    }
    result
}

/// Stores an artifact file from disk (in-process use: tests, `demo`), as an upload would.
pub async fn upload_file(sim: &Sim, path: &std::path::Path) -> Result<ArtifactRecord, OpError> {
    upload_file_as(sim, path, ids::uuid()).await
}

/// [`upload_file`] with the artifact id given.
async fn upload_file_as(
    sim: &Sim,
    path: &std::path::Path,
    id: String,
) -> Result<ArtifactRecord, OpError> {
    store(sim, &id, async |tmp| {
        let mut source = tokio::fs::File::open(path)
            .await
            .map_err(|e| OpError::BadRequest(format!("{}: {e}", path.display())))?;
        let mut file = create_temp(tmp).await?;
        let size = tokio::io::copy(&mut source, &mut file).await.map_err(|e| {
            OpError::Internal(format!("{} to {}: {e}", path.display(), tmp.display()))
        })?;
        file.sync_all()
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?;
        drop(file);
        if size > sim.max_artifact_size() {
            return Err(OpError::BadRequest(format!(
                "artifact larger than {} bytes",
                sim.max_artifact_size()
            )));
        }
        let data_hash = {
            use tokio::io::AsyncReadExt;
            let mut f = tokio::fs::File::open(&tmp)
                .await
                .map_err(|e| OpError::Internal(e.to_string()))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f
                    .read(&mut buf)
                    .await
                    .map_err(|e| OpError::Internal(e.to_string()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hex::encode(hasher.finalize())
        };
        Ok((size, data_hash))
    })
    .await
}

/// Creates an upload's temporary file, 0600, with [`mender_bridge_backends::fsutil::create_new`]
/// (`O_EXCL|O_NOFOLLOW`): whatever sits at its path (a crash's leftover, a link planted by
/// someone who can write the artifacts directory) is unlinked, never followed.
async fn create_temp(tmp: &std::path::Path) -> Result<tokio::fs::File, OpError> {
    let path = tmp.to_path_buf();
    let file = tokio::task::spawn_blocking(move || {
        mender_bridge_backends::fsutil::create_new(&path, 0o600)
    })
    .await
    .map_err(|e| OpError::Internal(format!("{}: {e}", tmp.display())))?
    .map_err(|e| OpError::Internal(format!("{}: {e}", tmp.display())))?;
    Ok(tokio::fs::File::from_std(file))
}

/// Reads the whole artifact with the verifying reader (every checksum).
async fn inspect(
    path: &std::path::Path,
    id: &str,
    size: u64,
    sha256: String,
) -> Result<ArtifactRecord, OpError> {
    let bad = |e: mender_artifact::ArtifactError| {
        OpError::BadRequest(format!("not a valid artifact: {e}"))
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| OpError::Internal(e.to_string()))?;
    let mut reader = ArtifactReader::open(file, ReadOptions::default())
        .await
        .map_err(bad)?;
    while reader.next_file().await.map_err(bad)?.is_some() {
        while reader.read_chunk().await.map_err(bad)?.is_some() {}
    }
    let info = reader.finish().await.map_err(bad)?;
    Ok(ArtifactRecord {
        id: id.to_string(),
        name: info.header.name.clone(),
        device_types: info.header.depends.device_type.clone(),
        payload_type: info.header.payload.payload_type.clone(),
        signed: info.signature != SignatureStatus::Unsigned,
        size,
        sha256,
        created: ids::now_rfc3339(),
        tampered: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mender_artifact::writer::{write_artifact, ArtifactSpec, PayloadFile, WriteOptions};
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    fn victim(dir: &Path) -> std::path::PathBuf {
        let victim = dir.join("victim");
        std::fs::write(&victim, b"victim").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        victim
    }

    fn assert_untouched(victim: &Path) {
        let data = std::fs::read(victim).unwrap();
        assert!(
            data == b"victim",
            "written through a link: the victim now has {} bytes, starting {:?}",
            data.len(),
            String::from_utf8_lossy(&data[..data.len().min(16)])
        );
        let mode = std::fs::metadata(victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "mode changed through a link");
    }

    fn sim(dir: &Path) -> (Sim, std::path::PathBuf) {
        let sim = Sim::open(&dir.join("state"), "https://sim".into(), 1 << 20).unwrap();
        let artifacts = artifacts_dir(sim.dir());
        std::fs::create_dir_all(&artifacts).unwrap();
        (sim, artifacts)
    }

    /// Whoever can write the artifacts directory can plant links: the temporary file of
    /// an upload from a file replaces whatever sits at its path (a link to a file, a
    /// dangling link), never writes through it.
    #[tokio::test]
    async fn a_file_upload_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let (sim, artifacts) = sim(dir.path());
        let victim = victim(dir.path());

        let mut bytes = Vec::new();
        write_artifact(
            &mut bytes,
            &ArtifactSpec::rootfs("release-1", ["dev"]),
            vec![PayloadFile::new(
                "rootfs.img",
                3,
                std::io::Cursor::new(b"abc".to_vec()),
            )],
            &WriteOptions::default(),
        )
        .await
        .unwrap();
        let source = dir.path().join("release-1.mender");
        std::fs::write(&source, &bytes).unwrap();

        // The file copy.
        std::os::unix::fs::symlink(&victim, artifacts.join(".upload-one")).unwrap();
        let record = upload_file_as(&sim, &source, "one".into()).await.unwrap();
        assert_untouched(&victim);
        assert_eq!(record.name, "release-1");
        let stored = sim.artifact_path("one");
        assert!(std::fs::symlink_metadata(&stored).unwrap().is_file());
        assert_eq!(std::fs::read(&stored).unwrap(), bytes);

        let created = dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&created, artifacts.join(".upload-two")).unwrap();
        upload_file_as(&sim, &source, "two".into()).await.unwrap();
        assert!(
            std::fs::symlink_metadata(&created).is_err(),
            "created through a dangling link"
        );
    }

    /// The same for a streamed upload's temporary file (and a crash's leftover there).
    #[tokio::test]
    async fn an_upload_temp_file_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, artifacts) = sim(dir.path());
        let victim = victim(dir.path());
        let created = dir.path().join("created-through-link");
        let tmp = artifacts.join(".upload-three");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let mut f = create_temp(&tmp).await.unwrap();
        f.write_all(b"upload").await.unwrap();
        f.sync_all().await.unwrap();
        drop(f);
        assert_untouched(&victim);
        assert!(std::fs::symlink_metadata(&tmp).unwrap().is_file());
        std::fs::remove_file(&tmp).unwrap();
        std::os::unix::fs::symlink(&created, &tmp).unwrap();
        drop(create_temp(&tmp).await.unwrap());
        assert!(
            std::fs::symlink_metadata(&created).is_err(),
            "created through a dangling link"
        );
        std::fs::remove_file(&tmp).unwrap();
        std::fs::write(&tmp, b"leftover from a crash").unwrap();
        let mut f = create_temp(&tmp).await.unwrap();
        f.write_all(b"new").await.unwrap();
        f.sync_all().await.unwrap();
        drop(f);
        assert_eq!(std::fs::read(&tmp).unwrap(), b"new");
    }
}
