//! The deviceconnect frame: one msgpack-encoded `ProtoMsg` per binary WebSocket message,
//! as `mendersoftware/go-lib-micro` `ws/protomsg.go` declares it and mender-connect 2.1
//! encodes it (vmihailenco/msgpack v5.3.5: structs as maps of their non-empty fields, in
//! declaration order; `proto` a `uint16` written as `0xcd hi lo`; `[]byte` as bin; the
//! `int` values of `props` in the smallest form):
//!
//! `{"hdr": {"proto": u16, "typ"?: str, "sid"?: str, "props"?: map}, "body"?: bin}`
//!
//! Decoding takes any msgpack integer width, `nil` for the optional fields, and a body
//! given as bin or str; it refuses anything else and never reads past a size cap set by
//! the WebSocket layer (see `socket.rs`).

use std::collections::BTreeMap;

use rmpv::Value;

/// Protocol numbers (`ws.ProtoType`).
pub const PROTO_SHELL: u16 = 1;
pub const PROTO_FILE_TRANSFER: u16 = 2;
pub const PROTO_PORT_FORWARD: u16 = 3;
pub const PROTO_MENDER_CLIENT: u16 = 4;
pub const PROTO_CONTROL: u16 = 0xFFFF;

/// Shell message types (`ws/shell/model.go`).
pub mod shell {
    pub const NEW: &str = "new";
    pub const SHELL: &str = "shell";
    pub const STOP: &str = "stop";
    pub const RESIZE: &str = "resize";
    pub const PING: &str = "ping";
    pub const PONG: &str = "pong";
    /// `props["status"]` values (`MenderShellMessageStatus`).
    pub const STATUS_NORMAL: i64 = 1;
    pub const STATUS_ERROR: i64 = 2;
    pub const STATUS_CONTROL: i64 = 3;
}

/// Control message types (`ws/protomsg.go`, proto 0xFFFF).
pub mod control {
    pub const PING: &str = "ping";
    pub const PONG: &str = "pong";
    pub const OPEN: &str = "open";
    pub const ACCEPT: &str = "accept";
    pub const CLOSE: &str = "close";
    pub const ERROR: &str = "error";
}

/// Deepest nesting decoded (props values are scalars in practice).
const MAX_DEPTH: usize = 16;

/// One property value; what mender-connect sends and reads (ints and strings), the rest
/// kept as a generic msgpack value.
pub type Prop = Value;

/// `ws.ProtoHdr`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProtoHdr {
    pub proto: u16,
    pub typ: String,
    pub sid: String,
    pub props: BTreeMap<String, Prop>,
}

/// `ws.ProtoMsg`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProtoMsg {
    pub hdr: ProtoHdr,
    pub body: Vec<u8>,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not msgpack: {0}")]
    Msgpack(String),
    #[error("{0} bytes after the message")]
    Trailing(usize),
    #[error("{0}")]
    Shape(&'static str),
}

impl ProtoMsg {
    /// A message of `proto`/`typ` on session `sid`.
    pub fn new(proto: u16, typ: &str, sid: &str) -> Self {
        ProtoMsg {
            hdr: ProtoHdr {
                proto,
                typ: typ.to_string(),
                sid: sid.to_string(),
                props: BTreeMap::new(),
            },
            body: Vec::new(),
        }
    }

