//! The deployment store: what is installed (artifact name, group, provides) and the one
//! deployment in flight, each a small JSON file in the data directory, each replaced
//! atomically ([`crate::fsutil::write_atomic`]) before the step it describes is taken.
//!
//! Invariants: a deployment record is written before any risky step and removed only after
//! the server took its final status; every save counts, and a record saved more than
//! [`MAX_STORES`] times is treated as a loop (a crash-reboot cycle) and ends as a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{read_optional, write_atomic};

/// The official C++ client's limit on state writes for one deployment.
pub const MAX_STORES: u32 = 28;
/// Store files are tiny; anything larger is not ours.
const MAX_FILE: u64 = 1024 * 1024;
const INSTALLED: &str = "installed.json";
const DEPLOYMENT: &str = "deployment.json";
const LOG: &str = "deployment-log.json";
const STANDALONE: &str = "standalone.json";
/// Log entries kept for one deployment (the upload is capped again by the client).
const MAX_LOG_ENTRIES: usize = 2000;

/// Device provides: `artifact_name`, optional `artifact_group`, payload provides.
pub type Provides = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid store file: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("deployment {id} was saved {count} times: a crash or reboot loop; giving up")]
    LoopGuard { id: String, count: u32 },
}

/// Where a deployment is. Each value names the step about to be taken (or being taken)
/// when the process may die; start-up resumes from it (PROTOCOL.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Streaming the artifact into the backend. Resume: the backend has an incomplete
    /// image, nothing was activated → clean up, report failure.
    Installing,
    /// The artifact verified and the backend's `finish` is running: it may activate the new
    /// software at any moment. Resume: stop the installer, roll back, report failure.
    Activating,
    /// `finish` returned: the new software is activated; `ArtifactInstall_Leave` runs.
    /// Resume: roll back, report failure.
    Activated,
    /// The new software is activated; the reboot is next. Resume: verify the reboot.
    Rebooting,
    /// After the reboot, checking that the new software runs. Resume: check again (an
    /// Update Module whose check was cut short says no), without the `ArtifactReboot`
    /// scripts, as the official client; then commit or roll back.
    Verifying,
    /// Running after the reboot, committing. Resume: verify again, then commit.
    Committing,
    /// Rolling back. Resume: roll back again (idempotent), then report failure.
    RollingBack,
    /// Rolled back; the host reboots out of the new software (an Update Module that
    /// answered `Automatic`). Resume: verify the rollback reboot (reboot again while the
    /// old software is not back), then report failure.
    RollbackRebooting,
    /// Undone (aborted or rolled back); the failure handling (`ArtifactFailure`) runs.
    /// Resume: run it again, clean up, report failure.
    Failing,
    /// The backend's cleanup (an Update Module's `Cleanup`) runs. Resume: clean up again
    /// and report failure, as both official clients do (a committed artifact stays).
    CleaningUp,
    /// Only the final status is left to report (and, for failures, the log).
    ReportSuccess,
    ReportFailure,
    ReportAlreadyInstalled,
}

impl Phase {
    /// The backend may have activated the new software (or is rolling it back): ending
    /// here takes a rollback, not an abort.
    pub fn may_be_activated(self) -> bool {
        matches!(
            self,
            Phase::Activating
                | Phase::Activated
                | Phase::Rebooting
                | Phase::Verifying
                | Phase::Committing
                | Phase::RollingBack
        )
    }

    /// Only a report is left: no risky step follows, so the loop guard does not apply.
    pub fn is_report(self) -> bool {
        matches!(
            self,
            Phase::ReportSuccess | Phase::ReportFailure | Phase::ReportAlreadyInstalled
        )
    }
}

/// The deployment in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub artifact_name: String,
    pub payload_type: String,
    pub phase: Phase,
    /// The provides to store when the deployment succeeds (computed from the artifact
    /// header once the whole artifact verified, so it survives the reboot).
    pub new_provides: Provides,
    /// Saves so far, including this one.
    pub store_count: u32,
    /// The whole artifact verified (every manifest line matched, the payload's hash): only
    /// then are its scripts stored, and only then may they run. Always true past
    /// `Installing`.
    #[serde(default)]
    pub verified: bool,
    /// Why it failed, when it did (goes into the deployment log).
    #[serde(default)]
    pub failure: Option<String>,
    /// The slot running when the commit started (the backend's name for it): a restart in
    /// `Committing` that finds the trial over and this slot still running knows the commit
    /// already happened.
    #[serde(default)]
    pub booted: Option<String>,
}

