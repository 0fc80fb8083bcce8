//! Injected faults (in memory only): cut download connections at byte offsets, corrupt
//! bytes of downloads, throttle downloads, answer 429 or 5xx (optionally with `Retry-After`)
//! for the next N calls of a route.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The device-side routes a failure can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Auth,
    Inventory,
    Next,
    Status,
    Log,
    Download,
}

/// "Answer `status` to the next `count` calls", with a `Retry-After: <retry_after>` header
/// when given (delay-seconds or an HTTP-date, sent as given).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailSpec {
    pub count: u32,
    #[serde(default = "default_fail_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
}

/// One injected failure: the status to answer and the `Retry-After` value to send, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub retry_after: Option<String>,
}

fn default_fail_status() -> u16 {
    500
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Absolute artifact byte offsets: a download that would send the byte at one of them
    /// sends everything before it and then drops the connection. Each is used once.
    pub cut_offsets: Vec<u64>,
    /// Absolute artifact byte offsets sent with their low bit flipped, in every download
    /// (a storage fault the device must catch by the payload hash).
    #[serde(default)]
    pub corrupt_offsets: Vec<u64>,
    /// Download rate limit in bytes per second.
    pub throttle_bytes_per_sec: Option<u64>,
    pub fail: BTreeMap<Route, FailSpec>,
}

impl Faults {
    /// Consumes one injected failure of `route`.
    pub fn take_failure(&mut self, route: Route) -> Option<Failure> {
        let spec = self.fail.get_mut(&route)?;
        if spec.count == 0 {
            self.fail.remove(&route);
            return None;
        }
        spec.count -= 1;
        let failure = Failure {
            status: spec.status,
            retry_after: spec.retry_after.clone(),
        };
        if spec.count == 0 {
            self.fail.remove(&route);
        }
        Some(failure)
    }

    /// Takes the first cut offset in `start..end`, if any.
    pub fn take_cut(&mut self, start: u64, end: u64) -> Option<u64> {
        let i = self
            .cut_offsets
            .iter()
            .enumerate()
            .filter(|(_, &o)| o >= start && o < end)
            .min_by_key(|(_, &o)| o)
            .map(|(i, _)| i)?;
        Some(self.cut_offsets.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_used_once() {
        let mut f = Faults {
            cut_offsets: vec![500, 100],
            ..Default::default()
        };
        assert_eq!(f.take_cut(0, 1000), Some(100));
        assert_eq!(f.take_cut(100, 1000), Some(500));
        assert_eq!(f.take_cut(0, 1000), None);
        f.fail.insert(
            Route::Next,
            FailSpec {
                count: 2,
                status: 503,
                retry_after: Some("3".into()),
            },
        );
        let want = Failure {
            status: 503,
            retry_after: Some("3".into()),
        };
        assert_eq!(f.take_failure(Route::Next), Some(want.clone()));
        assert_eq!(f.take_failure(Route::Auth), None);
        assert_eq!(f.take_failure(Route::Next), Some(want));
        assert_eq!(f.take_failure(Route::Next), None);
    }
}
