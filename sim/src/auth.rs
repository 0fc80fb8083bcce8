//! Verifying `X-MEN-Signature` as the current server does: the rules live in
//! [`mender_api::signature`], shared with the device's own check (`mender-bridge doctor`
//! verifies its signed auth request with them before sending it).

pub use mender_api::signature::{DevicePublicKey, KeyError, SignatureError};
