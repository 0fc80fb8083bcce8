//! One event's fields, collected once for the structured outputs (journald, JSON).

use std::fmt::Write as _;

use tracing::field::{Field, Visit};

/// The longest value kept of one field (bytes); longer ones are cut at a char boundary and
/// marked, so one event can never make an unbounded record.
pub const MAX_VALUE: usize = 8 * 1024;

/// The `message` and the other fields of one event, in the order they were recorded.
#[derive(Debug, Default)]
pub struct Fields {
    pub message: String,
    pub others: Vec<(&'static str, String)>,
}

impl Fields {
    /// The message followed by ` key=value` for each other field, as the text format
    /// prints it (what `journalctl` shows by default).
    pub fn line(&self) -> String {
        let mut line = self.message.clone();
        for (k, v) in &self.others {
            let _ = write!(line, " {k}={v}");
        }
        line
    }
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_VALUE {
        let mut cut = MAX_VALUE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…(cut)");
    }
    s
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        let value = bounded(value);
        if field.name() == "message" {
            self.message = value;
        } else {
            self.others.push((field.name(), value));
        }
    }
}
