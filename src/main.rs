use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mender_bridge::memory::limit_arenas();
    let cli = mender_bridge::cli::Cli::parse();
    mender_bridge::logging::init(cli.log_filter(), cli.log_format);
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
