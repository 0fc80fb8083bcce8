//! The deployment engine: persisted state, and (with issue 4) the flow from an update check
//! to a final status.

pub mod backend;
pub mod engine;
pub mod progress;
pub mod report;
pub mod scripts;
pub mod setup;
pub mod store;
