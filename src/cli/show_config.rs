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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    #[test]
    fn global_config_flags_reach_the_paths() {
        let cli = Cli::try_parse_from([
            "mender-bridge",
            "-c",
            "/m.conf",
            "show-config",
            "--json",
            "-d",
            "/data",
            "-b",
            "/fb.conf",
            "--bridge-config",
            "/b.toml",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let p = cli.config_paths();
        assert_eq!(
            p.mender_conf.as_deref(),
            Some(std::path::Path::new("/m.conf"))
        );
        assert_eq!(
            p.fallback_mender_conf.as_deref(),
            Some(std::path::Path::new("/fb.conf"))
        );
        assert_eq!(
            p.bridge_config.as_deref(),
            Some(std::path::Path::new("/b.toml"))
        );
        assert_eq!(p.data_dir.as_deref(), Some(std::path::Path::new("/data")));
        assert!(matches!(cli.command, Command::ShowConfig(ref a) if a.json));
    }
}
