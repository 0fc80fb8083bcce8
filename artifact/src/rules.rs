//! The format rules that the reader and the writer both enforce, stated once: which
//! meta-data values and which state script names an artifact may carry.

use serde_json::Value;

/// A meta-data value: a string, a number, or a list of those. The one rule, for the reader
/// and the writer alike.
pub(crate) fn is_valid_meta_data_value(v: &Value) -> bool {
    match v {
        Value::String(_) | Value::Number(_) => true,
        Value::Array(items) => items
            .iter()
            .all(|i| matches!(i, Value::String(_) | Value::Number(_))),
        _ => false,
    }
}

/// Artifact state script names: `<State>_<Enter|Leave|Error>_<NN>[_<description>]`, the
/// description (when there is one) non-empty and without whitespace. The one rule, for the
/// reader and the writer alike.
pub(crate) fn is_valid_script_name(name: &str) -> bool {
    const STATES: [&str; 10] = [
        "Idle",
        "Sync",
        "Download",
        "ArtifactInstall",
        "ArtifactReboot",
        "ArtifactCommit",
        "ArtifactRollbackReboot",
        "ArtifactRollback",
        "ArtifactFailure",
        "ArtifactVerifyReboot",
    ];
    let mut parts = name.splitn(4, '_');
    let (state, action, nn) = (parts.next(), parts.next(), parts.next());
    let desc = parts.next();
    state.is_some_and(|s| STATES.contains(&s))
        && action.is_some_and(|a| ["Enter", "Leave", "Error"].contains(&a))
        && nn.is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
        && !desc.is_some_and(|d| d.is_empty() || d.chars().any(|c| c.is_whitespace() || c == '/'))
}
