//! `RaucBackend`: the spool, the `InstallBundle` and its record, the checks after the
//! reboot, `Mark` and the inventory over D-Bus (the flow and the invariants are in the
//! `rauc` module's documentation).

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::install::{self, Timeouts};
use super::state::{self, Pending};
use super::{proxy, slots, RaucConfig};
use crate::spool::{self, KeptSpool, Spool};
use crate::{begun, Activation, Backend, BackendError, PayloadInfo, ProgressSink};

/// The RAUC backend.
pub struct RaucBackend {
    config: RaucConfig,
    spool: Option<Spool>,
    /// The spool of an install another process downloaded ([`Backend::resume`]).
    kept: Option<KeptSpool>,
    log: Vec<String>,
}

/// A connected installer proxy.
struct Rauc {
    conn: zbus::Connection,
    p: proxy::InstallerProxy<'static>,
    timeout: Duration,
}

impl Rauc {
    /// `what` names the call in the error.
    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = zbus::Result<T>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(BackendError::failed(format!(
                "RAUC {what}: {}",
                install::cut(&proxy::message(&e))
            ))),
            Err(_) => Err(BackendError::failed(format!(
                "RAUC {what}: no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn slots(&self) -> Result<Vec<slots::SlotStatus>, BackendError> {
        Ok(slots::parse(
            self.call("GetSlotStatus", self.p.get_slot_status()).await?,
        ))
    }
}

impl RaucBackend {
    pub fn new(config: RaucConfig) -> Self {
        RaucBackend {
            config,
            spool: None,
            kept: None,
            log: Vec::new(),
        }
    }

    pub fn config(&self) -> &RaucConfig {
        &self.config
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            call: self.config.call_timeout,
            install: self.config.install_timeout,
        }
    }

    async fn connect(&self) -> Result<Rauc, BackendError> {
        let conn = proxy::connect(&self.config.bus, self.config.call_timeout)
            .await
            .map_err(|e| BackendError::failed(format!("RAUC: {e}")))?;
        let p = proxy::installer(&conn)
            .await
            .map_err(|e| BackendError::failed(format!("RAUC: {}", proxy::message(&e))))?;
        Ok(Rauc {
            conn,
            p,
            timeout: self.config.call_timeout,
        })
    }

    /// Connected, with `BootSlot` read. Right after a boot RAUC may not be on the bus
    /// yet: retried for up to the call timeout.
    async fn after_boot(&self) -> Result<(Rauc, String), BackendError> {
        let deadline = tokio::time::Instant::now() + self.config.call_timeout;
        loop {
            let attempt = async {
                let rauc = self.connect().await?;
                let b = rauc.call("BootSlot", rauc.p.boot_slot()).await?;
                Ok::<_, BackendError>((rauc, b))
            };
            match attempt.await {
                Ok(r) => return Ok(r),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "RAUC not answering yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    fn note(&mut self, line: String) {
        tracing::info!("{line}");
        install::push(&mut self.log, line);
    }

    /// After `Completed(0)`: which slot RAUC activated (`GetPrimary`), and the booted one.
    async fn record_activation(&mut self, rauc: &Rauc) -> Result<Pending, BackendError> {
        let target = rauc.call("GetPrimary", rauc.p.get_primary()).await?;
        let slots = rauc.slots().await?;
        let boot_slot = rauc
            .call("BootSlot", rauc.p.boot_slot())
            .await
            .unwrap_or_default();
        let pending = Pending {
            target_bootname: slots
                .iter()
                .find(|s| s.name == target)
                .and_then(|s| s.bootname.clone()),
            booted_before: slots::booted(&slots, &boot_slot).map(|s| s.name.clone()),
            target,
        };
        if pending.booted_before.as_deref() == Some(pending.target.as_str()) {
            return Err(BackendError::failed(format!(
                "RAUC installed, but the primary slot is still the booted one ({}): nothing \
                 to reboot into",
                pending.target
            )));
        }
        state::save(&self.config.state_dir, &pending)?;
        Ok(pending)
    }

    async fn health_check(&mut self) -> Result<(), BackendError> {
        let Some(argv) = self.config.health_check.clone() else {
            return Ok(());
        };
        let Some((prog, args)) = argv.split_first() else {
            return Ok(());
        };
        let limit = self.config.health_check_timeout;
        let mut child = tokio::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BackendError::failed(format!("health check {prog}: {e}")))?;
        let run = async {
            let mut err = Vec::new();
            if let Some(s) = child.stderr.take() {
                let _ = s.take(4096).read_to_end(&mut err).await;
            }
            (child.wait().await, err)
        };
        let (status, err) = tokio::time::timeout(limit, run).await.map_err(|_| {
            BackendError::failed(format!(
                "health check {prog}: no result within {} s",
                limit.as_secs()
            ))
        })?;
        let status =
            status.map_err(|e| BackendError::failed(format!("health check {prog}: {e}")))?;
        let err = String::from_utf8_lossy(&err);
        for l in err.lines().filter(|l| !l.trim().is_empty()) {
            self.note(format!("health check: {}", install::cut(l)));
        }
        if !status.success() {
            return Err(BackendError::failed(format!(
                "health check {prog} failed: {status}"
            )));
        }
        self.note(format!("health check {prog} passed"));
        Ok(())
    }
}

impl Backend for RaucBackend {
    fn payload_types(&self) -> Vec<&str> {
        vec!["rauc"]
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        spool::prepare_dir(&self.config.spool_dir, &spool::RAUC)?;
        let rauc = self
            .connect()
            .await
            .map_err(|e| BackendError::not_started(e.message()))?;
        let op = rauc
            .call("Operation", rauc.p.operation())
            .await
            .map_err(|e| BackendError::not_started(e.message()))?;
        if op != "idle" {
            return Err(BackendError::not_started(format!(
                "RAUC is busy (Operation = {})",
                install::cut(&op)
            )));
        }
        Ok(())
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        if payload.payload_type != "rauc" {
            return Err(BackendError::not_started(format!(
                "the rauc backend installs rauc payloads, not '{}'",
                payload.payload_type
            )));
        }
        self.spool = None;
        self.log.clear();
        let s = Spool::create(&self.config.spool_dir, payload, &spool::RAUC).await?;
        tracing::info!(file = %s.path().display(), size = payload.size, bundle = %payload.file_name, "spooling the RAUC bundle");
        self.spool = Some(s);
        Ok(())
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        begun(self.spool.as_mut(), "write")?.write(&chunk).await
    }

    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        spool::suspend(self.spool.take()).await
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        self.kept = Some(spool::resume(saved)?);
        Ok(())
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        // Dropped (and so removed from disk) when this function returns, whatever happened.
        spool::take_back(
            &mut self.spool,
            &mut self.kept,
            &self.config.spool_dir,
            &spool::RAUC,
        )
        .await?;
        let mut spool = begun(self.spool.take(), "finish")?;
        let path = spool.seal().await?.to_path_buf();
        let rauc = self
            .connect()
            .await
            .map_err(|e| BackendError::not_started(e.message()))?;
        let booted = match rauc.call("BootSlot", rauc.p.boot_slot()).await {
            Ok(b) => rauc
                .slots()
                .await
                .ok()
                .and_then(|s| slots::booted(&s, &b).map(|s| s.name.clone()))
                .unwrap_or(b),
            Err(_) => String::new(),
        };
        // From here until the outcome is known, a crash leaves this record for `abort`.
        state::mark_started(&self.config.state_dir, &booted)?;
        let timeouts = self.timeouts();
        let mut log = std::mem::take(&mut self.log);
        let r = install::install(&rauc.conn, &path, timeouts, progress, &mut log).await;
        self.log = log;
        if let Err(e) = r {
            if e.settled {
                state::clear_started(&self.config.state_dir)?;
            }
            return Err(e.error);
        }
        drop(spool);
        let recorded = self.record_activation(&rauc).await;
        if recorded.is_ok() {
            state::clear_started(&self.config.state_dir)?;
        }
        match recorded {
            Ok(p) => {
                self.note(format!(
                    "RAUC activated {} ({}) for the next boot; running {}",
                    p.target,
                    p.target_bootname.as_deref().unwrap_or("-"),
                    p.booted_before.as_deref().unwrap_or("-")
                ));
                Ok(Activation::RebootRequired)
            }
            Err(e) => {
                // Installed but unrecorded: a reboot could not be verified, so do not
                // leave the new slot primary.
                if let Ok((slot, msg)) = rauc
                    .call("Mark active booted", rauc.p.mark("active", "booted"))
                    .await
                {
                    self.note(format!("RAUC: {msg} ({slot})"));
                    state::clear_started(&self.config.state_dir)?;
                }
                Err(e)
            }
        }
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        // Before finish nothing reached RAUC; dropping the spool removes the file.
        self.spool = None;
        if let Some(k) = self.kept.take() {
            k.remove(&self.config.spool_dir, &spool::RAUC);
        }
        let Some(booted) = state::started(&self.config.state_dir)? else {
            return Ok(());
        };
        // An install whose outcome is unknown (the bridge died, RAUC vanished or timed
        // out): RAUC may have activated the new slot. Make the booted one primary again,
        // waiting (up to the install timeout) for a still-running install to end.
        self.note(format!(
            "an install was started while {} ran and its outcome is unknown: keeping the \
             booted slot primary",
            if booted.is_empty() { "-" } else { &booted }
        ));
        let deadline = tokio::time::Instant::now() + self.config.install_timeout;
        let result = loop {
            let marked = match self.connect().await {
                Ok(rauc) => {
                    rauc.call("Mark active booted", rauc.p.mark("active", "booted"))
                        .await
                }
                Err(e) => Err(e),
            };
            match marked {
                Ok((slot, msg)) => {
                    self.note(format!("RAUC: {msg} ({slot})"));
                    break Ok(());
                }
                Err(e)
                    if e.message().contains("processing")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => break Err(e),
            }
        };
        state::clear_started(&self.config.state_dir)?;
        result
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        let Some(p) = state::load(&self.config.state_dir)? else {
            self.note(format!(
                "no RAUC install is waiting for a reboot ({} is absent)",
                state::path(&self.config.state_dir).display()
            ));
            return Ok(false);
        };
        let (rauc, boot_slot) = self.after_boot().await?;
        let slots = rauc.slots().await?;
        let booted = slots::booted(&slots, &boot_slot).map(|s| s.name.clone());
        if booted.as_deref() == Some(p.target.as_str()) {
            self.note(format!(
                "booted the new slot {} (BootSlot {boot_slot})",
                p.target
            ));
            return Ok(true);
        }
        let primary = rauc
            .call("GetPrimary", rauc.p.get_primary())
            .await
            .unwrap_or_else(|e| e.to_string());
        self.note(format!(
            "expected to boot {} ({}), booted {} (BootSlot {boot_slot}); primary now: {primary}",
            p.target,
            p.target_bootname.as_deref().unwrap_or("-"),
            booted.as_deref().unwrap_or("unknown"),
        ));
        for line in slots::describe(&slots) {
            self.note(line);
        }
        Ok(false)
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        let rauc = self.connect().await?;
        let boot_slot = rauc.call("BootSlot", rauc.p.boot_slot()).await?;
        let slots = rauc.slots().await?;
        Ok(slots::booted(&slots, &boot_slot).map(|s| s.name.clone()))
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        if !self.verify_reboot().await? {
            return Err(BackendError::failed(
                "not running the slot RAUC activated; refusing to mark it good",
            ));
        }
        self.health_check().await?;
        let rauc = self.connect().await?;
        let (slot, msg) = rauc
            .call("Mark good booted", rauc.p.mark("good", "booted"))
            .await?;
        self.note(format!("RAUC: {msg} ({slot})"));
        state::remove(&self.config.state_dir)
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        let pending = state::load(&self.config.state_dir)?;
        let rauc = self.connect().await?;
        let boot_slot = rauc.call("BootSlot", rauc.p.boot_slot()).await?;
        let slots = rauc.slots().await?;
        let booted = slots::booted(&slots, &boot_slot).map(|s| s.name.clone());
        let on_new = pending
            .as_ref()
            .is_some_and(|p| booted.as_deref() == Some(p.target.as_str()));
        // Running the new slot: back to the other one at the next boot. Otherwise (not
        // rebooted, or the bootloader fell back): the running slot stays primary.
        let which = if on_new { "other" } else { "booted" };
        let (slot, msg) = rauc
            .call(
                &format!("Mark active {which}"),
                rauc.p.mark("active", which),
            )
            .await?;
        self.note(format!("rollback: RAUC {msg} ({slot})"));
        state::remove(&self.config.state_dir)
    }

    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        let Ok(rauc) = self.connect().await else {
            return out;
        };
        let mut put = |k: &str, v: String| out.push((k.to_string(), serde_json::Value::from(v)));
        if let Ok(c) = rauc.call("Compatible", rauc.p.compatible()).await {
            put("rauc_compatible", c);
        }
        if let Ok(v) = rauc.call("Variant", rauc.p.variant()).await {
            put("rauc_variant", v);
        }
        let boot_slot = rauc
            .call("BootSlot", rauc.p.boot_slot())
            .await
            .unwrap_or_default();
        if let Ok(slots) = rauc.slots().await {
            if let Some(b) = slots::booted(&slots, &boot_slot) {
                put("rauc_booted_slot", b.name.clone());
            }
            for s in &slots {
                if let Some(v) = &s.bundle_version {
                    put(&format!("rauc_slot_{}_version", s.name), v.clone());
                }
            }
        }
        if !boot_slot.is_empty() {
            put("rauc_boot_slot", boot_slot);
        }
        out.push(("rauc_integration".into(), "dbus".into()));
        out
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}
