//! Live progress as Mender substate text (`downloading 42% 126/300 MiB`, or the installer's
//! own message), throttled so the server sees at most one update every `min_interval`
//! unless the percentage moved by `min_step` or more.

use std::time::{Duration, Instant};

pub use mender_api::status::MAX_SUBSTATE_LEN as MAX_SUBSTATE;

/// `downloading 42% 126/300 MiB` style text; bytes in MiB with no decimals above 10 MiB.
pub fn substate(verb: &str, done: u64, total: Option<u64>, message: Option<&str>) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = |b: u64| {
        let m = b as f64 / MIB;
        if m >= 10.0 {
            format!("{m:.0}")
        } else {
            format!("{m:.1}")
        }
    };
    let mut s = match total.filter(|t| *t > 0) {
        Some(t) => format!(
            "{verb} {}% {}/{} MiB",
            (done.min(t) * 100 / t),
            mib(done),
            mib(t)
        ),
        None => format!("{verb} {} MiB", mib(done)),
    };
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        s.push(' ');
        s.push_str(m);
    }
    crate::client::truncate_substate(&s).to_string()
}

/// Decides which progress updates are worth a status report.
#[derive(Debug)]
pub struct Throttle {
    min_interval: Duration,
    min_step: u8,
    last: Option<(Instant, u8)>,
}

impl Throttle {
    pub fn new(min_interval: Duration, min_step: u8) -> Self {
        Throttle {
            min_interval,
            min_step,
            last: None,
        }
    }

    /// True when an update at `percent` (now) should be sent; records it if so. The first
    /// update and 100 % are always sent.
    pub fn should_send(&mut self, percent: u8, now: Instant) -> bool {
        let send = match self.last {
            None => true,
            Some((_, p)) if percent == 100 && p != 100 => true,
            Some((t, p)) => {
                now.duration_since(t) >= self.min_interval
                    || percent.saturating_sub(p) >= self.min_step
            }
        };
        if send {
            self.last = Some((now, percent));
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substate_text() {
        assert_eq!(
            substate("downloading", 126 << 20, Some(300 << 20), None),
            "downloading 42% 126/300 MiB"
        );
        assert_eq!(
            substate(
                "installing",
                1 << 19,
                Some(2 << 20),
                Some("Copying image to rootfs.1")
            ),
            "installing 25% 0.5/2.0 MiB Copying image to rootfs.1"
        );
        assert_eq!(
            substate("downloading", 3 << 20, None, None),
            "downloading 3.0 MiB"
        );
        let long = substate("installing", 1, Some(2), Some(&"é".repeat(300)));
        assert_eq!(long.chars().count(), MAX_SUBSTATE);
    }

    #[test]
    fn throttle_by_time_or_step() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(5), 10);
        assert!(t.should_send(0, t0));
        assert!(!t.should_send(5, t0 + Duration::from_secs(1)));
        assert!(t.should_send(10, t0 + Duration::from_secs(2)), "10 % step");
        assert!(!t.should_send(12, t0 + Duration::from_secs(3)));
        assert!(t.should_send(13, t0 + Duration::from_secs(8)), "5 s passed");
        assert!(
            t.should_send(100, t0 + Duration::from_secs(8)),
            "completion"
        );
        assert!(!t.should_send(100, t0 + Duration::from_secs(9)));
    }
}
