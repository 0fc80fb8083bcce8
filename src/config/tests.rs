//! Loading tests: layering, case-insensitive keys, conflicts, errors naming key and file,
//! warnings, `show-config` output. Every path is in a temp dir; the environment is passed
//! in, never read from the process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::keys::KeyType;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Paths with everything inside the temp dir: `mender.conf`, `bridge.toml`, data dir
    /// `data/` (so the fallback is `data/mender.conf`).
    fn paths(&self) -> ConfigPaths {
        if !self.path("mender.conf").exists() {
            self.write("mender.conf", "{}");
        }
        if !self.path("bridge.toml").exists() {
            self.write("bridge.toml", "");
        }
        ConfigPaths {
            mender_conf: Some(self.path("mender.conf")),
            fallback_mender_conf: None,
            bridge_config: Some(self.path("bridge.toml")),
            data_dir: Some(self.path("data")),
        }
    }

    fn load(&self, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::load_from(&self.paths(), vars(env))
    }

    fn load_ok(&self, env: &[(&str, &str)]) -> Loaded {
        self.load(env).unwrap_or_else(|e| panic!("load: {e}"))
    }

    fn load_err(&self, env: &[(&str, &str)]) -> String {
        match self.load(env) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }
}

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn source_of<'a>(l: &'a Loaded, key: &str) -> &'a str {
    l.sources
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("(none)")
}

#[test]
fn defaults_without_files() {
    let f = Fixture::new();
    let l = f.load_ok(&[]);
    let c = &l.config;
    assert!(c.servers.is_empty());
    assert!(c.tenant_token.is_empty());
    assert_eq!(c.update_poll_interval, Duration::from_secs(1800));
    assert_eq!(c.inventory_poll_interval, Duration::from_secs(28800));
    assert_eq!(c.retry_poll_interval, Duration::from_secs(300));
    assert_eq!(c.retry_poll_count, 0);
    assert_eq!(c.module_timeout, Duration::from_secs(14400));
    assert_eq!(c.state_script_timeout, Duration::from_secs(3600));
    assert_eq!(c.state_script_retry_timeout, Duration::from_secs(1800));
    assert_eq!(c.state_script_retry_interval, Duration::from_secs(60));
    assert!(!c.skip_verify);
    assert_eq!(c.data_dir, f.path("data"));
    assert_eq!(c.device_type_file, f.path("data").join("device_type"));
    assert_eq!(c.device_key_type, KeyType::Ed25519);
    assert_eq!(c.identity_script, Path::new(DEFAULT_IDENTITY_SCRIPT));
    assert_eq!(c.inventory_script_dir, Path::new(DEFAULT_INVENTORY_DIR));
    assert_eq!(c.script_timeout, Duration::from_secs(30));
    assert_eq!(c.download.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.download.max_resume_attempts, 10);
    assert_eq!(c.download.backoff_initial, Duration::from_secs(1));
    assert_eq!(c.download.backoff_max, Duration::from_secs(60));
    assert_eq!(c.backend.kind, BackendType::Raw);
    assert_eq!(c.mender3, Mender3::default());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    // The [artifact] defaults are the reader's own.
    let (got, want) = (c.artifact.limits(), mender_artifact::Limits::default());
    assert_eq!(got.small_member, want.small_member);
    assert_eq!(got.header_member, want.header_member);
    assert_eq!(got.header_total, want.header_total);
    assert_eq!(got.header_file, want.header_file);
    assert_eq!(got.header_entries, want.header_entries);
    assert_eq!(got.decoder_memory, want.decoder_memory);
    assert_eq!(got.payload_file, want.payload_file);
    assert_eq!(
        source_of(&l, "update_poll_interval_seconds"),
        "the built-in defaults"
    );
}

