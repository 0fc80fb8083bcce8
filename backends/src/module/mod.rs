//! Update Modules, protocol v3: any payload type no built-in backend handles goes to the
//! executable `<modules_dir>/<type>`, called as the official client calls it. `config`
//! (where modules and their tree live, the bounds), `tree` (the file tree the module works
//! in), `run` (one state in its own process group, output bounded, answers parsed),
//! `streams` (the `Download` state's FIFOs or `files/`), `backend` ([`ModuleBackend`]).
//!
//! Invariants: nothing but verified header data and payload bytes reaches a module before
//! `finish`; `ArtifactInstall` runs only in `finish`, after `Download` succeeded; every
//! state and every FIFO wait is bounded, and a module over its time is killed with its
//! whole process group.
//!
//! NOT YET: wired into `AnyBackend`, setup and the engine (the engine must call
//! [`ModuleBackend::prepare`] before `begin`, pass every file of the payload through
//! `begin`/`write`, and call [`ModuleBackend::artifact_reboot`] instead of rebooting the
//! host when [`ModuleBackend::reboot_answer`] is `Yes`); augmented artifacts; payload
//! indices other than `0000`.

mod backend;
mod config;
mod run;
mod streams;
mod tree;

pub use backend::ModuleBackend;
pub use config::{ModuleConfig, DEFAULT_MODULES_DIR, DEFAULT_MODULE_TIMEOUT};
pub use run::RebootAnswer;
pub use tree::{CurrentProvides, ModuleHeader};
