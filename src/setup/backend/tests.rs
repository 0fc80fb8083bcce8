use super::*;
use crate::config::testing::load_toml as load;
use crate::config::{Config, ConfigPaths};
use mender_bridge_backends::swupdate::SwupdateMode;

const SLOTS: &str = "[backend.raw.a]\ndevice = \"/dev/sda2\"\nboot_part = 2\n\
                     [backend.raw.b]\ndevice = \"/dev/sda3\"\nboot_part = 3\nsize = 4096\n";

#[test]
fn defaults_and_a_full_raw_config() {
    let c = load(SLOTS).unwrap_or_else(|e| panic!("{e}"));
    let raw = raw_config(&c.backend.raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(raw.slots.a.device, std::path::Path::new("/dev/sda2"));
    assert_eq!(raw.slots.b.boot_part, 3);
    assert_eq!(raw.slots.b.size, Some(4096));
    assert_eq!(
        raw.slots.active,
        mender_bridge_backends::raw::ActiveSlot::Cmdline {
            cmdline: "/proc/cmdline".into()
        }
    );
    assert!(!raw.verify_readback, "read-back is opt-in");
    assert_eq!(
        raw.bootenv,
        mender_bridge_backends::raw::BootEnv::Uboot {
            config: None,
            printenv: "fw_printenv".into(),
            setenv: "fw_setenv".into()
        }
    );
    let c = load(&format!(
        "{SLOTS}[backend.raw]\nactive_slot = \"b\"\nverify_readback = true\n\
         [backend.raw.bootenv]\ntype = \"grub\"\nenv_file = \"/boot/env\"\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let raw = raw_config(&c.backend.raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        raw.slots.active,
        mender_bridge_backends::raw::ActiveSlot::Named("b".into())
    );
    assert!(raw.verify_readback);
    assert!(
        matches!(raw.bootenv, mender_bridge_backends::raw::BootEnv::Grub { ref env_file, .. } if env_file == std::path::Path::new("/boot/env"))
    );
}

#[test]
fn rauc_defaults_and_settings() {
    let c = load("").unwrap_or_else(|e| panic!("{e}"));
    let r = rauc_config(&c.backend.rauc, std::path::Path::new("/data/mender-bridge"));
    assert_eq!(r.bus, mender_bridge_backends::rauc::Bus::System);
    assert_eq!(
        r.spool_dir,
        std::path::Path::new("/data/mender-bridge/rauc-spool")
    );
    assert_eq!(r.state_dir, std::path::Path::new("/data/mender-bridge"));
    assert_eq!(r.install_timeout, std::time::Duration::from_secs(3600));
    assert_eq!(r.call_timeout, std::time::Duration::from_secs(30));
    assert_eq!(r.health_check, None);
    let c = load(
        "[backend]\ntype = \"rauc\"\n[backend.rauc]\nbus = \"unix:path=/x\"\n\
         spool_dir = \"/spool\"\nhealth_check = [\"/bin/true\", \"-v\"]\n\
         install_timeout_seconds = 60\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = rauc_config(&c.backend.rauc, std::path::Path::new("/d"));
    assert_eq!(
        r.bus,
        mender_bridge_backends::rauc::Bus::Address("unix:path=/x".into())
    );
    assert_eq!(r.spool_dir, std::path::Path::new("/spool"));
    assert_eq!(r.health_check, Some(vec!["/bin/true".into(), "-v".into()]));
    assert_eq!(r.install_timeout, std::time::Duration::from_secs(60));
}

#[test]
fn missing_slots_name_the_key() {
    let c = load("").unwrap_or_else(|e| panic!("{e}"));
    let e = raw_config(&c.backend.raw).err().map(|e| e.to_string());
    let e = e.unwrap_or_default();
    assert!(e.starts_with("backend.raw.a.device is not set"), "{e}");
    assert!(e.contains("[backend.raw.a]"), "{e}");
    let c = load("[backend.raw.a]\ndevice = \"/x\"\n").unwrap_or_else(|e| panic!("{e}"));
    let e = raw_config(&c.backend.raw).err().map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.starts_with("backend.raw.a.boot_part is not set")),
        "{e:?}"
    );
    let c = load(&format!(
        "{SLOTS}[backend.raw.bootenv]\ntype = \"command\"\nactivate = [\"x\"]\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let e = raw_config(&c.backend.raw).err().map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.starts_with("backend.raw.bootenv.commit is not set")),
        "{e:?}"
    );
}

#[test]
fn environment_sets_slots() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf = dir.path().join("mender.conf");
    std::fs::write(&conf, "{}").unwrap_or_else(|e| panic!("{e}"));
    let paths = ConfigPaths {
        mender_conf: Some(conf),
        bridge_config: Some(dir.path().join("none.toml")),
        data_dir: Some(dir.path().to_path_buf()),
        fallback_mender_conf: None,
    };
    std::fs::write(dir.path().join("none.toml"), "").unwrap_or_else(|e| panic!("{e}"));
    let env = [
        ("MENDER_BRIDGE_BACKEND__RAW__A__DEVICE", "/dev/vda2"),
        ("MENDER_BRIDGE_BACKEND__RAW__A__BOOT_PART", "2"),
        ("MENDER_BRIDGE_BACKEND__RAW__B__DEVICE", "/dev/vda3"),
        ("MENDER_BRIDGE_BACKEND__RAW__B__BOOT_PART", "3"),
        (
            "MENDER_BRIDGE_BACKEND__RAW__B__ROOT_ALIASES",
            "[\"PARTUUID=1-3\"]",
        ),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let l = Config::load_from(&paths, env).unwrap_or_else(|e| panic!("{e}"));
    let raw = raw_config(&l.config.backend.raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(raw.slots.b.root_aliases, ["PARTUUID=1-3"]);
    assert_eq!(raw.slots.a.boot_part, 2);
}

#[test]
fn defaults_and_settings() {
    let c = load("[backend]\ntype = \"swupdate\"\n").unwrap_or_else(|e| panic!("{e}"));
    let store = std::path::Path::new("/var/lib/mender/mender-bridge");
    let s = swupdate_config(&c.backend.swupdate, store, false);
    assert_eq!(
        s,
        mender_bridge_backends::swupdate::SwupdateConfig::default()
    );
    assert_eq!(s.mode, SwupdateMode::Auto);
    assert!(swupdate_config(&c.backend.swupdate, store, true).payload_authenticated);
    let c = load(
        "[backend.swupdate]\ncontrol_socket = \"/run/x/ctl\"\ndry_run = true\n\
         busy_retries = 0\nbusy_backoff_ms = 10\nustate = false\nsw_versions_file = \"\"\n\
         mode = \"spool\"\nspool_dir = \"/spool\"\nswupdate_uid = 998\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = swupdate_config(&c.backend.swupdate, std::path::Path::new("/d"), false);
    assert_eq!(s.mode, SwupdateMode::Spool);
    assert_eq!(s.spool_dir, std::path::Path::new("/spool"));
    assert_eq!(s.swupdate_uid, Some(998));
    assert_eq!(
        s.control_socket.as_deref(),
        Some(std::path::Path::new("/run/x/ctl"))
    );
    assert!(s.dry_run && !s.ustate);
    assert_eq!(s.busy_retries, 0);
    assert_eq!(s.busy_backoff, std::time::Duration::from_millis(10));
    assert_eq!(s.sw_versions_file, None);
}
