//! The deployment engine: the flow from an update check to a final status (`engine`), the
//! state it saves before each risky step (`store`), the reports (`report`), live progress
//! (`progress`) and Mender's state scripts (`scripts`).

pub mod daemon;
pub mod engine;
pub mod lock;
pub mod notify;
pub mod pidfile;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod scripts;
pub mod standalone;
pub mod store;
pub mod stream;
