//! The install sequence, once, for every way of installing an artifact (the deployment
//! engine, the standalone `install`, and any later one): clear the previous artifact's
//! scripts → `Download_Enter` → open the source and the verifying reader → the depends
//! check → the backend's route by payload type (`select`), its preflight and `prepare`
//! (the verified header) → stream every payload byte into the backend → its `downloaded`
//! → `Download_Leave` → keep the verified artifact's scripts and provides →
//! `ArtifactInstall_Enter` → `finish` (activation) → `ArtifactInstall_Leave`. A failure
//! runs the `_Error` scripts of the state it happened in (`Download_Error` up to the
//! install, `ArtifactInstall_Error` from `ArtifactInstall_Enter` on), as the official
//! client does. A caller that
//! stops after the download ([`Hooks::stop_after_download`], `--stop-before
//! ArtifactInstall_Enter`) has the backend hold the payload before the first byte and
//! suspend it after `Download_Leave`; a later process resumes at `ArtifactInstall_Enter`.
//!
//! What differs between the ways of installing — where each step is recorded, where the
//! log lines go, how activation progress is shown — is the caller's [`Hooks`]; how payload
//! progress is shown is its [`StreamProgress`]. A new way of installing implements those two
//! and calls [`install`]; it never repeats the sequence.
//!
//! Invariants (issue 10's rules, kept here only):
//! - the previous artifact's scripts are removed before anything else, so a failed install
//!   runs no artifact script, neither its own nor a leftover;
//! - nothing from the header (scripts, provides) is kept before the whole artifact verified
//!   (signature, header and every payload checksum): [`Hooks::verified`] is the first time
//!   the caller may record it;
//! - [`Hooks::activating`] is told (and must have recorded it) before
//!   `ArtifactInstall_Enter` and the backend's `finish`, and [`Hooks::activated`] as soon as `finish` returned, so the caller's
//!   failure path, or a restart, rolls back from then on;
//! - an error from any step ends the sequence there; undoing (abort before activation,
//!   rollback after, the failure scripts) is the caller's, by what it recorded.

use std::future::Future;

use mender_bridge_backends::module::CurrentProvides;
use mender_bridge_backends::{Activation, Backend, BackendError, ModuleHeader};
use tokio::io::AsyncRead;

use super::scripts::{Action, ScriptError, ScriptRunner, State};
use super::store::Provides;
use super::stream::{stream_payload, StreamError, StreamProgress};
use mender_artifact::provides::{apply_provides, check_depends, DependsError};
use mender_artifact::{ArtifactError, ArtifactHeader, ArtifactReader, ReadOptions};

/// Why the sequence stopped (the caller's own errors come back as they are).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("backend not ready: {0}")]
    Preflight(#[source] BackendError),
    #[error("artifact: {0}")]
    Open(#[source] ArtifactError),
    #[error("artifact does not fit this device: {0}")]
    Depends(#[from] DependsError),
    /// The header's payload type is not one the backend installs.
    #[error("{0}")]
    Unsupported(String),
    /// Streaming or verifying failed (never [`StreamError::Stopped`]: that is `Aborted`).
    #[error(transparent)]
    Stream(StreamError),
    /// The backend's `finish` (activation) failed.
    #[error(transparent)]
    Finish(BackendError),
    /// The caller's progress asked to stop (the deployment was aborted on the server).
    #[error("stopped")]
    Aborted,
}

/// What every install works on.
pub struct Target<'a, B> {
    pub backend: &'a mut B,
    pub scripts: &'a ScriptRunner,
    pub read: &'a ReadOptions,
    pub device_type: &'a str,
    /// The device's provides before the install: depends are checked against them and the
    /// artifact's provides applied to them.
    pub current: &'a Provides,
}

/// The whole artifact verified and its scripts are stored.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The header's payload type (`None`: an empty payload).
    pub payload_type: Option<String>,
    /// The device's provides once the artifact is installed.
    pub provides: Provides,
    /// False for an empty (bootstrap) payload: nothing will be activated.
    pub has_payload: bool,
}

/// How the sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// An empty (bootstrap) payload verified: nothing to activate, only provides to store.
    NothingToActivate,
    /// The backend's `finish` returned this, and `ArtifactInstall_Leave` passed.
    Activated(Activation),
    /// Stopped before `ArtifactInstall_Enter` ([`Hooks::stop_after_download`]): the
    /// backend kept the verified payload; [`Hooks::suspended`] has what it needs.
    Suspended,
}