#[test]
fn layers_override_in_order() {
    let f = Fixture::new();
    f.write(
        "data/mender.conf",
        r#"{"ServerURL": "https://fallback.example", "TenantToken": "tok-fallback",
            "UpdatePollIntervalSeconds": 11, "InventoryPollIntervalSeconds": 12,
            "RetryPollIntervalSeconds": 13, "RetryPollCount": 14}"#,
    );
    f.write(
        "mender.conf",
        r#"{"ServerURL": "https://main.example/", "InventoryPollIntervalSeconds": 22,
            "RetryPollIntervalSeconds": 23, "RetryPollCount": 24}"#,
    );
    f.write(
        "bridge.toml",
        "retry_poll_interval_seconds = 33\nretry_poll_count = 34\ndata_dir = \"/toml\"\n\
         [download]\nmax_resume_attempts = 3\n",
    );
    let l = f.load_ok(&[
        ("MENDER_BRIDGE_RETRY_POLL_COUNT", "44"),
        ("MENDER_BRIDGE_DATA_DIR", "/env"),
        ("MENDER_BRIDGE_DOWNLOAD__MAX_RESUME_ATTEMPTS", "4"),
    ]);
    let c = &l.config;
    assert_eq!(c.tenant_token.expose(), "tok-fallback");
    assert_eq!(c.update_poll_interval, Duration::from_secs(11));
    assert_eq!(c.inventory_poll_interval, Duration::from_secs(22));
    assert_eq!(c.retry_poll_interval, Duration::from_secs(33));
    assert_eq!(c.retry_poll_count, 44);
    assert_eq!(c.download.max_resume_attempts, 4);
    // `-d` beats the environment and the TOML.
    assert_eq!(c.data_dir, f.path("data"));
    let urls: Vec<&str> = c.servers.iter().map(ServerUrl::as_str).collect();
    assert_eq!(urls, ["https://main.example"]);

    let main = f.path("mender.conf").display().to_string();
    let fallback = f.path("data/mender.conf").display().to_string();
    let toml = f.path("bridge.toml").display().to_string();
    assert_eq!(
        source_of(&l, "update_poll_interval_seconds"),
        format!("{fallback} (UpdatePollIntervalSeconds)")
    );
    assert_eq!(
        source_of(&l, "inventory_poll_interval_seconds"),
        format!("{main} (InventoryPollIntervalSeconds)")
    );
    assert_eq!(source_of(&l, "servers"), format!("{main} (ServerURL)"));
    assert_eq!(
        source_of(&l, "retry_poll_interval_seconds"),
        format!("{toml} (retry_poll_interval_seconds)")
    );
    assert_eq!(
        source_of(&l, "retry_poll_count"),
        "the environment (MENDER_BRIDGE_RETRY_POLL_COUNT)"
    );
    assert_eq!(source_of(&l, "data_dir"), "the command line (--data)");
}

