use std::process::ExitCode;

use clap::Parser;
use mender_bridge::cli::compat::{self, Personality};
use mender_bridge::cli::Cli;

fn main() -> ExitCode {
    mender_bridge::memory::limit_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Started as `mender-update` or `mender-auth` (a link to this binary): the official
    // command line, turned into the bridge's.
    let translated = match Personality::of(args.first()) {
        Personality::Bridge => Ok(compat::Translated {
            cli: Cli::parse_from(args),
            overrides: Vec::new(),
        }),
        Personality::MenderUpdate => compat::mender_update(args),
        Personality::MenderAuth => compat::mender_auth(args),
    };
    let translated = match translated {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mender-bridge: {e}");
            return ExitCode::from(1);
        }
    };
    // Single-threaded here: the overrides become the configuration's environment layer.
    for (key, value) in &translated.overrides {
        std::env::set_var(key, value);
    }
    let cli = translated.cli;
    mender_bridge::logging::init(cli.log_filter(), cli.log_format, cli.log_file.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mender-bridge: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(mender_bridge::cli::run(cli))
}
