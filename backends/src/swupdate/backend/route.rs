//! The route of a deployment's payload (stream or spool), decided at each preflight from
//! `mode` and the signature probe.
//!
//! Invariant: [`Route::Stream`] only when SWUpdate refused the unsigned probe just now, or
//! (mode `auto`) when nothing could authenticate the payload anyway, which is logged as a
//! warning; mode `stream` without proven enforcement is refused before the download.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{broken, Route, SwupdateBackend};
use crate::spool;
use crate::swupdate::abi::{RunType, Status};
use crate::swupdate::probe::{self, Verdict};
use crate::swupdate::SwupdateMode;
use crate::BackendError;

/// After a FAILURE, how long the probe waits for SWUpdate's error texts, which come on
/// another connection than the result.
const PROBE_SETTLE: Duration = Duration::from_secs(1);

impl SwupdateBackend {
    /// Sends the unsigned probe as a dry run and judges SWUpdate's answer
    /// ([`probe`](crate::swupdate::probe)). Errors only when the probe cannot be sent (daemon absent,
    /// busy after the retries, refused, or someone else's socket).
    pub async fn probe(&mut self) -> Result<Verdict, BackendError> {
        let (mut stream, monitor) = self
            .open_install(RunType::DryRun, probe::PROBE_INFO, true)
            .await?;
        let swu = probe::probe_swu();
        let limit = self.config.timeout;
        let sent = match tokio::time::timeout(limit, stream.write_all(&swu)).await {
            Ok(Ok(())) => Ok(()),
            // SWUpdate stops reading once it refused the image: its result decides.
            Ok(Err(e)) if broken(&e) => Ok(()),
            Ok(Err(e)) => Err(format!("writing the probe: {e}")),
            Err(_) => Err(format!(
                "SWUpdate took no probe data for {} s",
                limit.as_secs()
            )),
        };
        let _ = stream.shutdown().await;
        drop(stream);
        let result = match sent {
            Ok(()) => self.wait_result(&monitor, limit, None, (0, 0)).await,
            Err(e) => Err(e),
        };
        let mut verdict = probe::classify(result.clone(), &monitor.state().errors);
        if matches!(result, Ok(Status::Failure)) && !verdict.enforcing() {
            let until = tokio::time::Instant::now() + PROBE_SETTLE;
            while tokio::time::Instant::now() < until && !verdict.enforcing() {
                monitor.changed(Duration::from_millis(100)).await;
                verdict = probe::classify(result.clone(), &monitor.state().errors);
            }
        }
        tracing::info!(?verdict, "SWUpdate signature probe");
        Ok(verdict)
    }

    /// Decides this deployment's route from the mode and (except in mode `spool`) the
    /// probe. Mode `stream` without proven enforcement is refused.
    pub(super) async fn decide(&mut self) -> Result<Route, BackendError> {
        let mode = self.config.mode;
        if mode == SwupdateMode::Spool {
            self.verdict = None;
            return self.spool_route("mode \"spool\"");
        }
        let verdict = self.probe().await?;
        self.verdict = Some(verdict.clone());
        if verdict.enforcing() {
            let line = format!("{}: streaming the payload into it", verdict.describe());
            tracing::info!("{line}");
            self.keep_log([format!("SWUpdate route: {line}")]);
            return Ok(Route::Stream);
        }
        match mode {
            SwupdateMode::Stream => Err(BackendError::not_started(format!(
                "{}; backend.swupdate.mode = \"stream\" needs SWUpdate to enforce signed \
                 images (swupdate -k): use mode \"spool\" or \"auto\"",
                verdict.describe()
            ))),
            _ if self.config.payload_authenticated => self.spool_route(&format!(
                "{}; the artifact signature is checked",
                verdict.describe()
            )),
            _ => {
                let line = format!(
                    "{}, and no ArtifactVerifyKey is set: nothing authenticates the payload; \
                     streaming it into SWUpdate unverified",
                    verdict.describe()
                );
                tracing::warn!("{line}");
                self.keep_log([format!("SWUpdate route: WARNING: {line}")]);
                Ok(Route::Stream)
            }
        }
    }

    /// The spool directory is usable (created when missing, leftovers removed).
    pub(super) fn spool_route(&mut self, why: &str) -> Result<Route, BackendError> {
        let dir = self.config.spool_dir.clone();
        spool::prepare_dir(&dir, &spool::SWUPDATE)?;
        let line = format!(
            "{why}: the payload is spooled in {} and reaches SWUpdate only after its checksum \
             matched",
            dir.display()
        );
        tracing::info!("{line}");
        self.keep_log([format!("SWUpdate route: {line}")]);
        Ok(Route::Spool)
    }
}
