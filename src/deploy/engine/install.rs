//! The engine's install: the download streamed through the install pipeline
//! ([`crate::deploy::pipeline`]) with the engine's own records, reports and log.
//!
//! Invariants: the deployment record is saved at every step the pipeline reports
//! (`verified` with the new provides, `Activating` before `finish`, `Activated` as soon as
//! it returns), so the failure path and a restart undo by the saved phase; progress reports
//! never hold up the stream, and all of them settle before the next status.

use std::time::Instant;

use mender_bridge_backends::{Activation, Backend, BackendError, Progress, ProgressSink};

use super::{backend_log_to, log_to, Engine, EngineConfig};
use crate::client::Client;
use crate::deploy::pipeline::{self, Hooks, Installed, PipelineError, Target, Verified};
use crate::deploy::progress::{substate, Throttle};
use crate::deploy::report::{report, Reported};
use crate::deploy::store::{DeploymentRecord, Phase, Provides, Store};
use crate::deploy::stream::StreamProgress;
use mender_api::{DeploymentInstructions, DeploymentStatus};
use mender_artifact::ArtifactHeader;

/// Why a deployment step did not complete.
pub(super) enum Stop {
    Aborted,
    Failed(String),
}

impl From<PipelineError> for Stop {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Aborted => Stop::Aborted,
            e => Stop::Failed(e.to_string()),
        }
    }
}

/// Download progress as throttled `downloading` substates; a 409 stops the stream.
///
/// A report runs as its own task, so the stream never waits for the server; at most one is
/// in flight (a due report waits for the next chunk after it). Invariant: `settle` is
/// awaited before the next status, so the server sees the reports in order.
struct DownloadProgress<'a> {
    client: &'a Client,
    id: &'a str,
    throttle: Throttle,
    inflight: Option<tokio::task::JoinHandle<Reported>>,
    aborted: bool,
    /// The last update that came while a report was in flight (not yet decided on).
    latest: Option<(u64, u64)>,
    /// The installer's own progress while it installs from the stream.
    note: Option<String>,
}

impl DownloadProgress<'_> {
    /// Waits for the report in flight; `false` if the server said the deployment is aborted.
    async fn wait(&mut self) -> bool {
        if let Some(h) = self.inflight.take() {
            self.aborted |= h.await.is_ok_and(|r| r == Reported::Aborted);
        }
        !self.aborted
    }

    fn send_if_due(&mut self, done: u64, size: u64) {
        let percent = (done * 100).checked_div(size).unwrap_or(100) as u8;
        if !self.throttle.should_send(percent, Instant::now()) {
            return;
        }
        let text = substate("downloading", done, Some(size), self.note.as_deref());
        let (client, id) = (self.client.clone(), self.id.to_string());
        self.inflight = Some(tokio::spawn(async move {
            report(&client, &id, DeploymentStatus::Downloading, Some(&text)).await
        }));
    }
}

impl StreamProgress for DownloadProgress<'_> {
    async fn update(&mut self, done: u64, size: u64) -> bool {
        if self.inflight.as_ref().is_some_and(|h| h.is_finished()) && !self.wait().await {
            return false;
        }
        if self.inflight.is_some() {
            self.latest = Some((done, size));
            return true;
        }
        self.latest = None;
        self.send_if_due(done, size);
        true
    }

    fn note(&mut self, note: Option<String>) {
        self.note = note;
    }

    /// At the end of the stream: waits for the report in flight, then sends the last update
    /// it held up if it is due (so `100%` is shown). `false`: the deployment is aborted.
    async fn settle(&mut self) -> bool {
        if !self.wait().await {
            return false;
        }
        if let Some((done, size)) = self.latest.take() {
            self.send_if_due(done, size);
            return self.wait().await;
        }
        true
    }
}

/// Forwards backend progress (during `finish`) to the reporting loop.
struct ChannelSink(tokio::sync::mpsc::UnboundedSender<Progress>);

impl ProgressSink for ChannelSink {
    fn report(&self, progress: Progress) {
        let _ = self.0.send(progress);
    }
}

/// `backend.finish`, turning its progress into throttled `installing` substates.
async fn finish_with_progress<B: Backend>(
    backend: &mut B,
    client: &Client,
    id: &str,
    cfg: &EngineConfig,
) -> Result<Activation, BackendError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = ChannelSink(tx);
    let fut = backend.finish(&sink);
    tokio::pin!(fut);
    let mut throttle = Throttle::new(cfg.progress_interval, cfg.progress_step);
    loop {
        tokio::select! {
            r = &mut fut => return r,
            Some(p) = rx.recv() => {
                let percent = p.percent.unwrap_or(0);
                if throttle.should_send(percent, Instant::now()) {
                    let text = match p.percent {
                        Some(pc) => format!("installing {pc}% {}", p.message.as_deref().unwrap_or("")),
                        None => substate("installing", p.bytes_done, p.bytes_total, p.message.as_deref()),
                    };
                    let _ = report(client, id, DeploymentStatus::Installing, Some(text.trim_end())).await;
                }
            }
        }
    }
}

