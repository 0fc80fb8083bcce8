//! The clock: TLS certificates are valid from a date, so a device whose clock is behind
//! (no RTC, no NTP yet) cannot validate any server. The time must not be before this
//! binary was built ([`build_time`]), nor before [`FLOOR`] in any case; more than
//! [`MAX_AHEAD_SECS`] after the build is suspicious too (a warning).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mender_api::rfc3339::format_utc;

use super::Check;

const NAME: &str = "clock";

/// 2024-01-01T00:00:00Z: no clock that is right says an earlier time.
pub const FLOOR: u64 = 1_704_067_200;

/// A clock this far past the build (30 years) is more likely wrong than the binary old.
pub const MAX_AHEAD_SECS: u64 = 30 * 365 * 24 * 3600;

/// When this binary was built (`build.rs`: `SOURCE_DATE_EPOCH` or the build machine's
/// clock).
pub fn build_time() -> SystemTime {
    let secs = env!("BRIDGE_DOCTOR_BUILD_EPOCH")
        .parse::<u64>()
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Judges `now` against the build time `built`.
pub fn check(now: SystemTime, built: SystemTime) -> Check {
    let now_s = secs(now);
    let floor = secs(built).max(FLOOR);
    let shown = format_utc(now_s);
    if now_s < floor {
        return Check::fail(
            NAME,
            format!(
                "system time {shown} is before {} (this binary's build, or 2024): TLS \
                 certificates will not validate",
                format_utc(floor)
            ),
            "set the clock (NTP: systemd-timesyncd or chrony; an RTC battery)",
        );
    }
    if now_s > floor.saturating_add(MAX_AHEAD_SECS) {
        return Check::warn(
            NAME,
            format!("system time {shown} is decades after this binary's build"),
            "check the clock (NTP); certificates may seem expired",
        );
    }
    Check::ok(NAME, format!("system time {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_clock_before_the_build_or_2024_fails() {
        let built = at(1_750_000_000); // 2025-06-15
        let c = check(at(1_760_000_000), built);
        assert_eq!(c.status, Status::Ok, "{c}");
        let c = check(at(1_740_000_000), built);
        assert_eq!(c.status, Status::Fail, "{c}");
        assert!(c.found.contains("will not validate"), "{c}");
        assert!(c.found.contains("2025-06-15"), "{c}");
        // 1970, as a device without RTC boots: before 2024 whatever the build says.
        let c = check(at(0), at(0));
        assert_eq!(c.status, Status::Fail, "{c}");
        assert!(c.found.contains("1970-01-01"), "{c}");
        assert!(c.fix.as_deref().unwrap_or("").contains("NTP"), "{c}");
        let c = check(at(FLOOR + 1), at(0));
        assert_eq!(c.status, Status::Ok, "{c}");
    }

    #[test]
    fn a_clock_decades_ahead_warns() {
        let c = check(at(FLOOR + MAX_AHEAD_SECS + 1), at(FLOOR));
        assert_eq!(c.status, Status::Warn, "{c}");
    }

    #[test]
    fn the_build_time_is_recorded() {
        assert!(
            secs(build_time()) > FLOOR,
            "build.rs sets BRIDGE_DOCTOR_BUILD_EPOCH"
        );
    }
}
