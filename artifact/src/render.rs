//! Text and JSON views of an artifact, the text laid out as `mender-artifact read` prints it
//! so that scripts and eyes used to that tool read it the same way.

use std::fmt::Write as _;

use serde::Serialize;

use super::payload::FileInfo;
use super::reader::ArtifactInfo;
use super::signature::SignatureStatus;

/// An artifact that was read to its end: the header plus every payload file (all verified).
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactReport {
    #[serde(flatten)]
    pub info: ArtifactInfo,
    pub files: Vec<FileInfo>,
}

/// Go's `%v` of a `[]string`: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// mender-artifact's depends lists: `[a, b]`.
fn comma_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant), valid for every u64-seconds date we can meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn signature_text(s: &SignatureStatus) -> &'static str {
    match s {
        SignatureStatus::Unsigned => "no signature",
        SignatureStatus::SignedUnverified => {
            "signed but no key for verification provided; please use `-k` option for providing verification key"
        }
        SignatureStatus::Verified { .. } => "signed and verified correctly",
    }
}

/// Renders the report in the layout of `mender-artifact read`.
pub fn to_text(r: &ArtifactReport) -> String {
    let h = &r.info.header;
    let mut o = String::new();
    let _ = writeln!(o, "Mender artifact:");
    let _ = writeln!(o, "  Name: {}", h.name);
    let _ = writeln!(o, "  Format: mender");
    let _ = writeln!(o, "  Version: {}", r.info.format_version);
    let _ = writeln!(o, "  Signature: {}", signature_text(&r.info.signature));
    let _ = writeln!(
        o,
        "  Compatible devices: '{}'",
        go_list(&h.depends.device_type)
    );
    if r.info.format_version >= 3 {
        let _ = writeln!(o, "  Provides group: {}", h.group.as_deref().unwrap_or(""));
        let _ = writeln!(
            o,
            "  Depends on one of artifact(s): {}",
            comma_list(&h.depends.artifact_name)
        );
        let _ = writeln!(
            o,
            "  Depends on one of group(s): {}",
            comma_list(&h.depends.artifact_group)
        );
    }
    let _ = writeln!(o, "  State scripts:");
    for s in &h.scripts {
        let _ = writeln!(o, "    {}", s.name);
    }
    let p = &h.payload;
    let _ = writeln!(o, "\nUpdates:\n    0:");
    let _ = writeln!(
        o,
        "    Type:   {}",
        p.payload_type.as_deref().unwrap_or("Empty type")
    );
    match p.provides.as_ref().filter(|m| !m.is_empty()) {
        None => o.push_str("    Provides: Nothing\n"),
        Some(m) => {
            o.push_str("    Provides:\n");
            for (k, v) in m {
                let _ = writeln!(o, "\t{k}: {v}");
            }
        }
    }
    if p.depends.is_empty() {
        o.push_str("    Depends: Nothing\n");
    } else {
        o.push_str("    Depends:\n");
        for (k, v) in &p.depends {
            let v = if v.len() == 1 {
                v[0].clone()
            } else {
                go_list(v)
            };
            let _ = writeln!(o, "\t{k}: {v}");
        }
    }
    if let Some(c) = p.clears_provides.as_ref().filter(|c| !c.is_empty()) {
        let quoted: Vec<String> = c.iter().map(|s| format!("{s:?}")).collect();
        let _ = writeln!(o, "    Clears Provides: [{}]", quoted.join(", "));
    }
    match &p.meta_data {
        None => o.push_str("    Metadata: Nothing\n"),
        Some(m) => {
            o.push_str("    Metadata:\n");
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            if m.serialize(&mut ser).is_ok() {
                for line in String::from_utf8_lossy(&buf).lines() {
                    let _ = writeln!(o, "\t{line}");
                }
            }
        }
    }
    if r.files.is_empty() {
        o.push_str("    Files: None\n");
    } else {
        o.push_str("    Files:\n");
        for f in &r.files {
            let _ = writeln!(o, "      name:     {}", f.name);
            let _ = writeln!(o, "      size:     {}", f.size);
            let _ = writeln!(o, "      modified: {}", go_utc(f.mtime));
            let _ = writeln!(o, "      checksum: {}", hex::encode(f.sha256));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_format() {
        assert_eq!(go_utc(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_utc(1_795_851_000), "2026-11-28 07:30:00 +0000 UTC");
        assert_eq!(go_utc(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
    }
}
