//! The checks on an artifact description and its payload files, made before anything is
//! read or written: the rules of the format, of mender-artifact, and of the reader (whose
//! state-script and meta-data rules are used as they are).

use std::collections::BTreeSet;

use super::error::invalid;
use super::{ArtifactSpec, PayloadFile, PayloadKind, WriteError};
use crate::rules::{is_valid_meta_data_value, is_valid_script_name};

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks the description against the rules of the format and of the reader.
pub(super) fn validate(spec: &ArtifactSpec, files: &[PayloadFile]) -> Result<(), WriteError> {
    if spec.name.is_empty() || has_control(&spec.name) {
        return Err(invalid(
            "the artifact name must be non-empty, without control characters",
        ));
    }
    if spec.device_types.is_empty() {
        return Err(invalid("at least one compatible device type is required"));
    }
    let lists = [
        ("device type", &spec.device_types),
        ("artifact name dependency", &spec.depends_artifact_names),
        ("group dependency", &spec.depends_groups),
    ];
    for (what, list) in lists {
        if list.iter().any(|v| v.is_empty()) {
            return Err(invalid(format!("an empty {what}")));
        }
    }
    if spec.group.as_deref() == Some("") {
        return Err(invalid(
            "the provided group is empty (use None for no group)",
        ));
    }
    for reserved in ["artifact_name", "artifact_group"] {
        if spec.provides.contains_key(reserved) {
            return Err(invalid(format!(
                "'{reserved}' is not a payload provide; set the artifact's name/group instead"
            )));
        }
    }
    for reserved in ["artifact_name", "artifact_group", "device_type"] {
        if spec.depends.contains_key(reserved) {
            return Err(invalid(format!(
                "'{reserved}' is not a payload depend; use the artifact-level depends instead"
            )));
        }
    }
    if spec.provides.keys().any(|k| k.is_empty()) || spec.depends.keys().any(|k| k.is_empty()) {
        return Err(invalid("an empty provides or depends key"));
    }
    if let Some((k, _)) = spec.depends.iter().find(|(_, v)| v.is_empty()) {
        return Err(invalid(format!("depends '{k}' has no value")));
    }
    if spec.clears_provides.iter().any(|c| c.is_empty()) {
        return Err(invalid("an empty clears_artifact_provides pattern"));
    }
    match &spec.payload {
        PayloadKind::RootfsImage if files.len() != 1 => {
            return Err(invalid(format!(
                "a rootfs-image artifact has exactly one file, not {}",
                files.len()
            )))
        }
        PayloadKind::Module { type_name } => {
            if type_name.is_empty()
                || type_name == "rootfs-image"
                || !type_name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(invalid(format!(
                    "'{type_name}' is not a module type name (letters, digits, '-', '_', '.'; \
                     not rootfs-image)"
                )));
            }
        }
        PayloadKind::Bootstrap => {
            if !files.is_empty() {
                return Err(invalid("a bootstrap artifact carries no files"));
            }
            if spec.meta_data.is_some() {
                return Err(invalid("a bootstrap artifact has no meta-data"));
            }
        }
        PayloadKind::RootfsImage => {}
    }
    if let Some(md) = &spec.meta_data {
        for (k, v) in md {
            if !is_valid_meta_data_value(v) {
                return Err(invalid(format!(
                    "meta-data '{k}': values must be strings, numbers or lists of them"
                )));
            }
        }
    }
    let mut names = BTreeSet::new();
    for s in &spec.scripts {
        check_script_name(&s.name)?;
        if !names.insert(s.name.as_str()) {
            return Err(invalid(format!("state script '{}' given twice", s.name)));
        }
    }
    let mut names = BTreeSet::new();
    for f in files {
        let bad = |reason: &str| WriteError::InvalidFile {
            name: f.name.clone(),
            reason: reason.to_string(),
        };
        if f.name.is_empty() || f.name == "." || f.name == ".." {
            return Err(bad("not a file name"));
        }
        // mender-artifact's rule (its reader refuses other names too).
        if !f
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".,_-".contains(&b))
        {
            return Err(bad(
                "only ASCII letters, digits and '.', ',', '_', '-' are allowed \
                 (mender-artifact's rule; payload files sit at the root of the data tar)",
            ));
        }
        if !names.insert(f.name.as_str()) {
            return Err(bad("given twice"));
        }
    }
    Ok(())
}

/// A state script name: the reader's rule (which also refuses `/`: the script is written as
/// `scripts/<name>`, one file directly in `scripts/`).
fn check_script_name(name: &str) -> Result<(), WriteError> {
    if !is_valid_script_name(name) {
        return Err(invalid(format!(
            "state script '{name}': the name must be <State>_<Enter|Leave|Error>_<NN>[_<description>]"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_are_the_readers_rule() {
        check_script_name("ArtifactCommit_Leave_50_cleanup").unwrap();
        assert!(check_script_name("ArtifactInstall_Enter_1").is_err());
        // A '/' would make a nested tar path under scripts/.
        assert!(check_script_name("ArtifactInstall_Enter_01_a/b").is_err());
    }
}
