//! The key tree every configuration layer is checked against: the bridge's snake_case key,
//! the name `mender.conf` gives it (if Mender has it), and what kind of value it holds.
//!
//! One table serves three jobs: mapping `mender.conf` names (matched case-insensitively, as
//! Go's `encoding/json` does) to the bridge's keys, spotting unknown keys in every layer,
//! and knowing which environment values are strings (never parsed as numbers).

/// What a key holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A string or a path: environment values are taken verbatim.
    Str,
    Int,
    Bool,
    /// A list of strings.
    StrList,
    /// A nested table with these keys.
    Table(&'static [Field]),
    /// A list of tables with these keys.
    TableList(&'static [Field]),
}

/// One key.
#[derive(Debug)]
pub(crate) struct Field {
    /// The bridge's name (TOML, environment, `show-config`).
    pub key: &'static str,
    /// The name in `mender.conf`, for keys the official client has.
    pub mender: Option<&'static str>,
    pub kind: Kind,
}

const fn m(key: &'static str, mender: &'static str, kind: Kind) -> Field {
    Field {
        key,
        mender: Some(mender),
        kind,
    }
}

const fn b(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        mender: None,
        kind,
    }
}

use Kind::{Bool, Int, Str, StrList, Table, TableList};

/// Every top-level key (PROTOCOL.md §4.5 for the `mender.conf` ones).
pub(crate) static ROOT: &[Field] = &[
    m("server_url", "ServerURL", Str),
    m("servers", "Servers", TableList(SERVER)),
    m("tenant_token", "TenantToken", Str),
    m(
        "update_poll_interval_seconds",
        "UpdatePollIntervalSeconds",
        Int,
    ),
    m(
        "inventory_poll_interval_seconds",
        "InventoryPollIntervalSeconds",
        Int,
    ),
    m(
        "retry_poll_interval_seconds",
        "RetryPollIntervalSeconds",
        Int,
    ),
    m("retry_poll_count", "RetryPollCount", Int),
    m("server_certificate", "ServerCertificate", Str),
    m("skip_verify", "SkipVerify", Bool),
    m("https_client", "HttpsClient", Table(HTTPS_CLIENT)),
    m("security", "Security", Table(SECURITY)),
    m("artifact_verify_key", "ArtifactVerifyKey", Str),
    m("artifact_verify_keys", "ArtifactVerifyKeys", StrList),
    m("device_type_file", "DeviceTypeFile", Str),
    m("update_log_path", "UpdateLogPath", Str),
    m("daemon_log_level", "DaemonLogLevel", Str),
    m("module_timeout_seconds", "ModuleTimeoutSeconds", Int),
    m(
        "state_script_timeout_seconds",
        "StateScriptTimeoutSeconds",
        Int,
    ),
    m(
        "state_script_retry_timeout_seconds",
        "StateScriptRetryTimeoutSeconds",
        Int,
    ),
    m(
        "state_script_retry_interval_seconds",
        "StateScriptRetryIntervalSeconds",
        Int,
    ),
    m("connectivity", "Connectivity", Table(CONNECTIVITY)),
    m(
        "update_control_map_expiration_time_seconds",
        "UpdateControlMapExpirationTimeSeconds",
        Int,
    ),
    m(
        "update_control_map_boot_expiration_time_seconds",
        "UpdateControlMapBootExpirationTimeSeconds",
        Int,
    ),
    m("dbus", "DBus", Table(DBUS)),
    m("rootfs_part_a", "RootfsPartA", Str),
    m("rootfs_part_b", "RootfsPartB", Str),
    m(
        "boot_utilities_set_active_part",
        "BootUtilitiesSetActivePart",
        Str,
    ),
    m(
        "boot_utilities_get_next_active_part",
        "BootUtilitiesGetNextActivePart",
        Str,
    ),
    b("data_dir", Str),
    b("device_key_type", Str),
    b("identity_script", Str),
    b("inventory_script_dir", Str),
    b("script_timeout_seconds", Int),
    b("state_scripts_dir", Str),
    b("modules_dir", Str),
    b("artifact_info_file", Str),
    b("reboot_command", StrList),
    b("official_poll_retry", Bool),
    b("first_poll_spread", Bool),
    b("artifact", Table(ARTIFACT)),
    b("download", Table(DOWNLOAD)),
    b("backend", Table(BACKEND)),
];

static SERVER: &[Field] = &[m("server_url", "ServerURL", Str)];

static HTTPS_CLIENT: &[Field] = &[
    m("certificate", "Certificate", Str),
    m("key", "Key", Str),
    m("ssl_engine", "SSLEngine", Str),
];

static SECURITY: &[Field] = &[
    m("auth_private_key", "AuthPrivateKey", Str),
    m("ssl_engine", "SSLEngine", Str),
];

static CONNECTIVITY: &[Field] = &[
    m("disable_keep_alive", "DisableKeepAlive", Bool),
    m("idle_conn_timeout_seconds", "IdleConnTimeoutSeconds", Int),
];

static DBUS: &[Field] = &[m("enabled", "Enabled", Bool), b("bus", Str)];

