//! One JSON object per line on stderr (`--log-format json`): `timestamp` (RFC 3339 UTC,
//! milliseconds), `level`, `target`, `message` and each event field under its own name.
//! Values are strings, bounded as in [`super::fields`].

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::fields::Fields;

/// The JSON-lines layer: to `file` when set, else to stderr.
#[derive(Default)]
pub struct JsonLines {
    pub file: Option<std::sync::Mutex<std::fs::File>>,
}

/// `2026-12-07T01:02:03.456Z` for `now`.
pub fn timestamp(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = mender_api::rfc3339::format_utc(d.as_secs());
    let millis = d.subsec_millis();
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{millis:03}Z"),
        None => secs,
    }
}

/// The line of one event (without the newline).
pub fn line(event: &Event<'_>, now: SystemTime) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let meta = event.metadata();
    let mut obj = serde_json::Map::new();
    obj.insert("timestamp".into(), timestamp(now).into());
    obj.insert("level".into(), meta.level().as_str().into());
    obj.insert("target".into(), meta.target().into());
    obj.insert("message".into(), fields.message.into());
    for (name, value) in fields.others {
        let key = match name {
            "timestamp" | "level" | "target" | "message" => format!("field.{name}"),
            other => other.to_string(),
        };
        obj.insert(key, value.into());
    }
    serde_json::Value::Object(obj).to_string()
}

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = line(event, SystemTime::now());
        text.push('\n');
        match &self.file {
            Some(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(text.as_bytes());
            }
            None => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
        }
    }
}
