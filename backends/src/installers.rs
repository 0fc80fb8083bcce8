//! [`Installers`]: the configured built-in backend and the Update Modules, as one backend
//! that routes each install by its payload type (issue 12): a type the built-in backend
//! takes (`rootfs-image` for the raw writer, or RAUC/SWUpdate where they claim it; `rauc`;
//! `swu`) goes to it, any other type to the Update Module of that name.
//!
//! A device may have no built-in backend at all (the raw backend with no slots configured:
//! a device that only takes Update Modules, as the official client allows): then every
//! payload type but a module's fails, naming what is not configured.
//!
//! Invariants: the route is decided by [`Backend::select`] only (from the verified header,
//! or after a restart from the recorded payload type) and holds until the next `select`;
//! every call goes to the selected backend alone; before any `select` the built-in backend
//! is selected (a record without a payload type is the built-in backend's, as before
//! modules existed).

use bytes::Bytes;

use crate::module::{ModuleBackend, ModuleConfig};
use crate::{
    Activation, AnyBackend, Backend, BackendError, ModuleHeader, PayloadInfo, ProgressSink, Reboot,
};

/// The built-in backend plus the Update Modules of `modules.modules_dir`.
#[derive(Debug)]
pub struct Installers {
    /// The built-in backend, or why there is none.
    builtin: Result<AnyBackend, String>,
    modules: ModuleConfig,
    /// The module selected for the current install (`None`: the built-in backend).
    module: Option<ModuleBackend>,
}

/// `route!(self, b => b.call(...))`: `call` on the selected backend.
macro_rules! route {
    ($self:expr, $b:ident => $call:expr) => {
        match (&mut $self.module, &mut $self.builtin) {
            (Some($b), _) => $call,
            (None, Ok($b)) => $call,
            (None, Err(why)) => Err(BackendError::not_started(why.clone())),
        }
    };
}

impl Installers {
    pub fn new(builtin: AnyBackend, modules: ModuleConfig) -> Self {
        Installers {
            builtin: Ok(builtin),
            modules,
            module: None,
        }
    }

    /// Update Modules only; `why` says why there is no built-in backend (it is the error of
    /// any other payload type).
    pub fn modules_only(modules: ModuleConfig, why: String) -> Self {
        Installers {
            builtin: Err(why),
            modules,
            module: None,
        }
    }

    /// The built-in backend, if there is one.
    pub fn builtin(&self) -> Option<&AnyBackend> {
        self.builtin.as_ref().ok()
    }

    /// The payload types of the built-in backend (none without one).
    fn builtin_types(&self) -> Vec<&str> {
        match &self.builtin {
            Ok(b) => b.payload_types(),
            Err(_) => Vec::new(),
        }
    }

    /// Where the modules are and how they run.
    pub fn modules(&self) -> &ModuleConfig {
        &self.modules
    }

    /// The selected Update Module, if the current install is a module's.
    pub fn module(&self) -> Option<&ModuleBackend> {
        self.module.as_ref()
    }
}

impl Backend for Installers {
    /// The built-in backend's types, then the installed modules'.
    fn payload_types(&self) -> Vec<&str> {
        match &self.module {
            Some(m) => m.payload_types(),
            None => self.builtin_types(),
        }
    }

    /// The built-in backend if it takes `payload_type`, else its Update Module (which must
    /// be installed: `no Update Module 'X' in <dir>`).
    fn select(&mut self, payload_type: Option<&str>) -> Result<(), BackendError> {
        self.module = None;
        let Some(t) = payload_type else {
            return Ok(());
        };
        if self.builtin_types().contains(&t) {
            return Ok(());
        }
        // The type names a file in the modules directory: never a path out of it.
        if crate::module::check_module_name(t).is_err() {
            return Err(BackendError::not_started(format!(
                "payload type {t:?} cannot name an Update Module (not a plain file name)"
            )));
        }
        let module = ModuleBackend::new(self.modules.clone(), t);
        if !module.installed() {
            let builtin = match &self.builtin {
                Ok(b) => format!(
                    "the built-in backend takes: {}",
                    b.payload_types().join(", ")
                ),
                Err(why) => format!("no built-in backend: {why}"),
            };
            return Err(BackendError::not_started(format!(
                "no Update Module '{t}' in {} ({builtin})",
                self.modules.modules_dir.display()
            )));
        }
        tracing::info!(payload_type = t, "the payload goes to its Update Module");
        self.module = Some(module);
        Ok(())
    }

