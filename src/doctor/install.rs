//! An install in progress: a deployment the daemon resumes at start, or a standalone
//! install waiting for `commit`, `rollback` or `resume` (a `--stop-before` left it, or a
//! reboot). While a standalone install waits, the daemon checks for no update, so one that
//! was stopped and forgotten is worth a warning. The records are read as the engine reads
//! them ([`crate::deploy::store::Store`]); nothing is changed.

use crate::config::Config;
use crate::deploy::store::{StandalonePhase, StandaloneRecord};

use super::{Check, Sink};

const NAME: &str = "install in progress";

pub fn check(cfg: &Config, out: &mut dyn Sink) {
    let store = crate::setup::store(cfg);
    match store.deployment() {
        Ok(Some(d)) => out.add(Check::ok(
            NAME,
            format!(
                "deployment {} of {} ({:?}); the daemon goes on with it when it starts",
                d.id, d.artifact_name, d.phase
            ),
        )),
        Ok(None) => {}
        Err(e) => out.add(Check::fail(
            NAME,
            e.to_string(),
            "the daemon rolls back and moves an unreadable record aside when it starts; \
             start it, then check again",
        )),
    }
    match store.standalone() {
        Ok(Some(r)) => out.add(standalone(&r)),
        Ok(None) => out.add(Check::ok(NAME, "no standalone install waiting")),
        Err(e) => out.add(Check::fail(
            NAME,
            e.to_string(),
            "`mender-bridge rollback` (or remove the standalone record) before the next \
             install",
        )),
    }
}

/// The line for a waiting standalone install.
fn standalone(r: &StandaloneRecord) -> Check {
    use StandalonePhase as P;
    let name = &r.artifact_name;
    let (found, fix) = match r.phase {
        P::Downloaded => (
            format!("{name} downloaded and stopped before ArtifactInstall_Enter"),
            "`mender-bridge resume` installs it, `mender-bridge rollback` discards it",
        ),
        P::Installed if r.reboot_required => (
            format!("{name} installed, to run after a reboot"),
            "reboot, then `mender-bridge commit` (or `rollback`)",
        ),
        P::Installed => (
            format!("{name} installed, not committed"),
            "`mender-bridge commit` keeps it, `mender-bridge rollback` reverts it",
        ),
        P::Installing | P::Activated => (
            format!("the install of {name} was interrupted"),
            "`mender-bridge resume` (or `rollback`) rolls it back",
        ),
        P::Committed | P::RollingBack | P::Failing | P::CleaningUp => (
            format!("{name} stopped part way through ({:?})", r.phase),
            "`mender-bridge resume` completes it",
        ),
    };
    Check::warn(
        NAME,
        format!("{found}; the daemon checks for no update until it is done"),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_waiting_standalone_install_is_a_warning_that_says_what_to_run() {
        let mut r = StandaloneRecord::new("rel-5".into(), "rootfs-image".into());
        r.phase = StandalonePhase::Downloaded;
        let c = standalone(&r);
        assert_eq!(c.status, Status::Warn);
        assert!(c.found.contains("before ArtifactInstall_Enter"), "{c}");
        assert!(c.fix.as_deref().unwrap_or("").contains("resume"), "{c}");
        r.phase = StandalonePhase::Installed;
        r.reboot_required = true;
        assert!(standalone(&r).fix.unwrap_or_default().starts_with("reboot"));
        r.phase = StandalonePhase::Committed;
        assert!(standalone(&r).to_string().contains("completes it"));
    }

    #[test]
    fn records_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = crate::config::testing::load_in(dir.path(), "{}", "").expect("config");
        let mut out: Vec<Check> = Vec::new();
        check(&cfg, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Ok, "{}", out[0]);
        let store = crate::setup::store(&cfg);
        std::fs::create_dir_all(store.dir()).expect("store dir");
        let mut r = StandaloneRecord::new("rel-5".into(), "rootfs-image".into());
        r.phase = StandalonePhase::Downloaded;
        store.save_standalone(&r).expect("save");
        let mut out: Vec<Check> = Vec::new();
        check(&cfg, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Warn, "{}", out[0]);
        std::fs::write(store.dir().join("standalone.json"), "{").expect("garbage");
        let mut out: Vec<Check> = Vec::new();
        check(&cfg, &mut out);
        assert_eq!(out[0].status, Status::Fail, "{}", out[0]);
    }
}
