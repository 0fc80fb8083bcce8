//! Fuzz target for the streaming artifact reader: the input is a whole artifact, read the
//! way `mender-bridge inspect` reads one (open, every file to its end, finish). Errors are
//! expected for almost every input; a panic, a hang or an allocation past the limits below is
//! a bug.
//!
//! Each input is read twice: without keys (unsigned and signed artifacts are accepted) and
//! with the fixed test key `fuzz/keys/test-p256.pub` (only artifacts signed with
//! `fuzz/keys/test-p256.key` get past `manifest.sig`; `scripts/fuzz-smoke.sh` signs one seed
//! with it).
#![no_main]

use std::io::Cursor;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mender_artifact::{ArtifactError, ArtifactReader, Limits, ReadOptions, VerifyKey};

/// Test-only ECDSA P-256 public key; its private half signs one seed of the corpus.
const VERIFY_KEY_PEM: &str = include_str!("../keys/test-p256.pub");

const MIB: u64 = 1024 * 1024;

/// Small bounds, so that no input (decompression bombs included) makes the reader hold more
/// than a few tens of MiB, far below libFuzzer's -rss_limit_mb.
fn limits() -> Limits {
    Limits {
        small_member: 64 * 1024,
        header_member: MIB,
        header_total: MIB,
        header_file: 256 * 1024,
        header_entries: 64,
        // mender-artifact's xz (`--compression lzma`) uses a 64 MiB dictionary; with less,
        // every xz seed stops at the memory limit and the xz paths past the header would be
        // out of reach (the dictionary size sits behind a CRC). liblzma allocates it lazily,
        // so an input touches only the pages it writes.
        decoder_memory: 80 * MIB,
        // The payload is streamed, never held, but hashing gigabytes that a 64 KiB zstd or
        // xz member can expand to would only make slow inputs: cap it.
        payload_file: Some(16 * MIB),
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime")
});

static VERIFY_KEY: LazyLock<VerifyKey> = LazyLock::new(|| {
    VerifyKey::from_pem(VERIFY_KEY_PEM, "fuzz/keys/test-p256.pub").expect("embedded test key")
});

async fn read_all(data: Vec<u8>, opts: ReadOptions) -> Result<(), ArtifactError> {
    let mut reader = ArtifactReader::open(Cursor::new(data), opts).await?;
    while let Some(_file) = reader.next_file().await? {
        while reader.read_chunk().await?.is_some() {}
    }
    reader.finish().await?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let unsigned = ReadOptions {
        verify_keys: Vec::new(),
        limits: limits(),
    };
    let verified = ReadOptions {
        verify_keys: vec![VERIFY_KEY.clone()],
        limits: limits(),
    };
    RUNTIME.block_on(async {
        // Errors are the expected outcome; only panics, hangs and OOMs are findings.
        let _ = read_all(data.to_vec(), unsigned).await;
        let _ = read_all(data.to_vec(), verified).await;
    });
});
