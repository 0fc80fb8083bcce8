//! deviceconnect, enough for a remote terminal: the device route
//! `GET /api/devices/v1/deviceconnect/connect` (a WebSocket after the device's JWT is
//! checked; `upgrade.rs`), the frame codec (`protomsg.rs`: msgpack `ProtoMsg` as
//! mendersoftware/go-lib-micro `ws/` defines it), the link task (`socket.rs`), the table
//! of links and sessions (`registry.rs`, one link per device, a new one replaces the old),
//! one session's state and bounded output (`session.rs`), and the management calls under
//! `/api/sim/devices/{id}/shell` (`manage.rs`). PROTOCOL.md §6a.

pub mod manage;
pub mod protomsg;
pub mod registry;
pub mod session;
pub mod socket;
pub mod upgrade;

pub use registry::Registry;
pub use upgrade::CONNECT_PATH;
