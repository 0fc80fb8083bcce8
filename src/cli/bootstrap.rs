//! `mender-bridge bootstrap [--forcebootstrap]` (`mender-auth bootstrap`): makes the device
//! key when there is none — a new one with `--forcebootstrap` — then authenticates once,
//! within 30 s, and says how the server answered. As with mender-auth, the exit code is 0
//! whatever the server said (a pending device is normal before acceptance) and 1 only when
//! the configuration or the key fails.

use std::process::ExitCode;
use std::time::Duration;

use crate::client::ClientError;
use crate::config::{Config, ConfigPaths};
use crate::keys::DeviceKey;
use crate::setup;

/// How long the one authentication may take (mender-auth's own bound).
const AUTH_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replace the device key with a new one (the server then sees a new, pending key).
    #[arg(short = 'F', long = "forcebootstrap")]
    pub force: bool,
}

pub async fn run(args: Args, paths: &ConfigPaths) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = Config::load(paths)?;
    if args.force {
        if let Some(configured) = &config.security.auth_private_key {
            eprintln!(
                "mender-bridge: the device key is configured (Security.AuthPrivateKey = {}); not replacing it",
                configured.display()
            );
            return Ok(ExitCode::from(1));
        }
        let key = DeviceKey::generate(config.device_key_type)?;
        let path = config.data_dir.join("mender-agent.pem");
        key.write_atomic(&path)?;
        println!(
            "Generated a new {} device key in {}.",
            key.kind(),
            path.display()
        );
    }
    if config.servers.is_empty() {
        println!("No server in the configuration: the key is ready, authentication skipped.");
        setup::device_key(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    let client = setup::client(&config).await?;
    let server = config
        .servers
        .first()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    match tokio::time::timeout(AUTH_LIMIT, client.authenticate()).await {
        Ok(Ok(())) => println!("Authorized with {server}."),
        Ok(Err(e @ ClientError::AuthRejected { .. })) => eprintln!(
            "mender-bridge: not authorized by {server}: {e} (a new device is accepted on the dashboard)"
        ),
        Ok(Err(e)) => eprintln!("mender-bridge: authentication with {server} failed: {e}"),
        Err(_) => eprintln!(
            "mender-bridge: {server} did not answer within {}s",
            AUTH_LIMIT.as_secs()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
