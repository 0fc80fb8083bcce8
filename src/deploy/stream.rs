//! The payload loop of the install pipeline ([`super::pipeline`]): every file of the data
//! member goes from the verifying reader into the backend, in order, with a progress
//! callback after each chunk.

use tokio::io::AsyncRead;

use mender_bridge_backends::{Backend, BackendError, PayloadInfo};

use mender_artifact::{ArtifactError, ArtifactReader};

/// Told about progress after every chunk; `false` stops the stream.
pub trait StreamProgress: Send {
    fn update(&mut self, done: u64, size: u64) -> impl std::future::Future<Output = bool> + Send;
    /// The backend's own progress while streaming ([`Backend::stream_note`]), told before
    /// each `update`. The default ignores it.
    fn note(&mut self, _note: Option<String>) {}
    /// After the stream: waits for anything the progress still has in flight; `false` if
    /// the install must stop (the deployment was aborted). The default has nothing to wait
    /// for.
    fn settle(&mut self) -> impl std::future::Future<Output = bool> + Send {
        async { true }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("artifact: {0}")]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Unsupported(String),
    /// The progress callback asked to stop (the deployment was aborted).
    #[error("stopped")]
    Stopped,
}

/// Streams the payload of `reader` into `backend` and verifies the rest of the artifact.
/// `payload_type` is the header's (`None` for an empty payload, which must carry no file);
/// a backend takes one payload file unless it takes the whole payload
/// ([`Backend::whole_payload`]: every file, `begin` for each, and none at all is fine).
/// `progress.update(done, size)` runs after every chunk — the caller throttles — and
/// returning `false` stops the stream. On any error after `begin` the backend is aborted.
/// Returns whether the backend has something to finish (false for an empty payload, and
/// for a typed payload without files unless the backend takes whole payloads).
pub async fn stream_payload<R, B, P>(
    mut reader: ArtifactReader<R>,
    backend: &mut B,
    payload_type: Option<&str>,
    progress: &mut P,
) -> Result<bool, StreamError>
where
    R: AsyncRead + Unpin + Send + 'static,
    B: Backend,
    P: StreamProgress,
{
    let mut installed = false;
    while let Some(file) = reader.next_file().await? {
        let Some(t) = payload_type else {
            return Err(StreamError::Unsupported(
                "an empty payload carries a file".into(),
            ));
        };
        if installed && !backend.whole_payload() {
            backend.abort().await?;
            return Err(StreamError::Unsupported(format!(
                "the '{t}' backend takes one payload file; the artifact has more"
            )));
        }
        installed = true;
        backend
            .begin(&PayloadInfo {
                payload_type: t.to_string(),
                file_name: file.name.clone(),
                size: file.size,
                sha256: file.sha256,
            })
            .await?;
        let mut done = 0u64;
        let result: Result<(), StreamError> = async {
            if !progress.update(0, file.size).await {
                return Err(StreamError::Stopped);
            }
            while let Some(chunk) = reader.read_chunk().await? {
                done += chunk.len() as u64;
                backend.write(chunk).await?;
                progress.note(backend.stream_note());
                if !progress.update(done, file.size).await {
                    return Err(StreamError::Stopped);
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = backend.abort().await;
            return Err(e);
        }
    }
    if let Err(e) = reader.finish().await {
        if installed {
            let _ = backend.abort().await;
        }
        return Err(e.into());
    }
    Ok(installed || (payload_type.is_some() && backend.whole_payload()))
}