/// The store in a directory (normally `<data dir>/mender-bridge`).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        let path = self.dir.join(name);
        let Some(data) = read_optional(&path, MAX_FILE).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path,
                detail: e.to_string(),
            })
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        let data = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomic(&path, &data, 0o600).map_err(|source| StoreError::Io { path, source })
    }

    /// The installed artifact's provides, if any deployment (or bootstrap) stored them.
    pub fn installed(&self) -> Result<Option<Provides>, StoreError> {
        self.read(INSTALLED)
    }

    /// Replaces the installed provides (after a successful commit).
    pub fn set_installed(&self, provides: &Provides) -> Result<(), StoreError> {
        self.write(INSTALLED, provides)
    }

    /// The deployment in flight, if any.
    pub fn deployment(&self) -> Result<Option<DeploymentRecord>, StoreError> {
        self.read(DEPLOYMENT)
    }

    /// Saves `record` (incrementing its store count first). Past [`MAX_STORES`] the save
    /// is refused with [`StoreError::LoopGuard`] unless only a report is left; the caller
    /// then ends the deployment as a failure without taking further risky steps.
    pub fn save(&self, record: &mut DeploymentRecord) -> Result<(), StoreError> {
        record.store_count += 1;
        if record.store_count > MAX_STORES && !record.phase.is_report() {
            return Err(StoreError::LoopGuard {
                id: record.id.clone(),
                count: record.store_count,
            });
        }
        self.write(DEPLOYMENT, record)
    }

    /// The deployment log so far (kept across reboots for the failure upload).
    pub fn log(&self) -> Result<Vec<mender_api::LogMessage>, StoreError> {
        Ok(self.read(LOG)?.unwrap_or_default())
    }

    /// Adds entries to the deployment log; past the cap the oldest are dropped.
    pub fn append_log(&self, entries: &[mender_api::LogMessage]) -> Result<(), StoreError> {
        let mut log = self.log()?;
        log.extend_from_slice(entries);
        if log.len() > MAX_LOG_ENTRIES {
            log.drain(..log.len() - MAX_LOG_ENTRIES);
        }
        self.write(LOG, &log)
    }

    /// Moves an unreadable deployment record aside (to `deployment.json.corrupt`, replacing
    /// an older one) so that it no longer blocks every later deployment; returns where it
    /// went.
    pub fn quarantine_deployment(&self) -> Result<PathBuf, StoreError> {
        let from = self.dir.join(DEPLOYMENT);
        let to = self.dir.join(format!("{DEPLOYMENT}.corrupt"));
        std::fs::rename(&from, &to).map_err(|source| StoreError::Io {
            path: from.clone(),
            source,
        })?;
        Ok(to)
    }

    /// The deployment id of a record that does not parse as a record, if the file is still
    /// JSON with a plain string `id` (so its failure can be reported).
    pub fn salvage_deployment_id(&self) -> Option<String> {
        let data = read_optional(&self.dir.join(DEPLOYMENT), MAX_FILE).ok()??;
        let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
        let id = v.get("id")?.as_str()?;
        // Deployment ids are UUIDs; anything else is not trusted to name one.
        (!id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| id.to_string())
    }

    /// Removes the deployment record and its log: the server has the final status.
    pub fn clear_deployment(&self) -> Result<(), StoreError> {
        for name in [LOG, DEPLOYMENT] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Io { path, source }),
            }
        }
        match std::fs::File::open(&self.dir).and_then(|d| d.sync_all()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                path: self.dir.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Where a standalone install (`mender-bridge install`) is. Each phase is saved before its
/// states run, so a restart (`resume`) goes on from the phase it finds, as the official
/// client does from its `in_state`; a `--stop-before` stops at the phase whose states are
/// next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandalonePhase {
    /// Streaming into the backend, or in `ArtifactInstall_Enter`/`finish`; nothing
    /// activated yet. Found later: the install was interrupted; `rollback` or `resume`
    /// undoes it, `commit` refuses.
    Installing,
    /// Downloaded and verified, stopped before `ArtifactInstall_Enter`: the backend kept the
    /// payload ([`StandaloneRecord::kept`]). `resume` installs it, `rollback` discards it.
    Downloaded,
    /// The backend's `finish` returned (the new software is activated, for backends that
    /// boot into it) and `ArtifactInstall_Leave` runs. Found later: the install was
    /// interrupted; `rollback` or `resume` undoes it, `commit` refuses.
    Activated,
    /// Installed (and activated, for backends that boot into it): `commit` (or `resume`)
    /// or `rollback`.
    Installed,
    /// Committed (the provides stored); `ArtifactCommit_Leave` and the cleanup are next.
    Committed,
    /// `ArtifactRollback` is next.
    RollingBack,
    /// Rolled back or given up; `ArtifactFailure` is next.
    Failing,
    /// Only the cleanup is left.
    CleaningUp,
}