/// The engine's side of the pipeline: the deployment record, the deployment log, the
/// server's statuses.
struct EngineHooks<'a> {
    client: &'a Client,
    store: &'a Store,
    cfg: &'a EngineConfig,
    rec: &'a mut DeploymentRecord,
    /// The artifact name the server offered.
    offered: &'a str,
}

impl EngineHooks<'_> {
    /// Saves the record before the next step; a failed save stops the deployment.
    fn save(&mut self) -> Result<(), Stop> {
        self.store
            .save(self.rec)
            .map_err(|e| Stop::Failed(e.to_string()))
    }
}

impl<B: Backend> Hooks<B> for EngineHooks<'_> {
    type Error = Stop;

    fn log(&mut self, warning: bool, line: String) {
        log_to(self.store, if warning { "warning" } else { "info" }, line);
    }

    fn script_output(&mut self, line: String) {
        log_to(self.store, "info", line);
    }

    /// The payload type is recorded before any payload byte: after a restart it names the
    /// backend (or Update Module) that must clean up.
    fn accepted(&mut self, header: &ArtifactHeader) -> Result<(), Stop> {
        if header.name != self.offered {
            return Err(Stop::Failed(format!(
                "the artifact is named '{}', the server offered '{}'",
                header.name, self.offered
            )));
        }
        self.rec.payload_type = header.payload.payload_type.clone().unwrap_or_default();
        self.save()
    }

    async fn verified(&mut self, verified: Verified) -> Result<(), Stop> {
        log_to(
            self.store,
            "info",
            "artifact verified: signature, header and payload checksums",
        );
        self.rec.payload_type = verified.payload_type.unwrap_or_default();
        self.rec.new_provides = verified.provides;
        self.rec.verified = true;
        self.save()?;
        // The server may abort until the installer is asked to activate (the failure
        // path's abort stops the backend).
        if verified.has_payload
            && report(
                self.client,
                &self.rec.id,
                DeploymentStatus::Installing,
                None,
            )
            .await
                == Reported::Aborted
        {
            return Err(Stop::Aborted);
        }
        Ok(())
    }

    fn activating(&mut self) -> Result<(), Stop> {
        self.rec.phase = Phase::Activating;
        self.save()
    }

    async fn finish(&mut self, backend: &mut B) -> Result<Activation, BackendError> {
        let r = finish_with_progress(backend, self.client, &self.rec.id, self.cfg).await;
        backend_log_to(self.store, backend);
        r
    }

    fn activated(&mut self, _outcome: Activation) -> Result<(), Stop> {
        self.rec.phase = Phase::Activated;
        self.save()
    }
}

impl<B: Backend> Engine<B> {
    /// Download, verify and install through the pipeline: every payload byte goes through
    /// the verifying reader into the backend; nothing is activated unless the whole
    /// artifact verified.
    pub(super) async fn install(
        &mut self,
        instr: &DeploymentInstructions,
        current: &Provides,
        rec: &mut DeploymentRecord,
    ) -> Result<Activation, Stop> {
        let refresh = self.refresh_url(&instr.id);
        let id = rec.id.clone();
        let Engine {
            client,
            store,
            backend,
            cfg,
            last_download,
        } = self;
        let client: &Client = client;
        let source = async move {
            let download = client
                .downloader()
                .start(&instr.artifact.source.uri, Some(refresh))
                .await
                .map_err(|e| Stop::Failed(format!("download: {e}")))?;
            *last_download = Some(download.stats());
            Ok(download.into_reader())
        };
        let mut progress = DownloadProgress {
            client,
            id: &id,
            throttle: Throttle::new(cfg.progress_interval, cfg.progress_step),
            inflight: None,
            aborted: false,
            latest: None,
            note: None,
        };
        let mut hooks = EngineHooks {
            client,
            store,
            cfg,
            rec,
            offered: &instr.artifact.artifact_name,
        };
        let target = Target {
            backend,
            scripts: &cfg.scripts,
            read: &cfg.read,
            device_type: &cfg.device_type,
            current,
        };
        match pipeline::install(target, source, &mut progress, &mut hooks).await? {
            // An empty (bootstrap) payload: nothing to install, only provides to store.
            Installed::NothingToActivate => Ok(Activation::Installed),
            Installed::Activated(outcome) => Ok(outcome),
            // Its hooks never ask the pipeline to stop after the download.
            Installed::Suspended => Err(PipelineError::Unsupported(
                "a deployment cannot stop after its download".into(),
            )
            .into()),
        }
    }
}