    pub fn with_prop(mut self, key: &str, value: impl Into<Prop>) -> Self {
        self.hdr.props.insert(key.to_string(), value.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// An integer property (any msgpack width), as mender-connect's `utils.Num64` reads one.
    pub fn int_prop(&self, key: &str) -> Option<i64> {
        self.hdr.props.get(key).and_then(Value::as_i64)
    }

    /// A string property.
    pub fn str_prop(&self, key: &str) -> Option<&str> {
        self.hdr.props.get(key).and_then(Value::as_str)
    }

    /// The Go encoding: empty fields left out, fields in declaration order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.body.len());
        let h = &self.hdr;
        let n_hdr = 1
            + usize::from(!h.typ.is_empty())
            + usize::from(!h.sid.is_empty())
            + usize::from(!h.props.is_empty());
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_map_len(&mut out, 1 + u32::from(!self.body.is_empty()));
        let _ = rmp::encode::write_str(&mut out, "hdr");
        let _ = rmp::encode::write_map_len(&mut out, n_hdr as u32);
        let _ = rmp::encode::write_str(&mut out, "proto");
        let _ = rmp::encode::write_u16(&mut out, h.proto);
        if !h.typ.is_empty() {
            let _ = rmp::encode::write_str(&mut out, "typ");
            let _ = rmp::encode::write_str(&mut out, &h.typ);
        }
        if !h.sid.is_empty() {
            let _ = rmp::encode::write_str(&mut out, "sid");
            let _ = rmp::encode::write_str(&mut out, &h.sid);
        }
        if !h.props.is_empty() {
            let _ = rmp::encode::write_str(&mut out, "props");
            let _ = rmp::encode::write_map_len(&mut out, h.props.len() as u32);
            for (k, v) in &h.props {
                let _ = rmp::encode::write_str(&mut out, k);
                let _ = rmpv::encode::write_value(&mut out, v);
            }
        }
        if !self.body.is_empty() {
            let _ = rmp::encode::write_str(&mut out, "body");
            let _ = rmp::encode::write_bin(&mut out, &self.body);
        }
        out
    }

    /// Decodes one whole frame.
    pub fn decode(mut raw: &[u8]) -> Result<Self, DecodeError> {
        let value = rmpv::decode::read_value_with_max_depth(&mut raw, MAX_DEPTH)
            .map_err(|e| DecodeError::Msgpack(e.to_string()))?;
        if !raw.is_empty() {
            return Err(DecodeError::Trailing(raw.len()));
        }
        let top = as_map(value, "the message is not a map")?;
        let mut msg = ProtoMsg::default();
        let mut have_hdr = false;
        for (k, v) in top {
            match k.as_str() {
                Some("hdr") => {
                    msg.hdr = decode_hdr(v)?;
                    have_hdr = true;
                }
                Some("body") => msg.body = bytes(v, "body is not bin or str")?,
                _ => {}
            }
        }
        if !have_hdr {
            return Err(DecodeError::Shape("no hdr"));
        }
        Ok(msg)
    }
}

fn as_map(v: Value, what: &'static str) -> Result<Vec<(Value, Value)>, DecodeError> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(DecodeError::Shape(what)),
    }
}

fn decode_hdr(v: Value) -> Result<ProtoHdr, DecodeError> {
    let mut hdr = ProtoHdr::default();
    let mut have_proto = false;
    for (k, v) in as_map(v, "hdr is not a map")? {
        match k.as_str() {
            Some("proto") => {
                hdr.proto = v
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(DecodeError::Shape("proto is not a uint16"))?;
                have_proto = true;
            }
            Some("typ") => hdr.typ = string(v, "typ is not a string")?,
            Some("sid") => hdr.sid = string(v, "sid is not a string")?,
            Some("props") if !v.is_nil() => {
                for (pk, pv) in as_map(v, "props is not a map")? {
                    let Value::String(pk) = pk else {
                        return Err(DecodeError::Shape("a props key is not a string"));
                    };
                    let pk = pk
                        .into_str()
                        .ok_or(DecodeError::Shape("a props key is not UTF-8"))?;
                    hdr.props.insert(pk, pv);
                }
            }
            _ => {}
        }
    }
    if !have_proto {
        return Err(DecodeError::Shape("hdr has no proto"));
    }
    Ok(hdr)
}

fn string(v: Value, what: &'static str) -> Result<String, DecodeError> {
    match v {
        Value::Nil => Ok(String::new()),
        Value::String(s) => s.into_str().ok_or(DecodeError::Shape(what)),
        _ => Err(DecodeError::Shape(what)),
    }
}

