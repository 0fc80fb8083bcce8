//! The end of a tar: after the reader has seen the first end-of-archive block, what remains
//! of the stream must be the second zero block plus, at most, record padding of zeros.
//! Without this check an archive cut exactly at an entry boundary would look complete.

use tokio::io::AsyncRead;
use tokio_tar::Archive;

use super::error::ArtifactError;
use super::io::read_bounded;

/// GNU tar pads archives to 10 KiB records; allow that much and a little more.
const MAX_TRAILER: u64 = 64 * 1024;

/// Consumes the rest of a tar whose entries stream has ended. `context` names the tar.
pub async fn finish_tar<R: AsyncRead + Unpin>(
    archive: Archive<R>,
    context: &str,
) -> Result<R, ArtifactError> {
    let mut inner = archive.into_inner().map_err(|_| {
        ArtifactError::Usage(format!("{context}: tar entries still in use at its end"))
    })?;
    let rest = read_bounded(&mut inner, MAX_TRAILER, &format!("end of {context}")).await?;
    if rest.len() < 512 {
        return Err(ArtifactError::Truncated(format!(
            "{context} ends without its end-of-archive blocks"
        )));
    }
    if let Some(pos) = rest.iter().position(|b| *b != 0) {
        return Err(ArtifactError::Tar {
            context: context.to_string(),
            detail: format!("non-zero data {pos} bytes after the end-of-archive block"),
        });
    }
    Ok(inner)
}
