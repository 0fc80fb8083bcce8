//! `mender-bridge inspect FILE`: read an artifact end to end, verify everything, print it.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio::io::AsyncRead;

use mender_artifact::render::{to_text, ArtifactReport};
use mender_artifact::{ArtifactError, ArtifactReader, Limits, ReadOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact file (`-` for standard input).
    pub file: PathBuf,
    /// Public key (PEM) that may have signed the artifact; repeatable. With one given,
    /// unsigned artifacts are refused.
    #[arg(short = 'k', long = "verify-key")]
    pub verify_keys: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Memory a decoder (xz, zstd) may use, in MiB.
    #[arg(long, alias = "xz-memory-mib", default_value_t = 128)]
    pub decoder_memory_mib: u64,
}

/// Reads the whole artifact, verifying every checksum, and collects the report.
pub async fn read_report<R: AsyncRead + Unpin + Send + 'static>(
    source: R,
    opts: ReadOptions,
) -> Result<ArtifactReport, ArtifactError> {
    let mut reader = ArtifactReader::open(source, opts).await?;
    let mut files = Vec::new();
    while let Some(f) = reader.next_file().await? {
        while reader.read_chunk().await?.is_some() {}
        files.push(f);
    }
    let info = reader.finish().await?;
    Ok(ArtifactReport { info, files })
}

pub async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let opts = ReadOptions {
        verify_keys: super::load_keys(&args.verify_keys)?,
        limits: Limits {
            decoder_memory: args.decoder_memory_mib.saturating_mul(1024 * 1024),
            ..Limits::default()
        },
    };
    let result = if args.file.as_os_str() == "-" {
        read_report(tokio::io::stdin(), opts).await
    } else {
        let f = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| format!("opening {}: {e}", args.file.display()))?;
        read_report(f, opts).await
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mender-bridge: {}: {e}", args.file.display());
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", to_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}
