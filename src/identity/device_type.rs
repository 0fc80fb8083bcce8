//! The `device_type` file (PROTOCOL.md §4.4): exactly one line `device_type=<value>`.
//!
//! Rules (the C++ client's, which are the strict ones): blank lines are ignored; exactly one
//! other line, starting with `device_type=`; the value non-empty, without surrounding
//! whitespace (it must match artifacts' `device_type` byte for byte, so a stray space is an
//! error here rather than a mystery later). A trailing `\r` is dropped.

use std::path::{Path, PathBuf};

/// Largest `device_type` file read.
const MAX_SIZE: u64 = 4096;

/// The `device_type` file's text is not `device_type=<value>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceTypeFormatError {
    #[error("it is empty; expected one line device_type=<value>")]
    Empty,
    #[error("line {line} does not start with \"device_type=\": {text:?}")]
    NoPrefix { line: usize, text: String },
    #[error("line {line}: the value after \"device_type=\" is empty")]
    EmptyValue { line: usize },
    #[error("line {line}: the value {value:?} has leading or trailing whitespace")]
    Whitespace { line: usize, value: String },
    #[error("line {line}: only one device_type line is allowed, found also {text:?}")]
    ExtraLine { line: usize, text: String },
}

/// The `device_type` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceTypeError {
    #[error("cannot read the device type file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device type file {}: {source}", path.display())]
    Format {
        path: PathBuf,
        source: DeviceTypeFormatError,
    },
}

/// The device type in `text`.
pub fn parse_device_type(text: &str) -> Result<String, DeviceTypeFormatError> {
    let mut found: Option<String> = None;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(DeviceTypeFormatError::ExtraLine {
                line: n,
                text: line.to_string(),
            });
        }
        let Some(value) = line.strip_prefix("device_type=") else {
            return Err(DeviceTypeFormatError::NoPrefix {
                line: n,
                text: line.to_string(),
            });
        };
        if value.is_empty() {
            return Err(DeviceTypeFormatError::EmptyValue { line: n });
        }
        if value.trim() != value {
            return Err(DeviceTypeFormatError::Whitespace {
                line: n,
                value: value.to_string(),
            });
        }
        found = Some(value.to_string());
    }
    found.ok_or(DeviceTypeFormatError::Empty)
}

/// Reads and parses the `device_type` file at `path` (the `DeviceTypeFile` setting; at most
/// 4 KiB, UTF-8).
pub fn read_device_type(path: &Path) -> Result<String, DeviceTypeError> {
    let read_err = |source| DeviceTypeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::fsutil::read_optional(path, MAX_SIZE)
        .map_err(read_err)?
        .ok_or_else(|| read_err(std::io::ErrorKind::NotFound.into()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    parse_device_type(&text).map_err(|source| DeviceTypeError::Format {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceTypeFormatError as E;

    #[test]
    fn accepts_exactly_one_line() {
        assert_eq!(
            parse_device_type("device_type=qemux86-64\n"),
            Ok("qemux86-64".into())
        );
        assert_eq!(
            parse_device_type("device_type=raspberrypi4"),
            Ok("raspberrypi4".into())
        );
        assert_eq!(
            parse_device_type("\ndevice_type=a=b\r\n\n"),
            Ok("a=b".into())
        );
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(parse_device_type(""), Err(E::Empty));
        assert_eq!(parse_device_type(" \n\n"), Err(E::Empty));
        assert_eq!(
            parse_device_type("qemux86-64\n"),
            Err(E::NoPrefix {
                line: 1,
                text: "qemux86-64".into()
            })
        );
        assert_eq!(
            parse_device_type("device_type = x"),
            Err(E::NoPrefix {
                line: 1,
                text: "device_type = x".into()
            })
        );
        assert_eq!(
            parse_device_type("device_type=\n"),
            Err(E::EmptyValue { line: 1 })
        );
        assert_eq!(
            parse_device_type("device_type=x \n"),
            Err(E::Whitespace {
                line: 1,
                value: "x ".into()
            })
        );
        assert_eq!(
            parse_device_type("device_type=a\ndevice_type=b\n"),
            Err(E::ExtraLine {
                line: 2,
                text: "device_type=b".into()
            })
        );
        assert_eq!(
            parse_device_type("# comment\ndevice_type=a"),
            Err(E::NoPrefix {
                line: 1,
                text: "# comment".into()
            })
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = t.path().join("device_type");
        let err = read_device_type(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(&format!("cannot read the device type file {}", p.display())),
            "{err}"
        );
        std::fs::write(&p, "device_type=\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_device_type(&p).err().map(|e| e.to_string()),
            Some(format!(
                "device type file {}: line 1: the value after \"device_type=\" is empty",
                p.display()
            ))
        );
        std::fs::write(&p, "device_type=beaglebone\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_device_type(&p).ok().as_deref(), Some("beaglebone"));
        std::fs::write(&p, "x".repeat(5000)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_device_type(&p),
            Err(DeviceTypeError::Read { .. })
        ));
    }
}
