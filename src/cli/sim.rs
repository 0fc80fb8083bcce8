//! `mender-bridge sim`: runs the local Mender-compatible server until Ctrl-C (or SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use mender_bridge_sim::{Server, SimConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port). Loopback only, unless
    /// `--allow-remote`.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Allow a `--listen` address other networks can reach. The management API
    /// (`/api/sim/`) has no authentication: anyone who reaches it can accept devices and
    /// deploy artifacts to them.
    #[arg(long)]
    pub allow_remote: bool,
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

/// `sim` refused to start.
#[derive(Debug, thiserror::Error)]
pub enum SimArgsError {
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, and the simulator's \
         management API (/api/sim/) has no authentication (anyone who reaches it can accept \
         devices and deploy artifacts to them); pass --allow-remote if that is meant"
    )]
    Remote { addr: SocketAddr },
}

/// `true` for 127.0.0.0/8, `::1` and `::ffff:127.x.x.x`. The unspecified addresses
/// (`0.0.0.0`, `::`) listen on every interface, so they are not loopback.
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The management API has no auth: a reachable address must be asked for.
fn check_listen(args: &Args) -> Result<(), SimArgsError> {
    if is_loopback(&args.listen) {
        return Ok(());
    }
    if !args.allow_remote {
        return Err(SimArgsError::Remote { addr: args.listen });
    }
    eprintln!(
        "warning: listening on {} (--allow-remote): the management API (/api/sim/) has no \
         authentication; anyone who reaches this address can accept devices and deploy \
         artifacts to them",
        args.listen
    );
    Ok(())
}

pub async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    check_listen(&args)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for a in [
            "127.0.0.1:1",
            "127.1.2.3:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback(&a.parse().unwrap()), "{a}");
        }
        for a in [
            "0.0.0.0:1",
            "[::]:1",
            "192.168.1.2:1",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(!is_loopback(&a.parse().unwrap()), "{a}");
        }
    }
}