fn bytes(v: Value, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Binary(b) => Ok(b),
        Value::String(s) => Ok(s.into_bytes()),
        _ => Err(DecodeError::Shape(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The byte strings below are what Go writes: `msgpack.Marshal(&ws.ProtoMsg{...})` with
    // the go-lib-micro `ws` package and vmihailenco/msgpack v5.3.5 vendored in
    // mender-connect 2.1.2 (`go run` of a 20-line program against its `vendor/`, go 1.19).

    /// What mender-connect 2.1 (`app/daemon_shell.go` `routeMessageSpawnShell`) sends after
    /// starting a shell: `ProtoMsg{Header: ProtoHdr{Proto: 1, MsgType: "new", SessionID:
    /// "s1", Properties: {"status": wsshell.NormalMessage}}, Body: []byte("Shell started")}`
    /// (Go: `82a368647284a570726f746fcd0001…c40d5368656c6c2073746172746564`).
    const SPAWN_REPLY: &[u8] = b"\x82\
        \xa3hdr\x84\
            \xa5proto\xcd\x00\x01\
            \xa3typ\xa3new\
            \xa3sid\xa2s1\
            \xa5props\x81\xa6status\x01\
        \xa4body\xc4\x0dShell started";

    #[test]
    fn decodes_the_go_encoding() {
        let m = ProtoMsg::decode(SPAWN_REPLY).unwrap();
        assert_eq!(m.hdr.proto, PROTO_SHELL);
        assert_eq!(m.hdr.typ, "new");
        assert_eq!(m.hdr.sid, "s1");
        assert_eq!(m.int_prop("status"), Some(shell::STATUS_NORMAL));
        assert_eq!(m.body, b"Shell started");
    }

    #[test]
    fn encodes_as_go_does() {
        let m = ProtoMsg::new(PROTO_SHELL, shell::NEW, "s1")
            .with_prop("status", shell::STATUS_NORMAL)
            .with_body(&b"Shell started"[..]);
        assert_eq!(m.encode(), SPAWN_REPLY);
    }

    /// `session/shell.go` `healthcheckPing` with one property (Go's map order is random):
    /// `ProtoMsg{Header: ProtoHdr{Proto: 1, MsgType: "ping", SessionID: "ab",
    /// Properties: {"timeout": int(65)}}, Body: nil}`.
    const GO_PING: &str = "81a368647284a570726f746fcd0001a3747970a470696e67a3736964a26162a570726f707381a774696d656f757441";
    /// `ProtoMsg{Header: ProtoHdr{Proto: ws.ProtoTypeControl}}`.
    const GO_CONTROL: &str = "81a368647281a570726f746fcdffff";

    #[test]
    fn matches_go_byte_for_byte() {
        let ping = ProtoMsg::new(PROTO_SHELL, shell::PING, "ab").with_prop("timeout", 65);
        assert_eq!(hex::encode(ping.encode()), GO_PING);
        assert_eq!(
            ProtoMsg::decode(&hex::decode(GO_PING).unwrap()).unwrap(),
            ping
        );
        let control = ProtoMsg::new(PROTO_CONTROL, "", "");
        assert_eq!(hex::encode(control.encode()), GO_CONTROL);
        assert_eq!(
            ProtoMsg::decode(&hex::decode(GO_CONTROL).unwrap()).unwrap(),
            control
        );
    }

    #[test]
    fn empty_fields_are_left_out() {
        // The healthcheck ping of `session/shell.go` has Body nil: no "body" key.
        let m = ProtoMsg::new(PROTO_SHELL, shell::PING, "ab")
            .with_prop("status", shell::STATUS_CONTROL)
            .with_prop("timeout", 65);
        let raw = m.encode();
        assert_eq!(
            raw,
            b"\x81\xa3hdr\x84\xa5proto\xcd\x00\x01\xa3typ\xa4ping\xa3sid\xa2ab\
              \xa5props\x82\xa6status\x03\xa7timeout\x41"
        );
        assert_eq!(ProtoMsg::decode(&raw).unwrap(), m);
        // proto only.
        assert_eq!(
            ProtoMsg::new(PROTO_CONTROL, "", "").encode(),
            b"\x81\xa3hdr\x81\xa5proto\xcd\xff\xff"
        );
    }

    #[test]
    fn decoding_is_lenient_about_widths_and_nil() {
        // proto as a positive fixint, props as nil, body as str, an unknown key.
        let raw = b"\x83\xa3hdr\x83\xa5proto\x01\xa3sid\xa1x\xa5props\xc0\
                    \xa4body\xa2hi\xa1z\x00";
        let m = ProtoMsg::decode(raw).unwrap();
        assert_eq!((m.hdr.proto, m.hdr.sid.as_str()), (1, "x"));
        assert!(m.hdr.props.is_empty());
        assert_eq!(m.body, b"hi");
        // int64-encoded property (what `EncodeInt64` would write).
        let raw = b"\x81\xa3hdr\x82\xa5proto\xcd\x00\x01\xa5props\x81\xa1w\xd3\0\0\0\0\0\0\0\x50";
        assert_eq!(ProtoMsg::decode(raw).unwrap().int_prop("w"), Some(80));
    }

    #[test]
    fn refuses_malformed_frames() {
        assert!(matches!(
            ProtoMsg::decode(b""),
            Err(DecodeError::Msgpack(_))
        ));
        assert!(matches!(
            ProtoMsg::decode(b"\x01"),
            Err(DecodeError::Shape(_))
        ));
        assert_eq!(ProtoMsg::decode(b"\x80"), Err(DecodeError::Shape("no hdr")));
        assert_eq!(
            ProtoMsg::decode(b"\x81\xa3hdr\x80"),
            Err(DecodeError::Shape("hdr has no proto"))
        );
        assert_eq!(
            ProtoMsg::decode(b"\x81\xa3hdr\x81\xa5proto\xce\x00\x01\x00\x00"),
            Err(DecodeError::Shape("proto is not a uint16"))
        );
        let mut trailing = SPAWN_REPLY.to_vec();
        trailing.push(0);
        assert_eq!(ProtoMsg::decode(&trailing), Err(DecodeError::Trailing(1)));
        // A declared 4 GiB array in a 6-byte frame is an error, not an allocation.
        assert!(ProtoMsg::decode(b"\xdd\xff\xff\xff\xff\x00").is_err());
    }
}