#[test]
fn mender_conf_keys_are_case_insensitive() {
    let f = Fixture::new();
    f.write(
        "mender.conf",
        r#"{"serverurl": "https://a.example", "UPDATEPOLLINTERVALSECONDS": 5,
            "httpsclient": {"certificate": "/c.pem", "KEY": "/k.pem"},
            "security": {"authprivatekey": "/auth.pem"}, "skipverify": true,
            "artifactverifykeys": ["/v1.pem", "/v2.pem"], "devicetypefile": "/dt",
            "statescripttimeoutseconds": 7, "dbus": {"enabled": true}}"#,
    );
    let l = f.load_ok(&[]);
    let c = &l.config;
    assert_eq!(
        c.servers.first().map(ServerUrl::as_str),
        Some("https://a.example")
    );
    assert_eq!(c.update_poll_interval, Duration::from_secs(5));
    assert_eq!(
        c.https_client.certificate.as_deref(),
        Some(Path::new("/c.pem"))
    );
    assert_eq!(c.https_client.key.as_deref(), Some(Path::new("/k.pem")));
    assert_eq!(
        c.security.auth_private_key.as_deref(),
        Some(Path::new("/auth.pem"))
    );
    assert!(c.skip_verify);
    assert_eq!(
        c.artifact_verify_keys,
        [PathBuf::from("/v1.pem"), "/v2.pem".into()]
    );
    assert_eq!(c.device_type_file, Path::new("/dt"));
    assert_eq!(c.state_script_timeout, Duration::from_secs(7));
    assert_eq!(
        c.dbus,
        Dbus {
            enabled: true,
            bus: "system".into()
        }
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn servers_list_and_conflicts() {
    let f = Fixture::new();
    f.write(
        "mender.conf",
        r#"{"Servers": [{"ServerURL": "https://one/"}, {"ServerURL": "http://two:8080"}]}"#,
    );
    let c = f.load_ok(&[]).config;
    let urls: Vec<&str> = c.servers.iter().map(ServerUrl::as_str).collect();
    assert_eq!(urls, ["https://one", "http://two:8080"]);

    // Both in one file: refused, as Mender 3.x does.
    let main = f.write(
        "mender.conf",
        r#"{"ServerURL": "https://a", "Servers": [{"ServerURL": "https://b"}]}"#,
    );
    assert_eq!(
        f.load_err(&[]),
        format!(
            "ServerURL and Servers are both set in {}; set only one",
            main.display()
        )
    );
    f.write(
        "mender.conf",
        r#"{"ArtifactVerifyKey": "/a.pem", "ArtifactVerifyKeys": ["/b.pem"]}"#,
    );
    assert!(f
        .load_err(&[])
        .starts_with("ArtifactVerifyKey and ArtifactVerifyKeys are both set"));

    // In different layers: the higher one wins.
    f.write(
        "mender.conf",
        r#"{"Servers": [{"ServerURL": "https://b"}]}"#,
    );
    f.write("bridge.toml", "server_url = \"https://toml\"\n");
    let l = f.load_ok(&[]);
    assert_eq!(l.config.servers.len(), 1);
    assert_eq!(l.config.servers[0].as_str(), "https://toml");
    let l = f.load_ok(&[(
        "MENDER_BRIDGE_SERVERS",
        r#"[{server_url = "https://e1"}, {server_url = "https://e2"}]"#,
    )]);
    let urls: Vec<&str> = l.config.servers.iter().map(ServerUrl::as_str).collect();
    assert_eq!(urls, ["https://e1", "https://e2"]);
    assert_eq!(
        source_of(&l, "servers"),
        "the environment (MENDER_BRIDGE_SERVERS)"
    );
}

#[test]
fn dbus_settings_layer_and_are_checked() {
    let f = Fixture::new();
    let c = f.load_ok(&[]).config;
    assert!(c.dbus.enabled, "on by default, as the official client");
    assert_eq!(c.dbus.bus, "system");
    f.write("mender.conf", r#"{"DBus": {"Enabled": false}}"#);
    assert!(!f.load_ok(&[]).config.dbus.enabled);
    f.write(
        "bridge.toml",
        "[dbus]\nenabled = true\nbus = \"unix:path=/tmp/x\"\n",
    );
    let c = f.load_ok(&[]).config;
    assert!(c.dbus.enabled, "the bridge's file wins over mender.conf");
    assert_eq!(c.dbus.bus, "unix:path=/tmp/x");
    f.write("bridge.toml", "[dbus]\nbus = \"nowhere\"\n");
    let e = f.load_err(&[]);
    assert!(e.starts_with("dbus.bus in "), "{e}");
    f.write("bridge.toml", "[dbus]\nenabled = \"yes\"\n");
    let e = f.load_err(&[]);
    assert!(e.starts_with("dbus.enabled in "), "{e}");
}

#[test]
fn bad_values_name_key_and_file() {
    let f = Fixture::new();
    let main = f.path("mender.conf").display().to_string();
    let toml = f.path("bridge.toml").display().to_string();
    let cases: &[(&str, &str, String)] = &[
        (
            r#"{"UpdatePollIntervalSeconds": "abc"}"#,
            "",
            format!(r#"UpdatePollIntervalSeconds in {main}: expected a number, found "abc""#),
        ),
        (
            r#"{"updatepollintervalseconds": 1.5}"#,
            "",
            format!("updatepollintervalseconds in {main}: expected a number, found 1.5"),
        ),
        (
            r#"{"InventoryPollIntervalSeconds": 0}"#,
            "",
            format!("InventoryPollIntervalSeconds in {main}: must be greater than 0, found 0"),
        ),
        (
            r#"{"RetryPollCount": -1}"#,
            "",
            format!("RetryPollCount in {main}: must be between 0 and 4294967295, found -1"),
        ),
        (
            r#"{"SkipVerify": "yes"}"#,
            "",
            format!(r#"SkipVerify in {main}: expected a boolean, found "yes""#),
        ),
        (
            r#"{"HttpsClient": {"Certificate": 5}}"#,
            "",
            format!("HttpsClient.Certificate in {main}: expected a path, found 5"),
        ),
        (
            r#"{"HttpsClient": "x"}"#,
            "",
            format!("HttpsClient in {main}: expected an object, found a string"),
        ),
        (
            r#"{"Servers": [{"ServerURL": "https://a"}, {"ServerURL": "ftp://b"}]}"#,
            "",
            format!(
                r#"Servers[1].ServerURL in {main}: expected an http or https URL, found scheme "ftp""#
            ),
        ),
        (
            r#"{"ServerURL": "mender.example.com"}"#,
            "",
            format!(
                r#"ServerURL in {main}: not a URL (relative URL without a base): "mender.example.com""#
            ),
        ),
        (
            "{}",
            "device_key_type = \"dsa\"\n",
            format!(
                r#"device_key_type in {toml}: expected one of ed25519, rsa3072, p256, found "dsa""#
            ),
        ),
        (
            "{}",
            "[backend]\ntype = \"docker\"\n",
            format!(
                r#"backend.type in {toml}: expected one of raw, rauc, swupdate, found "docker""#
            ),
        ),
        (
            "{}",
            "[download]\nbackoff_initial_ms = 500\nbackoff_max_ms = 100\n",
            format!(
                "download.backoff_max_ms in {toml}: must be at least download.backoff_initial_ms (500), found 100"
            ),
        ),
        (
            "{}",
            "[artifact]\ndecoder_memory_mib = 0\n",
            format!("artifact.decoder_memory_mib in {toml}: must be greater than 0, found 0"),
        ),
    ];
    for (conf, toml_text, want) in cases {
        f.write("mender.conf", conf);
        f.write("bridge.toml", toml_text);
        assert_eq!(
            &f.load_err(&[]),
            want,
            "mender.conf {conf} / toml {toml_text}"
        );
    }

    f.write("mender.conf", "{}");
    f.write("bridge.toml", "");
    assert_eq!(
        f.load_err(&[("MENDER_BRIDGE_UPDATE_POLL_INTERVAL_SECONDS", "abc")]),
        r#"MENDER_BRIDGE_UPDATE_POLL_INTERVAL_SECONDS in the environment: expected a number, found "abc""#
    );
}

#[test]
fn tenant_token_never_in_errors_or_output() {
    let f = Fixture::new();
    f.write("mender.conf", r#"{"TenantToken": 987654321}"#);
    let err = f.load_err(&[]);
    assert!(err.starts_with("TenantToken in "), "{err}");
    assert!(!err.contains("987654321"), "{err}");

    f.write(
        "mender.conf",
        r#"{"TenantToken": "secret-tenant-token", "ServerURL": "https://a"}"#,
    );
    let l = f.load_ok(&[]);
    assert_eq!(l.config.tenant_token.expose(), "secret-tenant-token");
    let toml = l.to_toml().unwrap_or_else(|e| panic!("{e}"));
    let json = l.to_json().unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{:?}", l.config);
    for shown in [&toml, &json, &debug] {
        assert!(!shown.contains("secret-tenant-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
    assert!(toml.contains("servers = [\"https://a\"]"), "{toml}");
    assert!(toml.contains("#   tenant_token: "), "{toml}");
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(parsed["config"]["update_poll_interval_seconds"], 1800);
    assert_eq!(
        parsed["sources"]["update_poll_interval_seconds"],
        "the built-in defaults"
    );
}

#[test]
fn unknown_keys_warn_naming_key_and_file() {
    let f = Fixture::new();
    let main = f.write(
        "mender.conf",
        r#"{"ServerURL": "https://a", "FooBar": 1, "HttpsClient": {"Pin": "x"}}"#,
    );
    let toml = f.write("bridge.toml", "[download]\nidle_timeout = 5\n");
    let paths = f.paths();

    let (loaded, logged) =
        crate::testlog::logged(|| Config::load_from(&paths, vars(&[("MENDER_BRIDGE_BOGUS", "1")])));
    let l = loaded.unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        format!("unknown key FooBar in {}, ignored", main.display()),
        format!("unknown key HttpsClient.Pin in {}, ignored", main.display()),
        format!(
            "unknown key download.idle_timeout in {}, ignored",
            toml.display()
        ),
        "unknown key MENDER_BRIDGE_BOGUS in the environment, ignored".to_string(),
    ];
    for e in &expected {
        assert!(logged.contains(e), "{e:?} not in log:\n{logged}");
        assert!(logged.contains("WARN"), "{logged}");
    }
    let returned: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(returned, expected);
}

#[test]
fn mender3_keys_are_accepted_silently() {
    let f = Fixture::new();
    f.write(
        "mender.conf",
        r#"{"RootfsPartA": "/dev/mmcblk0p2", "RootfsPartB": "/dev/mmcblk0p3",
            "BootUtilitiesSetActivePart": "fw_setenv", "BootUtilitiesGetNextActivePart": "fw_printenv",
            "UpdateControlMapExpirationTimeSeconds": 3600, "UpdateControlMapBootExpirationTimeSeconds": 600,
            "Connectivity": {"DisableKeepAlive": true, "IdleConnTimeoutSeconds": 30},
            "DBus": {"Enabled": false}, "UpdateLogPath": "/var/log/mender", "DaemonLogLevel": "info",
            "ModuleTimeoutSeconds": 100, "StateScriptRetryTimeoutSeconds": 5,
            "StateScriptRetryIntervalSeconds": 2,
            "HttpsClient": {"SSLEngine": "pkcs11"}, "Security": {"SSLEngine": "pkcs11"}}"#,
    );
    let l = f.load_ok(&[]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.mender3.rootfs_part_b.as_deref(), Some("/dev/mmcblk0p3"));
    assert_eq!(
        c.mender3.connectivity,
        Some(Connectivity {
            disable_keep_alive: Some(true),
            idle_conn_timeout_seconds: Some(30)
        })
    );
    assert_eq!(c.module_timeout, Duration::from_secs(100));
    assert_eq!(c.state_script_retry_interval, Duration::from_secs(2));
    assert_eq!(c.daemon_log_level.as_deref(), Some("info"));
    assert_eq!(c.https_client.ssl_engine.as_deref(), Some("pkcs11"));
    assert!(!c.dbus.enabled, "DBus.Enabled is honoured");
}

#[test]
fn files_named_on_the_command_line_must_exist() {
    let f = Fixture::new();
    let mut paths = f.paths();
    paths.mender_conf = Some(f.path("nope.conf"));
    let err = Config::load_from(&paths, vec![])
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!("{}: no such file", f.path("nope.conf").display()))
    );

    // Default paths may be missing: the fallback here is data/mender.conf, absent.
    let mut paths = f.paths();
    paths.fallback_mender_conf = None;
    assert!(Config::load_from(&paths, vec![]).is_ok());

    let bad = f.write("mender.conf", "{\"ServerURL\": ");
    let err = Config::load_from(&f.paths(), vec![])
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with(&format!("{}: not valid JSON", bad.display()))),
        "{err:?}"
    );
}

/// The schema table and the unchecked structs must name the same keys.
#[test]
fn schema_matches_unchecked_config() {
    let mut unchecked = UncheckedConfig::default();
    unchecked.server_url = Some(String::new());
    unchecked.servers = Some(vec![unchecked::UncheckedServer::default()]);
    unchecked.servers = unchecked.servers.map(|mut s| {
        s[0].server_url = Some(String::new());
        s
    });
    unchecked.server_certificate = Some(PathBuf::new());
    unchecked.https_client = unchecked::UncheckedHttpsClient {
        certificate: Some(PathBuf::new()),
        key: Some(PathBuf::new()),
        ssl_engine: Some(String::new()),
    };
    unchecked.security = unchecked::UncheckedSecurity {
        auth_private_key: Some(PathBuf::new()),
        ssl_engine: Some(String::new()),
    };
    unchecked.artifact_verify_key = Some(PathBuf::new());
    unchecked.artifact_verify_keys = Some(vec![]);
    unchecked.device_type_file = Some(PathBuf::new());
    unchecked.update_log_path = Some(PathBuf::new());
    unchecked.daemon_log_level = Some(String::new());
    unchecked.connectivity = unchecked::UncheckedConnectivity {
        disable_keep_alive: Some(true),
        idle_conn_timeout_seconds: Some(1),
    };
    unchecked.update_control_map_expiration_time_seconds = Some(1);
    unchecked.update_control_map_boot_expiration_time_seconds = Some(1);
    unchecked.rootfs_part_a = Some(String::new());
    unchecked.rootfs_part_b = Some(String::new());
    unchecked.boot_utilities_set_active_part = Some(String::new());
    unchecked.boot_utilities_get_next_active_part = Some(String::new());
    unchecked.artifact.max_payload_file_mib = Some(1);

    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    leaves(v, &format!("{prefix}{k}."), out)
                }
            }
            serde_json::Value::Array(items)
                if items.iter().all(|i| i.is_object()) && !items.is_empty() =>
            {
                for i in items {
                    leaves(i, prefix, out)
                }
            }
            _ => out.push(prefix.trim_end_matches('.').to_string()),
        }
    }
    let value = serde_json::to_value(&unchecked).unwrap_or_default();
    let mut got = Vec::new();
    leaves(&value, "", &mut got);
    got.sort();
    got.dedup();
    assert_eq!(got, schema::all_paths());
}

