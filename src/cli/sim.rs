//! `mender-bridge sim`: runs the local Mender-compatible server until Ctrl-C (or SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::sim::{Server, SimConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// State directory: generated CA (`ca.pem`) and certificates, `state.json`, artifacts.
    #[arg(long)]
    pub state: PathBuf,
    /// Device token lifetime in seconds (the real server's default is 604800).
    #[arg(long)]
    pub jwt_lifetime: Option<u64>,
    /// Answer 404 on POST v2 `next`, as the open-source server does.
    #[arg(long)]
    pub no_next_v2: bool,
    /// Download link lifetime in seconds (default 86400).
    #[arg(long)]
    pub link_lifetime: Option<u64>,
}

pub async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut config = SimConfig::new(args.listen, args.state);
    config.jwt_lifetime_secs = args.jwt_lifetime;
    config.next_v2 = args.no_next_v2.then_some(false);
    config.link_lifetime_secs = args.link_lifetime;
    let handle = Server::start(config).await?;
    println!("mender-bridge sim listening on {}", handle.base_url());
    println!(
        "CA certificate (ServerCertificate): {}",
        handle.ca_path().display()
    );
    println!(
        "management API: {}/api/sim/devices (accept: POST .../devices/ID/accept)",
        handle.base_url()
    );
    handle.run_until(stop_signal()).await;
    Ok(ExitCode::SUCCESS)
}

async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
