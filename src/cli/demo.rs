//! `mender-bridge demo`: placeholder replaced below.
#[derive(Debug, clap::Args)]
pub struct Args {}
pub async fn run(_a: Args) -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    Ok(std::process::ExitCode::SUCCESS)
}
