//! The deployment engine and nothing else: the flow from an update check to a final
//! status (`engine`), the install sequence every way of installing goes through
//! (`pipeline`, over the payload loop `stream`), the standalone install without a server
//! (`standalone`), the state saved before each risky step (`store`; the official client's
//! store is read once, by `lmdb`, when a device moves to the bridge), the reports
//! (`report`), live progress (`progress`), Mender's state scripts (`scripts`) and the
//! one-installer-at-a-time lock (`lock`). The parts come ready-made from
//! [`crate::setup`]; nothing here reads the configuration.
//!
//! Invariant: nothing here knows of the daemon that drives the engine
//! ([`crate::daemon`]); the layering runs daemon → deploy → backends.

pub mod engine;
pub mod lmdb;
pub mod lock;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod scripts;
pub mod standalone;
pub mod store;
pub mod stream;