/// A standalone install awaiting `commit`, `rollback` or `resume`; kept across the reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandaloneRecord {
    pub artifact_name: String,
    pub payload_type: String,
    pub phase: StandalonePhase,
    /// The provides to store on commit (from the header, set once the artifact verified).
    pub new_provides: Provides,
    /// The backend asked for a reboot into the new software.
    pub reboot_required: bool,
    /// What the backend kept of a download for the process that installs it
    /// ([`StandalonePhase::Downloaded`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<serde_json::Value>,
    /// The install failed: whatever finishes it reports a failure.
    #[serde(default)]
    pub failed: bool,
    /// A reboot returns to the old software (found by the rollback).
    #[serde(default)]
    pub rollback_reboot: bool,
    /// The commit is done (the provides stored).
    #[serde(default)]
    pub committed: bool,
}

impl StandaloneRecord {
    /// The record of an install that was just accepted.
    pub fn new(artifact_name: String, payload_type: String) -> Self {
        StandaloneRecord {
            artifact_name,
            payload_type,
            phase: StandalonePhase::Installing,
            new_provides: Provides::default(),
            reboot_required: false,
            kept: None,
            failed: false,
            rollback_reboot: false,
            committed: false,
        }
    }
}

impl Store {
    /// The standalone install in progress, if any.
    pub fn standalone(&self) -> Result<Option<StandaloneRecord>, StoreError> {
        self.read(STANDALONE)
    }

    /// Saves the standalone record (atomically, like every store file).
    pub fn save_standalone(&self, record: &StandaloneRecord) -> Result<(), StoreError> {
        self.write(STANDALONE, record)
    }

    /// Forgets the standalone install (committed or rolled back).
    pub fn clear_standalone(&self) -> Result<(), StoreError> {
        let path = self.dir.join(STANDALONE);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io {
                path: self.dir.clone(),
                source,
            })
    }

    /// The device's provides: the installed ones, else only `artifact_name` from
    /// `artifact_info` (or `unknown`), as the engine reports them.
    /// A failed install that could not be undone: the artifact name becomes
    /// `<artifact>_INCONSISTENT` (the other provides stay), as the official client records
    /// it. Returns the name written.
    pub fn mark_inconsistent(
        &self,
        artifact: &str,
        artifact_info: &Path,
    ) -> Result<String, StoreError> {
        let mut provides = self.provides_or(artifact_info);
        let name = format!("{artifact}_INCONSISTENT");
        provides.insert("artifact_name".into(), name.clone());
        self.set_installed(&provides)?;
        Ok(name)
    }

    /// The device's provides: the bridge's own record; else, on a device that moved from
    /// the official client, what that client's store (`<data dir>/mender-store`) says is
    /// installed; else the name in `artifact_info` (or `unknown`).
    pub fn provides_or(&self, artifact_info: &Path) -> Provides {
        match self.installed() {
            Ok(Some(p)) if p.contains_key("artifact_name") => p,
            _ => self
                .dir
                .parent()
                .and_then(|data| official_provides(&data.join(OFFICIAL_STORE)))
                .unwrap_or_else(|| {
                    Provides::from([(
                        "artifact_name".to_string(),
                        artifact_info_name(artifact_info),
                    )])
                }),
        }
    }
}