/// `config/mender-bridge.toml` documents every setting with its default: uncommenting
/// every setting line loads without warnings and changes nothing.
#[test]
fn example_bridge_toml_documents_every_setting() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mender-bridge.toml");
    let text = std::fs::read_to_string(&example).unwrap_or_else(|e| panic!("{e}"));
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let f = Fixture::new();
    f.write("bridge.toml", &uncommented);
    let mut paths = f.paths();
    paths.data_dir = None;
    paths.fallback_mender_conf = Some(f.write("fallback.conf", "{}"));
    let l = Config::load_from(&paths, vec![]).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let toml_origin = f.path("bridge.toml").display().to_string();
    let mut set_in_file: Vec<&str> = l
        .sources
        .iter()
        .filter(|(_, o)| o.starts_with(&toml_origin))
        .map(|(k, _)| k.as_str())
        .collect();
    set_in_file.sort();
    // Every bridge setting is there (mender.conf keys are documented in mender.conf.example).
    for key in [
        "artifact.decoder_memory_mib",
        "artifact.header_entries",
        "artifact.header_file_mib",
        "artifact.header_member_mib",
        "artifact.header_total_mib",
        "artifact_info_file",
        "official_poll_retry",
        "first_poll_spread",
        "backend.rauc.bus",
        "backend.rauc.call_timeout_seconds",
        "backend.rauc.health_check_timeout_seconds",
        "backend.rauc.install_timeout_seconds",
        "backend.raw.bootenv.editenv",
        "backend.raw.bootenv.env_file",
        "backend.raw.bootenv.printenv",
        "backend.raw.bootenv.setenv",
        "backend.raw.bootenv.type",
        "backend.raw.cmdline",
        "backend.raw.verify_readback",
        "backend.swupdate.busy_backoff_ms",
        "backend.swupdate.busy_retries",
        "backend.swupdate.dry_run",
        "backend.swupdate.install_timeout_seconds",
        "backend.swupdate.mode",
        "backend.swupdate.reboot",
        "backend.swupdate.running_mode",
        "backend.swupdate.software_set",
        "backend.swupdate.sw_versions_file",
        "backend.swupdate.timeout_seconds",
        "backend.swupdate.ustate",
        "backend.swupdate.write_timeout_seconds",
        "backend.type",
        "data_dir",
        "dbus.bus",
        "dbus.enabled",
        "device_key_type",
        "download.backoff_initial_ms",
        "download.backoff_max_ms",
        "download.idle_timeout_seconds",
        "download.max_resume_attempts",
        "identity_script",
        "inventory_script_dir",
        "reboot_command",
        "script_timeout_seconds",
        "state_scripts_dir",
        "modules_dir",
    ] {
        assert!(
            set_in_file.contains(&key),
            "{key} not documented: {set_in_file:?}"
        );
    }
    let defaults = Fixture::new().load_ok(&[]).config;
    let mut c = l.config.clone();
    c.data_dir = defaults.data_dir.clone();
    c.device_type_file = defaults.device_type_file.clone();
    assert_eq!(
        serde_json::to_value(&c).ok(),
        serde_json::to_value(&defaults).ok(),
        "the documented values are the defaults"
    );
}

/// `config/mender.conf.example` loads without a warning.
#[test]
fn example_mender_conf_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mender.conf.example");
    let f = Fixture::new();
    let mut paths = f.paths();
    paths.mender_conf = Some(example);
    let l = Config::load_from(&paths, vec![]).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(!l.config.servers.is_empty());
}