/// The caller's side of the sequence, called in this order: `log` (the trust note) →
/// [`accepted`](Hooks::accepted) → [`verified`](Hooks::verified) →
/// [`activating`](Hooks::activating) → [`finish`](Hooks::finish) →
/// [`activated`](Hooks::activated); `script_output` whenever a state script wrote to
/// standard error. An `Err` from a hook ends the sequence with it.
pub trait Hooks<B: Backend>: Send {
    type Error: From<PipelineError> + Send;

    /// A line for the install's log (`warning`: at warning level).
    fn log(&mut self, warning: bool, line: String);

    /// A line a state script wrote to standard error (prefixed with its name).
    fn script_output(&mut self, line: String);

    /// The header passed the depends and payload-type checks; no payload byte was streamed
    /// yet. Record that the install of `header.name` began (or refuse the header).
    fn accepted(&mut self, header: &ArtifactHeader) -> Result<(), Self::Error>;

    /// The whole artifact verified and its scripts are stored: record `verified` (the new
    /// provides). An error stops before anything is activated.
    fn verified(
        &mut self,
        verified: Verified,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stop after the download, before `ArtifactInstall_Enter`? The default: no.
    fn stop_after_download(&self) -> bool {
        false
    }

    /// The install stopped after its download: `kept` is what the backend needs to finish
    /// it in a later process ([`Backend::resume`]). Must be recorded before returning.
    fn suspended(&mut self, _kept: serde_json::Value) -> Result<(), Self::Error> {
        Err(PipelineError::Unsupported("this install cannot stop after its download".into()).into())
    }

    /// `ArtifactInstall_Enter` and `finish` are next: from here the installer may activate
    /// the new software, so any failure must roll back. Must be recorded before returning.
    fn activating(&mut self) -> Result<(), Self::Error>;

    /// Runs the backend's `finish`, showing its progress as the caller does.
    fn finish(
        &mut self,
        backend: &mut B,
    ) -> impl Future<Output = Result<Activation, BackendError>> + Send;

    /// `finish` returned `outcome`: the new software is activated.
    fn activated(&mut self, outcome: Activation) -> Result<(), Self::Error>;
}

/// Runs the install sequence (see the module doc) over `target`, reading the artifact from
/// `source` (awaited only after `Download_Enter` passed; the backend's route and preflight
/// are decided by the verified header, before any payload byte).
pub async fn install<B, R, P, H>(
    target: Target<'_, B>,
    source: impl Future<Output = Result<R, H::Error>> + Send,
    progress: &mut P,
    hooks: &mut H,
) -> Result<Installed, H::Error>
where
    B: Backend,
    R: AsyncRead + Unpin + Send + 'static,
    P: StreamProgress,
    H: Hooks<B>,
{
    let Target {
        backend,
        scripts,
        read,
        device_type,
        current,
    } = target;
    // Nothing of the previous artifact may run for this one.
    scripts
        .clear_artifact_scripts()
        .await
        .map_err(PipelineError::from)?;
    // The Download state: from `Download_Enter` until the install begins, a failure runs
    // `Download_Error` (a rootfs script: the artifact's are not kept yet, or just were).
    let downloaded: Result<Option<Installed>, H::Error> = async {
        script(scripts, hooks, State::Download, Action::Enter).await?;
        let reader = ArtifactReader::open(source.await?, read.clone())
            .await
            .map_err(PipelineError::Open)?;
        let (warning, note) = reader.info().signature.trust_note();
        hooks.log(warning, note);
        let header = reader.info().header.clone();
        check_depends(&header, device_type, current).map_err(PipelineError::from)?;
        let payload_type = header.payload.payload_type.clone();
        // The route by type, then the chosen installer's own checks, before a payload byte.
        backend
            .select(payload_type.as_deref())
            .map_err(|e| PipelineError::Unsupported(e.to_string()))?;
        backend
            .preflight()
            .await
            .map_err(PipelineError::Preflight)?;
        if let Some(t) = &payload_type {
            backend
                .prepare(&module_header(&header, t, device_type, current))
                .map_err(PipelineError::Preflight)?;
        }
        let stop = hooks.stop_after_download() && payload_type.is_some();
        if stop {
            backend
                .hold_after_download()
                .map_err(PipelineError::Preflight)?;
        }
        hooks.accepted(&header)?;

        let streamed = stream_payload(reader, backend, payload_type.as_deref(), progress).await;
        if !progress.settle().await && streamed.is_ok() {
            let _ = backend.abort().await;
            return Err(PipelineError::Aborted.into());
        }
        let has_payload = match streamed {
            Ok(installed) => installed,
            Err(StreamError::Stopped) => return Err(PipelineError::Aborted.into()),
            Err(e) => return Err(PipelineError::Stream(e).into()),
        };
        if has_payload {
            // The download's own end (an Update Module's `Download` exits), still before
            // `Download_Leave`: a restart up to here only cleans up.
            if let Err(e) = backend.downloaded().await {
                let _ = backend.abort().await;
                return Err(PipelineError::Stream(StreamError::Backend(e)).into());
            }
        }
        script(scripts, hooks, State::Download, Action::Leave).await?;
        // Verified: now, and only now, the header's scripts and provides are kept.
        scripts
            .store_artifact_scripts(&header.scripts)
            .await
            .map_err(PipelineError::from)?;
        hooks
            .verified(Verified {
                payload_type,
                provides: apply_provides(current, &header),
                has_payload,
            })
            .await?;
        if !has_payload {
            return Ok(Some(Installed::NothingToActivate));
        }
        if stop {
            let kept = backend
                .suspend()
                .await
                .map_err(|e| PipelineError::Stream(StreamError::Backend(e)))?;
            hooks.suspended(kept)?;
            return Ok(Some(Installed::Suspended));
        }
        Ok(None)
    }
    .await;
    match downloaded {
        Ok(Some(done)) => return Ok(done),
        Ok(None) => {}
        Err(e) => {
            let _ = script(scripts, hooks, State::Download, Action::Error).await;
            return Err(e);
        }
    }

    // The ArtifactInstall state: from `ArtifactInstall_Enter` on, a failure rolls back (as
    // the official client does, even when that first script failed) after
    // `ArtifactInstall_Error`.
    let installed: Result<Activation, H::Error> = async {
        hooks.activating()?;
        script(scripts, hooks, State::ArtifactInstall, Action::Enter).await?;
        let outcome = hooks.finish(backend).await.map_err(PipelineError::Finish)?;
        hooks.activated(outcome)?;
        script(scripts, hooks, State::ArtifactInstall, Action::Leave).await?;
        Ok(outcome)
    }
    .await;
    if installed.is_err() {
        let _ = script(scripts, hooks, State::ArtifactInstall, Action::Error).await;
    }
    installed.map(Installed::Activated)
}

/// Runs the scripts of `state`/`action`, their standard error to the caller's log (an
/// `_Error` script's failure is only logged: [`ScriptRunner::run`]).
async fn script<B: Backend, H: Hooks<B>>(
    scripts: &ScriptRunner,
    hooks: &mut H,
    state: State,
    action: Action,
) -> Result<(), H::Error> {
    let r = scripts
        .run_logged(state, action, |line| hooks.script_output(line))
        .await;
    Ok(r.map_err(PipelineError::from)?)
}

/// What an Update Module's tree says about the artifact (`header/` and `current_*`), from
/// its verified header, laid out as the official client's `header-info` and `type-info`.
fn module_header(
    header: &ArtifactHeader,
    payload_type: &str,
    device_type: &str,
    current: &Provides,
) -> ModuleHeader {
    use serde_json::{json, Map, Value};
    let mut provides = Map::new();
    provides.insert("artifact_name".into(), json!(header.name));
    if let Some(g) = &header.group {
        provides.insert("artifact_group".into(), json!(g));
    }
    let d = &header.depends;
    let mut depends = Map::new();
    if !d.artifact_name.is_empty() {
        depends.insert("artifact_name".into(), json!(d.artifact_name));
    }
    depends.insert("device_type".into(), json!(d.device_type));
    if !d.artifact_group.is_empty() {
        depends.insert("artifact_group".into(), json!(d.artifact_group));
    }
    let header_info = json!({
        "payloads": [{"type": payload_type}],
        "artifact_provides": provides,
        "artifact_depends": depends,
    });
    let p = &header.payload;
    let mut type_info = Map::new();
    type_info.insert("type".into(), json!(payload_type));
    if !p.depends.is_empty() {
        type_info.insert("artifact_depends".into(), json!(p.depends));
    }
    if let Some(provides) = p.provides.as_ref().filter(|m| !m.is_empty()) {
        type_info.insert("artifact_provides".into(), json!(provides));
    }
    if let Some(clears) = p.clears_provides.as_ref().filter(|c| !c.is_empty()) {
        type_info.insert("clears_artifact_provides".into(), json!(clears));
    }
    ModuleHeader {
        artifact_name: header.name.clone(),
        artifact_group: header.group.clone().unwrap_or_default(),
        payload_type: payload_type.to_string(),
        header_info,
        type_info: Value::Object(type_info),
        meta_data: p.meta_data.clone().map(Value::Object),
        current: CurrentProvides {
            artifact_name: current.get("artifact_name").cloned().unwrap_or_default(),
            artifact_group: current.get("artifact_group").cloned().unwrap_or_default(),
            device_type: device_type.to_string(),
        },
    }
}
