//! `ConfigError` (fatal, names the file and key) and `ConfigWarning` (logged, loading goes
//! on), and the translation of figment's type errors into plain words.

use std::fmt;
use std::path::PathBuf;

use figment::error::{Actual, Kind};

use super::layer::Origin;

/// The configuration cannot be used; the bridge must not start. Every variant names the
/// file (or the environment / command line) and, where there is one, the key as written
/// there.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file named on the command line does not exist (the default paths may be absent).
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: not valid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: not valid TOML: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    #[error("{}: the top level must be a JSON object", path.display())]
    NotAnObject { path: PathBuf },
    /// A value has the wrong type or breaks an invariant.
    #[error("{key} in {origin}: {message}")]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
    /// A setting the chosen configuration needs is not set (e.g. the raw backend's slots).
    #[error("{key} is not set: {why}")]
    Missing { key: String, why: String },
    /// Two keys that exclude each other (`ServerURL` and `Servers`, `ArtifactVerifyKey` and
    /// `ArtifactVerifyKeys`) are both set in one source.
    #[error("{first} and {second} are both set in {origin}; set only one")]
    Conflict {
        first: String,
        second: String,
        origin: Origin,
    },
}

/// Something odd but harmless; logged with `tracing::warn!` and returned by
/// [`super::Config::load_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A key the bridge does not know (ignored).
    UnknownKey { key: String, origin: Origin },
    /// The same `mender.conf` key twice in one object (possibly spelled differently);
    /// as in Go, the last one wins.
    DuplicateKey {
        key: String,
        earlier: String,
        origin: Origin,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey { key, origin } => {
                write!(f, "unknown key {key} in {origin}, ignored")
            }
            ConfigWarning::DuplicateKey {
                key,
                earlier,
                origin,
            } => write!(
                f,
                "{key} in {origin} repeats {earlier}; the last one is used"
            ),
        }
    }
}

/// Plain words for figment's deserialisation error kinds:
/// `expected a number, found "abc"`.
pub(crate) fn describe(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {}, found {}",
                describe_expected(expected),
                describe_actual(actual)
            )
        }
        Kind::UnknownVariant(found, expected) => {
            format!("expected one of {}, found {found:?}", expected.join(", "))
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    }
}

fn describe_expected(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" => {
            "a number".into()
        }
        "a sequence" => "a list".into(),
        "path string" => "a path".into(),
        "a map" => "an object".into(),
        e if e.starts_with("struct ") => "an object".into(),
        e => e.into(),
    }
}

fn describe_actual(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => {
            let mut shown: String = s.chars().take(80).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Seq => "a list".into(),
        Actual::Map => "an object".into(),
        Actual::Unit | Actual::Option => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_in_plain_words() {
        let k = Kind::InvalidType(Actual::Str("abc".into()), "i64".into());
        assert_eq!(describe(&k), r#"expected a number, found "abc""#);
        let k = Kind::InvalidType(Actual::Signed(3), "a boolean".into());
        assert_eq!(describe(&k), "expected a boolean, found 3");
        let k = Kind::UnknownVariant("dsa".into(), &["ed25519", "rsa3072"]);
        assert_eq!(
            describe(&k),
            r#"expected one of ed25519, rsa3072, found "dsa""#
        );
    }
}