    async fn preflight(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.preflight().await)
    }

    fn prepare(&mut self, header: &ModuleHeader) -> Result<(), BackendError> {
        route!(self, b => b.prepare(header))
    }

    fn whole_payload(&self) -> bool {
        match (&self.module, &self.builtin) {
            (Some(m), _) => m.whole_payload(),
            (None, Ok(b)) => b.whole_payload(),
            (None, Err(_)) => false,
        }
    }

    async fn begin(&mut self, payload: &PayloadInfo) -> Result<(), BackendError> {
        route!(self, b => b.begin(payload).await)
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BackendError> {
        route!(self, b => b.write(chunk).await)
    }

    async fn downloaded(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.downloaded().await)
    }

    fn hold_after_download(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.hold_after_download())
    }

    async fn suspend(&mut self) -> Result<serde_json::Value, BackendError> {
        route!(self, b => b.suspend().await)
    }

    fn resume(&mut self, saved: &serde_json::Value) -> Result<(), BackendError> {
        route!(self, b => b.resume(saved))
    }

    async fn finish(&mut self, progress: &dyn ProgressSink) -> Result<Activation, BackendError> {
        route!(self, b => b.finish(progress).await)
    }

    async fn abort(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.abort().await)
    }

    async fn verify_reboot(&mut self) -> Result<bool, BackendError> {
        route!(self, b => b.verify_reboot().await)
    }

    async fn booted_slot(&mut self) -> Result<Option<String>, BackendError> {
        route!(self, b => b.booted_slot().await)
    }

    async fn commit(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.commit().await)
    }

    async fn rollback(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.rollback().await)
    }

    async fn reboot(&mut self) -> Result<Reboot, BackendError> {
        route!(self, b => b.reboot().await)
    }

    async fn installer_reboot(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.installer_reboot().await)
    }

    async fn installer_rollback_reboot(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.installer_rollback_reboot().await)
    }

    async fn can_roll_back(&mut self) -> Result<bool, BackendError> {
        route!(self, b => b.can_roll_back().await)
    }

    async fn rollback_reboot(&mut self) -> Result<Reboot, BackendError> {
        route!(self, b => b.rollback_reboot().await)
    }

    async fn verify_rollback_reboot(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.verify_rollback_reboot().await)
    }

    async fn failure(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.failure().await)
    }

    async fn cleanup(&mut self) -> Result<(), BackendError> {
        route!(self, b => b.cleanup().await)
    }

    /// The built-in backend's attributes, and `update_modules` as the official client's
    /// inventory script reports it: one name, a list of names, or `""` for none.
    async fn inventory(&self) -> Vec<(String, serde_json::Value)> {
        let mut attrs = match &self.builtin {
            Ok(b) => b.inventory().await,
            Err(_) => Vec::new(),
        };
        let names = self.modules.installed_modules();
        let value = match names.len() {
            0 => serde_json::Value::String(String::new()),
            1 => serde_json::Value::String(names[0].clone()),
            _ => serde_json::Value::from(names),
        };
        attrs.push(("update_modules".to_string(), value));
        attrs
    }

    fn take_log(&mut self) -> Vec<String> {
        // Both: a module's lines may wait while the built-in backend is selected again.
        let mut lines = match &mut self.builtin {
            Ok(b) => b.take_log(),
            Err(_) => Vec::new(),
        };
        if let Some(m) = &mut self.module {
            lines.extend(m.take_log());
        }
        lines
    }

    fn stream_note(&self) -> Option<String> {
        match (&self.module, &self.builtin) {
            (Some(m), _) => m.stream_note(),
            (None, Ok(b)) => b.stream_note(),
            (None, Err(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{RawBackend, RawConfig};

    fn installers(modules: &std::path::Path) -> Installers {
        let raw: RawConfig = serde_json::from_value(serde_json::json!({
            "slots": {
                "a": {"name": "a", "device": modules.join("a"), "boot_part": 2},
                "b": {"name": "b", "device": modules.join("b"), "boot_part": 3},
                "active": {"named": "a"},
            },
            "bootenv": {"type": "uboot"},
        }))
        .unwrap();
        let mut modules_cfg = ModuleConfig::for_data_dir(&modules.join("data"));
        modules_cfg.modules_dir = modules.to_path_buf();
        Installers::new(AnyBackend::Raw(RawBackend::new(raw)), modules_cfg)
    }

    #[test]
    fn a_payload_type_never_names_a_path_out_of_the_modules_dir() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = installers(dir.path());
        for bad in ["../../bin/sh", "/bin/sh", "..", ".", "a/b", ""] {
            let err = i.select(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("cannot name an Update Module"), "{bad}: {err}");
            assert!(i.module().is_none());
        }
        let err = i.select(Some("nosuch")).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "no Update Module 'nosuch' in {}",
                dir.path().display()
            )),
            "{err}"
        );
        i.select(Some("rootfs-image")).unwrap();
        assert!(i.module().is_none(), "rootfs-image stays built in");
    }

    #[tokio::test]
    async fn without_a_built_in_backend_only_modules_install() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ModuleConfig::for_data_dir(&dir.path().join("data"));
        cfg.modules_dir = dir.path().to_path_buf();
        let module = dir.path().join("app");
        std::fs::write(&module, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&module, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut i = Installers::modules_only(cfg, "backend.raw.a.device is not set".into());
        let err = i.select(Some("rootfs-image")).unwrap_err().to_string();
        assert!(
            err.contains("no built-in backend: backend.raw.a.device is not set"),
            "{err}"
        );
        // Before any select (a resumed record without a type): the reason, not a panic.
        let err = i.preflight().await.unwrap_err().to_string();
        assert!(err.contains("backend.raw.a.device is not set"), "{err}");
        i.select(Some("app")).unwrap();
        i.preflight().await.unwrap();
        let inv = i.inventory().await;
        assert_eq!(
            inv,
            [("update_modules".to_string(), serde_json::json!("app"))]
        );
    }
}