static ARTIFACT: &[Field] = &[
    b("decoder_memory_mib", Int),
    b("header_member_mib", Int),
    b("header_total_mib", Int),
    b("header_file_mib", Int),
    b("header_entries", Int),
    b("max_payload_file_mib", Int),
];

static DOWNLOAD: &[Field] = &[
    b("idle_timeout_seconds", Int),
    b("max_resume_attempts", Int),
    b("backoff_initial_ms", Int),
    b("backoff_max_ms", Int),
];

static BACKEND: &[Field] = &[
    b("type", Str),
    b("raw", Table(RAW_BACKEND)),
    b("rauc", Table(RAUC_BACKEND)),
    b("swupdate", Table(SWUPDATE_BACKEND)),
];

static SWUPDATE_BACKEND: &[Field] = &[
    b("control_socket", Str),
    b("progress_socket", Str),
    b("dry_run", Bool),
    b("software_set", Str),
    b("running_mode", Str),
    b("reboot", Bool),
    b("ustate", Bool),
    b("timeout_seconds", Int),
    b("write_timeout_seconds", Int),
    b("install_timeout_seconds", Int),
    b("busy_retries", Int),
    b("busy_backoff_ms", Int),
    b("sw_versions_file", Str),
    b("mode", Str),
    b("spool_dir", Str),
    b("swupdate_uid", Int),
];

static RAUC_BACKEND: &[Field] = &[
    b("bus", Str),
    b("spool_dir", Str),
    b("health_check", StrList),
    b("health_check_timeout_seconds", Int),
    b("call_timeout_seconds", Int),
    b("install_timeout_seconds", Int),
];

static RAW_BACKEND: &[Field] = &[
    b("cmdline", Str),
    b("active_slot", Str),
    b("verify_readback", Bool),
    b("a", Table(SLOT)),
    b("b", Table(SLOT)),
    b("bootenv", Table(BOOTENV)),
];

static SLOT: &[Field] = &[
    b("device", Str),
    b("boot_part", Int),
    b("size", Int),
    b("root_aliases", StrList),
];

static BOOTENV: &[Field] = &[
    b("type", Str),
    b("config", Str),
    b("printenv", Str),
    b("setenv", Str),
    b("env_file", Str),
    b("editenv", Str),
    b("activate", StrList),
    b("commit", StrList),
    b("revert", StrList),
    b("state", StrList),
];

/// The field with this bridge key, exactly (TOML and environment names).
pub(crate) fn by_key<'a>(fields: &'a [Field], key: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.key == key)
}

/// The field a `mender.conf` key means, as Go's `encoding/json` decides: an exact match
/// first, else a case-insensitive one (Unicode simple folding, so `serverurl` and even
/// `ſerverURL` name `ServerURL`).
pub(crate) fn by_mender_name<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.mender == Some(name)).or_else(|| {
        fields
            .iter()
            .find(|f| f.mender.is_some_and(|m| equal_fold(m, name)))
    })
}

/// Go's `bytes.EqualFold`: equal under simple case folding, character by character.
pub(crate) fn equal_fold(a: &str, b: &str) -> bool {
    let mut x = a.chars();
    let mut y = b.chars();
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(c), Some(d)) => {
                let same = c == d
                    || c.to_lowercase().eq(d.to_lowercase())
                    || c.to_uppercase().eq(d.to_uppercase());
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Every key path in the tree, dotted (`https_client.key`); list-of-table fields appear
/// as `servers.server_url`. For tests that keep this table and the structs in step.
#[cfg(test)]
pub(crate) fn all_paths() -> Vec<String> {
    fn walk(fields: &[Field], prefix: &str, out: &mut Vec<String>) {
        for f in fields {
            let path = format!("{prefix}{}", f.key);
            match f.kind {
                Table(sub) | TableList(sub) => walk(sub, &format!("{path}."), out),
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk(ROOT, "", &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mender_names_match_like_go() {
        assert_eq!(
            by_mender_name(ROOT, "ServerURL").map(|f| f.key),
            Some("server_url")
        );
        assert_eq!(
            by_mender_name(ROOT, "serverurl").map(|f| f.key),
            Some("server_url")
        );
        assert_eq!(
            by_mender_name(ROOT, "SERVERURL").map(|f| f.key),
            Some("server_url")
        );
        // U+017F LATIN SMALL LETTER LONG S folds to 's'; U+212A KELVIN SIGN to 'k'.
        assert_eq!(
            by_mender_name(ROOT, "ſerverURL").map(|f| f.key),
            Some("server_url")
        );
        assert_eq!(
            by_mender_name(HTTPS_CLIENT, "\u{212A}ey").map(|f| f.key),
            Some("key")
        );
        assert!(by_mender_name(ROOT, "Server_URL").is_none());
        assert!(
            by_mender_name(ROOT, "data_dir").is_none(),
            "bridge keys are not in mender.conf"
        );
    }

    #[test]
    fn equal_fold_rules() {
        assert!(equal_fold("abc", "ABC"));
        assert!(!equal_fold("abc", "abcd"));
        assert!(!equal_fold("ß", "ss"));
    }
}
