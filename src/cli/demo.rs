//! `mender-bridge demo`: builds a signed artifact around a random rootfs image and streams
//! it through the verifying reader the way a device consumes a download, printing progress
//! and what was verified. With `--corrupt`, one byte of the payload is flipped first and the
//! reader is shown refusing it.
//!
//! Needs nothing but this binary: the image, the key (ECDSA P-256, generated in process)
//! and the artifact are all made here, in a temporary directory that is removed afterwards.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;

use crate::artifact::io::{Observed, Observer};
use crate::artifact::render::{to_text, ArtifactReport};
use crate::artifact::writer::{
    write_artifact, ArtifactSpec, PayloadFile, SigningKey, Spool, WriteOptions,
};
use crate::artifact::{ArtifactError, ArtifactReader, Compression, ReadOptions, VerifyKey};

const MIB: u64 = 1024 * 1024;
const ARTIFACT_NAME: &str = "demo-release-1";
const DEVICE_TYPE: &str = "demo-device";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flip one byte inside the payload before reading, to show the reader refusing it.
    #[arg(long)]
    pub corrupt: bool,
    /// Size of the random rootfs image, in MiB.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub size_mib: u64,
    /// Keep the work directory (image, artifact, public key) and print its path.
    #[arg(long)]
    pub keep: bool,
}

/// A directory made for this run, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(keep: bool) -> std::io::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "mender-bridge-demo-{}-{nanos:09}",
            std::process::id()
        ));
        std::fs::create_dir(&path)?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Counts the bytes read through it: the "downloaded so far" of the demo.
struct ByteCounter(Arc<AtomicU64>);

impl Observer for ByteCounter {
    fn observe(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn rate(bytes: u64, d: Duration) -> String {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return "-".into();
    }
    format!("{:.1} MiB/s", bytes as f64 / MIB as f64 / s)
}

fn human(bytes: u64) -> String {
    if bytes < 10 * 1024 {
        format!("{bytes} B")
    } else if bytes < MIB {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        mib(bytes)
    }
}

/// Writes `size` random bytes to `path`.
async fn random_image(path: &Path, size: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut f = tokio::fs::File::create(path).await?;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        getrandom::fill(&mut buf[..n]).map_err(|e| format!("random bytes: {e}"))?;
        f.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    f.flush().await?;
    Ok(())
}

/// A throwaway P-256 key from the operating system's random source.
fn throwaway_key() -> Result<SigningKey, Box<dyn std::error::Error>> {
    let mut seed = [0u8; 32];
    // A random 32-byte string is a valid scalar except with probability ~2^-32.
    for _ in 0..8 {
        getrandom::fill(&mut seed).map_err(|e| format!("random bytes: {e}"))?;
        if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&seed) {
            seed.fill(0);
            return Ok(SigningKey::EcdsaP256(k));
        }
    }
    Err("could not generate an ECDSA key".into())
}

/// What streaming the artifact through the reader gave.
struct Streamed {
    result: Result<ArtifactReport, ArtifactError>,
    /// Payload bytes the reader released to the consumer (the "installer").
    delivered: u64,
    elapsed: Duration,
}

