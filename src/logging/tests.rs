use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, UNIX_EPOCH};

use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

/// The fields of a native-protocol datagram (both encodings).
fn parse(mut raw: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !raw.is_empty() {
        let nl = raw.iter().position(|b| *b == b'\n').expect("a field ends");
        let head = &raw[..nl];
        if let Some(eq) = head.iter().position(|b| *b == b'=') {
            let name = String::from_utf8_lossy(&head[..eq]).into_owned();
            out.insert(name, String::from_utf8_lossy(&head[eq + 1..]).into_owned());
            raw = &raw[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(head).into_owned();
            let len_bytes: [u8; 8] = raw[nl + 1..nl + 9].try_into().expect("length");
            let len = u64::from_le_bytes(len_bytes) as usize;
            let value = &raw[nl + 9..nl + 9 + len];
            assert_eq!(raw[nl + 9 + len], b'\n');
            out.insert(name, String::from_utf8_lossy(value).into_owned());
            raw = &raw[nl + 10 + len..];
        }
    }
    out
}

#[test]
fn the_journal_stream_is_recognised_only_when_it_is_stderr() {
    assert!(is_journal_stream(Some("8:1234"), Some((8, 1234))));
    assert!(!is_journal_stream(Some("8:1234"), Some((8, 1235))));
    assert!(!is_journal_stream(Some("8:1234"), None));
    assert!(!is_journal_stream(None, Some((8, 1234))));
    assert!(!is_journal_stream(Some("garbage"), Some((8, 1234))));
    assert!(!is_journal_stream(Some("8:x"), Some((8, 1234))));
}

#[test]
fn field_names_are_what_journald_accepts() {
    assert_eq!(journald::field_name("deployment_id"), "DEPLOYMENT_ID");
    assert_eq!(
        journald::field_name("_hostname"),
        "HOSTNAME",
        "no trusted field"
    );
    assert_eq!(journald::field_name("1st"), "F_1ST");
    assert_eq!(journald::field_name("a.b-c"), "A_B_C");
    assert_eq!(journald::field_name("___"), "F_");
    assert_eq!(journald::field_name(&"x".repeat(100)).len(), 64);
}

#[test]
fn events_reach_the_journal_with_their_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("socket");
    let server = UnixDatagram::bind(&path).expect("bind");
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let layer = journald::Journald::connect(&path, "mender-bridge").expect("connect");
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(deployment = "d-1", bytes = 42u64, "two\nlines");
        tracing::info!(big = %"y".repeat(100_000), "bounded");
    });
    let mut buf = vec![0u8; 256 * 1024];
    let n = server.recv(&mut buf).expect("a record");
    let f = parse(&buf[..n]);
    assert_eq!(f["MESSAGE"], "two\nlines deployment=d-1 bytes=42");
    assert_eq!(f["PRIORITY"], "4");
    assert_eq!(f["SYSLOG_IDENTIFIER"], "mender-bridge");
    assert_eq!(f["DEPLOYMENT"], "d-1");
    assert_eq!(f["BYTES"], "42");
    assert!(f["TARGET"].starts_with("mender_bridge"), "{f:?}");
    assert!(f.contains_key("CODE_LINE"));
    let n = server.recv(&mut buf).expect("the second record");
    assert!(n <= journald::MAX_DATAGRAM + fields::MAX_VALUE, "{n}");
    let f = parse(&buf[..n]);
    assert_eq!(f["PRIORITY"], "6");
    assert!(f["MESSAGE"].ends_with("…(cut)"), "a value is bounded");
}

#[test]
fn json_lines_carry_time_level_target_message_and_fields() {
    let now = UNIX_EPOCH + Duration::from_millis(1_796_600_000_123);
    assert_eq!(json::timestamp(now), "2026-12-06T23:33:20.123Z");
    let (tx, rx) = std::sync::mpsc::channel();
    struct Capture(std::sync::mpsc::Sender<String>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let _ = self
                .0
                .send(json::line(e, UNIX_EPOCH + Duration::from_secs(1)));
        }
    }
    let subscriber = tracing_subscriber::registry().with(Capture(tx));
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(status = "failure", level = "spoof", "install failed");
    });
    let v: serde_json::Value = serde_json::from_str(&rx.recv().expect("a line")).expect("JSON");
    assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000Z");
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["message"], "install failed");
    assert_eq!(v["status"], "failure");
    assert_eq!(
        v["field.level"], "spoof",
        "a field cannot overwrite the level"
    );
    assert!(v["target"]
        .as_str()
        .unwrap_or_default()
        .starts_with("mender_bridge"));
}
