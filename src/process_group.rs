//! Child processes in a process group of their own, killed whole on timeout: the
//! implementation lives in [`mender_bridge_backends::process_group`] (Update Modules need
//! it too); re-exported here for the identity and state scripts.

pub(crate) use mender_bridge_backends::process_group::spawn;
