//! `show-config`: the effective configuration after every layer, secrets redacted, with
//! where each value came from.

use std::process::ExitCode;

use crate::config::{Config, ConfigPaths};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (`{"config": ..., "sources": ...}`) instead of TOML.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let loaded = Config::load_from(paths, crate::config::process_env())?;
    let text = if args.json {
        loaded.to_json()?
    } else {
        loaded.to_toml()?
    };
    println!("{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}
