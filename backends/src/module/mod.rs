//! Update Modules, protocol v3: any payload type no built-in backend handles goes to the
//! executable `<modules_dir>/<type>`, called as the official client calls it. `config`
//! (where modules and their tree live, the bounds), `tree` (the file tree the module works
//! in), `run` (one state in its own process group, output bounded, answers parsed),
//! `streams` (the `Download` state's FIFOs or `files/`), `answers` (the module's answers,
//! kept across restarts), `backend` ([`ModuleBackend`]). [`crate::Installers`] picks it
//! for a payload type no built-in backend takes.
//!
//! Invariants: nothing but verified header data and payload bytes reaches a module before
//! `finish`; `ArtifactInstall` runs only in `finish`, after `Download` succeeded; every
//! state and every FIFO wait is bounded, and a module over its time is killed with its
//! whole process group.
//!
//! NOT YET: augmented artifacts (`SupportsAugmentedArtifacts` and friends); payload
//! indices other than `0000` (the artifact format allows one payload).

mod answers;
mod backend;
mod config;
mod run;
mod streams;
mod tree;

pub use backend::ModuleBackend;
pub use config::{ModuleConfig, DEFAULT_MODULES_DIR, DEFAULT_MODULE_TIMEOUT};
pub use run::RebootAnswer;
pub use tree::{CurrentProvides, ModuleHeader};

/// `name` as an Update Module's file name: one plain path component, or an error.
pub fn check_module_name(name: &str) -> Result<&str, crate::BackendError> {
    tree::check_name(name)
}
