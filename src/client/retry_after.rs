//! Server pushback: the `Retry-After` header of a 429 (Too Many Requests) or 503 (Service
//! Unavailable) answer, as the wait before the next try of the same call.
//!
//! What the official clients do: the Go client 3.4 ignores `Retry-After` altogether (no
//! mention in `client/` or `app/`; every failed call waits by
//! `client.GetExponentialBackoffTime`, `client/client.go`). The C++ client 5.1
//! (`src/mender-update/daemon/states.cpp`, `HandlePollingError`, with
//! `http::GetRemainingTime` in `src/common/http/http.cpp`) reads it on a 429 only, for the
//! inventory and the deployment poll, as seconds or an IMF-fixdate, **instead of** its
//! backoff and without a cap.
//!
//! Here, where we match and differ:
//! - like 5.1, the value replaces the backoff wait (it is not added to it), and takes
//!   seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`; the obsolete RFC 850 and
//!   asctime forms are garbage here, as in 5.1);
//! - unlike 5.1, on 503 too (RFC 9110 §10.2.3 defines it for both), and for every call:
//!   authentication, inventory, update check, status reports, the log upload and the
//!   download's resumes;
//! - unlike 5.1, capped at [`MAX_RETRY_AFTER`] and floored at [`MIN_RETRY_AFTER`]; the
//!   daemon's periodic jobs also never wait longer than their own interval (a success
//!   would not have waited longer either).
//!
//! Invariant: [`retry_after`] returns `None` or a wait within
//! `MIN_RETRY_AFTER..=MAX_RETRY_AFTER`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, StatusCode};
use mender_api::rfc3339::{days_from_civil, days_in_month};

/// The longest wait a server can ask for: 30 minutes, the default
/// `UpdatePollIntervalSeconds`. A longer value is more likely a mistake (or a date far in
/// the future) than a plan, and would park the device beyond one regular poll period.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30 * 60);

/// The shortest wait: `Retry-After: 0` (or a date in the past) never makes a tight loop.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The wait a 429 or 503 answer asks for, clamped to
/// `MIN_RETRY_AFTER..=MAX_RETRY_AFTER`; `None` for other statuses, without the header, or
/// when its value is garbage (the caller's own backoff applies).
pub fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    let wait = parse(value, SystemTime::now())?;
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

/// Parses a `Retry-After` value, unclamped: delay-seconds (digits only) or an IMF-fixdate
/// (a date in the past is zero). `None` for anything else.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64: as long as anyone could ask (clamped by the caller).
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_imf_fixdate(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110 §5.6.7; the weekday name is checked for form, not against the date).
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split(' ').collect();
    let [wday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !DAYS.contains(wday) {
        return None;
    }
    let num = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let day = num(day, 2)?;
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let year = num(year, 4)?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    let (h, m, s) = (num(h, 2)?, num(m, 2)?, num(s, 2)?);
    let (y, mo, d) = (year as i64, month as i64, day as i64);
    if year < 1970 || day == 0 || d > days_in_month(y, mo) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo, d)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn seconds_and_dates() {
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(
            parse("Tue, 29 Feb 2028 00:00:01 GMT", at(0)),
            Some(Duration::from_secs(1_835_395_201))
        );
        assert_eq!(
            parse("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn garbage_is_none() {
        let now = at(1_000_000_000);
        for v in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 2021 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(v, now), None, "{v:?}");
        }
    }

    #[test]
    fn only_429_and_503_and_clamped() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(Duration::from_secs(5))
        );
        assert_eq!(retry_after(StatusCode::INTERNAL_SERVER_ERROR, &h), None);
        h.insert(header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(MAX_RETRY_AFTER)
        );
        h.insert(header::RETRY_AFTER, "0".parse().unwrap());
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(MIN_RETRY_AFTER)
        );
        h.insert(header::RETRY_AFTER, "later".parse().unwrap());
        assert_eq!(retry_after(StatusCode::TOO_MANY_REQUESTS, &h), None);
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()),
            None
        );
    }
}
