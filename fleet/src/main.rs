//! `mender-bridge-fleet`: how a fleet of mender-bridge daemons loads one server, and how
//! the official client's published schedule would (a model, labelled so), scenario by
//! scenario. Every device runs the daemon's own schedule (`mender_bridge::daemon::plan`)
//! on a virtual clock; nothing sleeps, so 10,000 devices over six hours take seconds.
//!
//! Output, per scenario: a summary line per schedule (steady mean, the peak 10-second rate
//! after the event over the mean, the time until steady again, how late devices check
//! after the event), a CSV of the rates by kind and a PNG of the rates over time.

mod plot;
mod report;
mod rng;
mod schedules;
mod server;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mender_bridge::daemon::plan::PlanSettings;
use mender_bridge::daemon::schedule::RetryPolicy;

use schedules::Which;
use server::{Kind, Scenario};

#[derive(Debug, Parser)]
#[command(about = "Simulate a fleet of mender-bridge daemons against one server")]
struct Args {
    /// Scenarios to run (default: all).
    #[arg(long, value_enum)]
    scenario: Vec<Scenario>,
    /// Schedules to compare (default: all three).
    #[arg(long, value_enum)]
    schedule: Vec<Which>,
    /// Devices in the fleet.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Seed of every random choice (the same seed, the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `UpdatePollIntervalSeconds`.
    #[arg(long, default_value_t = 1800)]
    update_interval: u64,
    /// `InventoryPollIntervalSeconds`.
    #[arg(long, default_value_t = 28800)]
    inventory_interval: u64,
    /// `RetryPollIntervalSeconds`.
    #[arg(long, default_value_t = 300)]
    retry_interval: u64,
    /// `RetryPollCount` (0: the official limit).
    #[arg(long, default_value_t = 0)]
    retry_count: u32,
    /// The devices boot uniformly over this many seconds from the start (10: a site's
    /// power comes back).
    #[arg(long, default_value_t = 3600)]
    boot_spread: u64,
    /// Where the CSV and PNG files go.
    #[arg(long, default_value = "target/fleet")]
    out: PathBuf,
    /// No PNG (no font needed).
    #[arg(long)]
    no_plot: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let scenarios = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let schedules = if args.schedule.is_empty() {
        vec![Which::Official, Which::BridgeOfficialTimings, Which::Bridge]
    } else {
        args.schedule.clone()
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("{}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    if !args.no_plot {
        if let Err(e) = plot::load_font() {
            eprintln!("no plots: {e}");
            return ExitCode::FAILURE;
        }
    }
    let settings = PlanSettings {
        update_interval: Duration::from_secs(args.update_interval),
        inventory_interval: Duration::from_secs(args.inventory_interval),
        retry: RetryPolicy {
            cap: Duration::from_secs(args.retry_interval),
            count: args.retry_count,
            official: false,
        },
        first_poll_spread: true,
    };
    println!(
        "{} devices booting over {} s; UpdatePollIntervalSeconds {}, InventoryPollIntervalSeconds {}, RetryPollIntervalSeconds {}; the event at 3 h; seed {}",
        args.devices, args.boot_spread, args.update_interval, args.inventory_interval, args.retry_interval, args.seed
    );
    println!(
        "{:<11} {:<24} {:>7} {:>10} {:>10} {:>9} {:>18} {:>30}",
        "scenario",
        "schedule",
        "mean/s",
        "peak/mean",
        "during",
        "steady+s",
        "check after p99/max",
        "after, /s: auth inv next st dl"
    );
    for scenario in scenarios {
        let mut runs = Vec::new();
        for &which in &schedules {
            let setup = sim::Setup {
                devices: args.devices,
                seed: args.seed,
                scenario,
                which,
                settings,
                boot_spread: Duration::from_secs(args.boot_spread),
                event_at: Duration::from_secs(3 * 3600),
                length: Duration::from_secs(6 * 3600),
            };
            let run = sim::run(setup);
            let sum = report::summarize(&run);
            let kinds: Vec<String> = Kind::ALL
                .iter()
                .map(|k| format!("{:.1}", sum.by_kind_after[k.index()]))
                .collect();
            println!(
                "{:<11} {:<24} {:>7.2} {:>10.2} {:>10.2} {:>9} {:>9}/{:<8} {:>30}",
                scenario.name(),
                which.name(),
                sum.mean,
                sum.peak_after / sum.mean.max(f64::MIN_POSITIVE),
                sum.peak_during / sum.mean.max(f64::MIN_POSITIVE),
                sum.recovery,
                sum.check_p99,
                sum.check_max,
                kinds.join(" ")
            );
            if sum.checked < sum.devices {
                println!(
                    "  {} of {} devices never checked after the event",
                    sum.devices - sum.checked,
                    sum.devices
                );
            }
            let csv = args
                .out
                .join(format!("{}-{}.csv", scenario.name(), which.name()));
            if let Err(e) = report::write_csv(&run, &csv) {
                eprintln!("{}: {e}", csv.display());
                return ExitCode::FAILURE;
            }
            runs.push((which, run, sum));
        }
        if !args.no_plot {
            let png = args.out.join(format!("{}.png", scenario.name()));
            let labelled: Vec<(&str, &sim::Run, &report::Summary)> =
                runs.iter().map(|(w, r, s)| (w.label(), r, s)).collect();
            if let Err(e) = plot::draw(&labelled, &png) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