/// Streams the artifact file through a pipe into the verifying reader, as a device consumes
/// an HTTP download, printing a progress line every tenth of the payload.
async fn stream_through_reader(path: &Path, key: VerifyKey, payload_size: u64) -> Streamed {
    let start = Instant::now();
    let (mut tx, rx) = tokio::io::duplex(256 * 1024);
    let file = tokio::fs::File::open(path).await;
    let feeder = tokio::spawn(async move {
        let mut file = file?;
        // The reader stops early on a refused artifact: a broken pipe is expected then.
        let _ = tokio::io::copy(&mut file, &mut tx).await;
        Ok::<(), std::io::Error>(())
    });
    let downloaded = Arc::new(AtomicU64::new(0));
    let source = Observed::new(rx, ByteCounter(downloaded.clone()));
    let opts = ReadOptions {
        verify_keys: vec![key],
        ..ReadOptions::default()
    };
    let mut delivered = 0u64;
    let result = async {
        let mut reader = ArtifactReader::open(source, opts).await?;
        println!(
            "      manifest signature and header checksum verified after {} of the artifact ({}),",
            human(downloaded.load(Ordering::Relaxed)),
            secs(start.elapsed())
        );
        println!("      before the first payload byte");
        let mut files = Vec::new();
        let mut next_mark = 1u64;
        while let Some(f) = reader.next_file().await? {
            println!(
                "      payload file {} ({}), streaming:",
                f.name,
                mib(f.size)
            );
            while let Some(chunk) = reader.read_chunk().await? {
                // A real installer would write the chunk to the inactive slot here.
                delivered += chunk.len() as u64;
                while next_mark <= 10 && delivered * 10 >= payload_size * next_mark {
                    let t = start.elapsed();
                    println!(
                        "      {:>9} / {}  {:>3}%  {:>12}  (artifact bytes read: {})",
                        mib(delivered),
                        mib(payload_size),
                        delivered * 100 / payload_size.max(1),
                        rate(delivered, t),
                        mib(downloaded.load(Ordering::Relaxed)),
                    );
                    next_mark += 1;
                }
            }
            files.push(f);
        }
        let info = reader.finish().await?;
        Ok(ArtifactReport { info, files })
    }
    .await;
    let elapsed = start.elapsed();
    if let Ok(Err(e)) = feeder.await {
        eprintln!("mender-bridge demo: feeding the artifact: {e}");
    }
    Streamed {
        result,
        delivered,
        elapsed,
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    println!("mender-bridge demo");
    println!("  Covers today: building a signed Mender Artifact (format v3) with the library's");
    println!("  writer, and streaming it through the verifying reader the way a device consumes");
    println!("  a download. Not yet: the Mender server, device authentication, deployments and");
    println!("  installing into RAUC / SWUpdate / an A/B slot -- those come later.");
    if args.corrupt {
        println!("  --corrupt: one byte of the payload is flipped before reading.");
    }
    println!();

    let dir = WorkDir::create(args.keep)?;
    let image = dir.path.join("rootfs.img");
    let artifact = dir.path.join(format!("{ARTIFACT_NAME}.mender"));
    let size = args.size_mib * MIB;

    let t = Instant::now();
    random_image(&image, size).await?;
    println!(
        "[1/4] rootfs image: {} of random data ({})",
        mib(size),
        secs(t.elapsed())
    );

    let t = Instant::now();
    let key = throwaway_key()?;
    let public_pem = key.public_key_pem()?;
    println!(
        "[2/4] signing key: throwaway ECDSA P-256, generated in process ({}); only its public",
        secs(t.elapsed())
    );
    println!("      half is given to the reader, as a device holds it");

    let t = Instant::now();
    let spec = ArtifactSpec::rootfs(ARTIFACT_NAME, [DEVICE_TYPE]);
    let opts = WriteOptions {
        compression: Compression::Gzip,
        signing_key: Some(key),
        spool: Spool::Dir(dir.path.clone()),
        ..WriteOptions::default()
    };
    let payload = PayloadFile::from_path(&image).await?;
    let mut out = tokio::fs::File::create(&artifact).await?;
    let summary = write_artifact(&mut out, &spec, vec![payload], &opts).await?;
    out.sync_all().await?;
    drop(out);
    println!(
        "[3/4] artifact: {} ({}, gzip, signed) written in {} ({})",
        artifact
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        mib(summary.size),
        secs(t.elapsed()),
        rate(size, t.elapsed())
    );
    let members: Vec<String> = summary
        .members
        .iter()
        .map(|m| format!("{} {}", m.name, human(m.size)))
        .collect();
    println!("      members: {}", members.join(", "));

    let data = summary
        .members
        .last()
        .ok_or("the writer reported no members")?;
    if args.corrupt {
        let at = data.offset + data.size / 2;
        let mut bytes = tokio::fs::read(&artifact).await?;
        let byte = bytes
            .get_mut(at as usize)
            .ok_or("corruption offset outside the artifact")?;
        *byte ^= 0x01;
        tokio::fs::write(&artifact, &bytes).await?;
        println!(
            "      corrupted: flipped the low bit of the byte at offset {at}, halfway into {}",
            data.name
        );
        println!("      (the signed manifest and the header are untouched)");
    }
    if args.keep {
        let pub_path = dir.path.join("demo.pub");
        tokio::fs::write(&pub_path, &public_pem).await?;
        println!("      kept in {}", dir.path.display());
        println!(
            "      check it with: mender-artifact read -k {} {}",
            pub_path.display(),
            artifact.display()
        );
    }

    println!("[4/4] streaming it through the verifying reader (through a pipe, front to back):");
    let verify_key = VerifyKey::from_pem(&public_pem, "demo.pub")?;
    let s = stream_through_reader(&artifact, verify_key, size).await;
    println!();
    match (s.result, args.corrupt) {
        (Ok(report), corrupt) => {
            print!("{}", to_text(&report));
            println!();
            println!(
                "verified: signature, header, payload sha256 -- {} in {} ({})",
                mib(s.delivered),
                secs(s.elapsed),
                rate(s.delivered, s.elapsed)
            );
            if corrupt {
                println!("UNEXPECTED: the corrupted artifact was accepted");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        (Err(e), corrupt) => {
            println!("refused after {}: {e}", secs(s.elapsed));
            match &e {
                ArtifactError::Checksum { .. } => println!(
                    "(the file's SHA-256, checked at its end against the signed manifest, did not match)"
                ),
                ArtifactError::Decompress { .. } => {
                    println!("(the flipped byte broke the compressed stream itself)")
                }
                _ => {}
            }
            println!(
                "payload released to the installer: {} of {} bytes; the last {} bytes were",
                s.delivered,
                size,
                size - s.delivered.min(size)
            );
            println!(
                "withheld, so a consumer never holds a complete image that failed verification."
            );
            if corrupt {
                println!();
                println!("This is the expected outcome of --corrupt: the demo itself succeeded.");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
    }
}
