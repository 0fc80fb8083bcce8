//! What a run's numbers say: the steady-state mean, the peak 10-second rate after the
//! event over that mean, the time until the fleet is back to steady state, how late the
//! devices check after the event; and the CSV of the request rates.

use std::io::Write;
use std::path::Path;

use crate::server::Kind;
use crate::sim::Run;

/// The window of the peak rate, in seconds.
pub const WINDOW: usize = 10;
/// "Back to steady state": the rate over [`STEADY_WINDOW`] seconds stays at or under this
/// many times the mean.
pub const STEADY_FACTOR: f64 = 1.5;
/// The window of the steady-state test: a minute, long enough that chance alone does not
/// cross [`STEADY_FACTOR`] (10,000 devices: 333 requests a minute, 1.5 × is 9 standard
/// deviations), short enough to see a wave.
pub const STEADY_WINDOW: usize = 60;

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Requests per second over the hour before the event.
    pub mean: f64,
    /// The peak 10-second rate from the event's end over two update intervals, per second.
    pub peak_after: f64,
    /// The peak 10-second rate from the event's start to its end (the event itself).
    pub peak_during: f64,
    /// Seconds from the event's end until the one-minute rate stays within
    /// [`STEADY_FACTOR`] × the mean for the rest of the run.
    pub recovery: u64,
    /// Requests per second by kind over the two update intervals after the event's end.
    pub by_kind_after: [f64; 5],
    /// Devices that checked (or saw the deployment) after the event; of all devices.
    pub checked: usize,
    pub devices: usize,
    /// Seconds from the event's end until a device's first successful check: the 99th
    /// percentile and the largest.
    pub check_p99: u64,
    pub check_max: u64,
}

fn totals(run: &Run) -> Vec<u32> {
    run.per_second.iter().map(|b| b.iter().sum()).collect()
}

/// The rate of each `width`-second window starting at each second.
fn windows(total: &[u32], width: usize) -> Vec<f64> {
    total
        .windows(width)
        .map(|w| w.iter().map(|&n| f64::from(n)).sum::<f64>() / width as f64)
        .collect()
}

pub fn summarize(run: &Run) -> Summary {
    let s = &run.setup;
    let event = s.event_at.as_secs() as usize;
    let end = event + s.scenario.duration().as_secs() as usize;
    let interval = s.settings.update_interval.as_secs() as usize;
    let total = totals(run);
    let before = &total[event.saturating_sub(3600)..event];
    let mean = before.iter().map(|&n| f64::from(n)).sum::<f64>() / before.len().max(1) as f64;
    let rates = windows(&total, WINDOW);
    let minutes = windows(&total, STEADY_WINDOW);
    let peak = |from: usize, to: usize| {
        rates
            .get(from..to.min(rates.len()))
            .map(|r| r.iter().cloned().fold(0.0, f64::max))
            .unwrap_or(0.0)
    };
    let after_to = end + 2 * interval;
    let last_high = minutes
        .iter()
        .enumerate()
        .skip(end)
        .rev()
        .find(|(_, &r)| r > STEADY_FACTOR * mean)
        .map(|(i, _)| i + STEADY_WINDOW);
    let mut by_kind_after = [0.0; 5];
    let span = &run.per_second[end.min(run.per_second.len())..after_to.min(run.per_second.len())];
    for bin in span {
        for k in Kind::ALL {
            by_kind_after[k.index()] += f64::from(bin[k.index()]);
        }
    }
    for v in &mut by_kind_after {
        *v /= span.len().max(1) as f64;
    }
    let end_ms = end as u64 * 1000;
    let mut late: Vec<u64> = run
        .first_check_after
        .iter()
        .flatten()
        .map(|&t| t.saturating_sub(end_ms) / 1000)
        .collect();
    late.sort_unstable();
    let pick = |q: f64| {
        late.get(((late.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    Summary {
        mean,
        peak_after: peak(end, after_to),
        peak_during: peak(event, end.max(event + 1)),
        recovery: last_high.map_or(0, |i| i.saturating_sub(end) as u64),
        by_kind_after,
        checked: late.len(),
        devices: s.devices,
        check_p99: pick(0.99),
        check_max: late.last().copied().unwrap_or(0),
    }
}

/// `time_s,auth,inventory,next,status,download,total` per 10-second window (per-second
/// rates), the whole run.
pub fn write_csv(run: &Run, path: &Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    writeln!(out, "time_s,{},total", names.join(","))?;
    for (i, chunk) in run.per_second.chunks(WINDOW).enumerate() {
        let mut sums = [0u32; 5];
        for bin in chunk {
            for k in 0..5 {
                sums[k] += bin[k];
            }
        }
        let rate = |n: u32| f64::from(n) / chunk.len() as f64;
        let cols: Vec<String> = sums.iter().map(|&n| format!("{:.1}", rate(n))).collect();
        let total: u32 = sums.iter().sum();
        writeln!(out, "{},{},{:.1}", i * WINDOW, cols.join(","), rate(total))?;
    }
    out.flush()
}