/// The official client's store in the data directory (LMDB, one file).
pub const OFFICIAL_STORE: &str = "mender-store";

/// What the official client's store says is installed: `artifact-name`, `artifact-group`
/// (when set) and the type-info provides (`artifact-provides`, a JSON object). `None` when
/// there is no store or no name in it; an unreadable store is logged and ignored.
pub fn official_provides(path: &Path) -> Option<Provides> {
    if !path.exists() {
        return None;
    }
    let db = match super::lmdb::read_main_db(path) {
        Ok(db) => db,
        Err(e) => {
            tracing::warn!("the official client's store is not readable: {e}");
            return None;
        }
    };
    let text = |k: &str| {
        db.get(k.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let name = text("artifact-name").filter(|n| !n.is_empty())?;
    let mut provides = Provides::new();
    if let Some(raw) = text("artifact-provides") {
        match serde_json::from_str::<BTreeMap<String, String>>(&raw) {
            Ok(p) => provides.extend(p),
            Err(e) => tracing::warn!(
                "{}: artifact-provides is not a JSON object of strings: {e}",
                path.display()
            ),
        }
    }
    if let Some(group) = text("artifact-group").filter(|g| !g.is_empty()) {
        provides.insert("artifact_group".into(), group);
    }
    provides.insert("artifact_name".into(), name);
    tracing::debug!(
        "installed artifact from the official client's store {}",
        path.display()
    );
    Some(provides)
}

/// What the official client's store says it was doing when it stopped, if it stopped in
/// a deployment: its `state` record, as "state NAME of deployment
/// ID". The bridge does not resume it (docs/MIGRATING.md); the daemon says so at start.
pub fn official_in_flight(path: &Path) -> Option<String> {
    if !path.exists() {
        return None;
    }
    let db = super::lmdb::read_main_db(path).ok()?;
    // The Go client removes `state` when it is idle again (app/state.go idleState).
    let raw = db.get(b"state".as_slice())?;
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
    let field = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("?")
            .to_string()
    };
    Some(format!(
        "state {} of deployment {}",
        field("/Name"),
        field("/UpdateInfo/ID")
    ))
}

/// The artifact name a device without a store reports: `artifact_name=` from Mender's
/// `/etc/mender/artifact_info` (as the Go client falls back to), else `unknown`.
pub fn artifact_info_name(path: &Path) -> String {
    read_optional(path, MAX_FILE)
        .ok()
        .flatten()
        .and_then(|d| {
            String::from_utf8_lossy(&d).lines().find_map(|l| {
                l.trim()
                    .strip_prefix("artifact_name=")
                    .map(|v| v.trim().to_string())
            })
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DeploymentRecord {
        DeploymentRecord {
            id: "d1".into(),
            artifact_name: "rel-2".into(),
            payload_type: "rootfs-image".into(),
            phase: Phase::Installing,
            new_provides: Provides::from([("artifact_name".into(), "rel-2".into())]),
            store_count: 0,
            verified: false,
            failure: None,
            booted: None,
        }
    }

    #[test]
    fn records_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("mb"));
        assert!(store.deployment().unwrap().is_none());
        let mut r = record();
        store.save(&mut r).unwrap();
        r.phase = Phase::Rebooting;
        store.save(&mut r).unwrap();
        let back = store.deployment().unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.store_count, 2);
        let line = mender_api::LogMessage {
            timestamp: "2026-01-01T00:00:00Z".into(),
            level: "info".into(),
            message: "x".into(),
        };
        store.append_log(&[line.clone(), line]).unwrap();
        assert_eq!(store.log().unwrap().len(), 2);
        store.clear_deployment().unwrap();
        assert!(store.deployment().unwrap().is_none());
        assert!(store.log().unwrap().is_empty());
        store.clear_deployment().unwrap();
    }

    /// A device that moved from the official client reports what that client installed
    /// (its LMDB store), until the bridge installs something itself.
    #[test]
    fn the_official_clients_store_names_the_installed_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("artifact_info");
        std::fs::write(&info, "artifact_name=release-1\n").unwrap();
        let store = Store::new(dir.path().join("mender-bridge"));
        assert_eq!(store.provides_or(&info)["artifact_name"], "release-1");
        crate::deploy::lmdb::tests::load(
            dir.path(),
            OFFICIAL_STORE,
            &[
                ("artifact-name".into(), "release-2".into()),
                ("artifact-group".into(), "beta".into()),
                (
                    "artifact-provides".into(),
                    r#"{"rootfs-image.checksum":"abc","rootfs-image.version":"2"}"#.into(),
                ),
                ("state".into(), "{}".into()),
            ],
        );
        let p = store.provides_or(&info);
        assert_eq!(
            p,
            Provides::from([
                ("artifact_name".into(), "release-2".into()),
                ("artifact_group".into(), "beta".into()),
                ("rootfs-image.checksum".into(), "abc".into()),
                ("rootfs-image.version".into(), "2".into()),
            ])
        );
        // The bridge's own record wins once it installed something.
        let own = Provides::from([("artifact_name".into(), "release-3".into())]);
        store.set_installed(&own).unwrap();
        assert_eq!(store.provides_or(&info), own);
        // An unreadable store is ignored (and logged).
        std::fs::remove_file(dir.path().join("mender-bridge").join(INSTALLED)).unwrap();
        std::fs::write(dir.path().join(OFFICIAL_STORE), b"garbage").unwrap();
        assert_eq!(store.provides_or(&info)["artifact_name"], "release-1");
    }

    #[test]
    fn a_deployment_the_official_client_left_in_flight_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFICIAL_STORE);
        assert_eq!(official_in_flight(&path), None);
        crate::deploy::lmdb::tests::load(
            dir.path(),
            OFFICIAL_STORE,
            &[
                ("artifact-name".into(), "release-1".into()),
                (
                    "state".into(),
                    r#"{"Version":2,"Name":"update-verify-reboot","UpdateInfo":{"ID":"dep-7"}}"#
                        .into(),
                ),
            ],
        );
        assert_eq!(
            official_in_flight(&path).as_deref(),
            Some("state update-verify-reboot of deployment dep-7")
        );
    }

    #[test]
    fn the_loop_guard_stops_a_crash_loop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut r = record();
        for _ in 0..MAX_STORES {
            store.save(&mut r).unwrap();
        }
        assert!(matches!(
            store.save(&mut r),
            Err(StoreError::LoopGuard { count: 29, .. })
        ));
    }

    #[test]
    fn corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DEPLOYMENT), b"{not json").unwrap();
        let e = Store::new(dir.path()).deployment().unwrap_err().to_string();
        assert!(e.contains("deployment.json"), "{e}");
    }

    #[test]
    fn standalone_records_and_provides() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("mb"));
        assert!(store.standalone().unwrap().is_none());
        store.clear_standalone().unwrap();
        let info = dir.path().join("artifact_info");
        assert_eq!(store.provides_or(&info)["artifact_name"], "unknown");
        let rec = StandaloneRecord {
            phase: StandalonePhase::Installed,
            new_provides: Provides::from([("artifact_name".into(), "rel-2".into())]),
            reboot_required: true,
            ..StandaloneRecord::new("rel-2".into(), "rootfs-image".into())
        };
        store.save_standalone(&rec).unwrap();
        assert_eq!(store.standalone().unwrap(), Some(rec.clone()));
        store.set_installed(&rec.new_provides).unwrap();
        assert_eq!(store.provides_or(&info)["artifact_name"], "rel-2");
        store.clear_standalone().unwrap();
        assert!(store.standalone().unwrap().is_none());
    }

    #[test]
    fn artifact_info_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("artifact_info");
        assert_eq!(artifact_info_name(&p), "unknown");
        std::fs::write(&p, "# comment\nartifact_name=release-0\n").unwrap();
        assert_eq!(artifact_info_name(&p), "release-0");
    }
}
