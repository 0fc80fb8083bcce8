//! Identifiers, secrets and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::SimError;

/// Random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N], SimError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| SimError::Random(e.to_string()))?;
    Ok(b)
}

/// A random UUID (version 4) string, the form the real server uses for ids.
pub fn uuid() -> String {
    // The OS generator does not fail on Linux once booted; fall back to the clock rather
    // than failing a request.
    let mut b: [u8; 16] = random().unwrap_or_else(|_| {
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        n.to_le_bytes()
    });
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current time as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    mender_api::rfc3339::format_utc(now())
}
