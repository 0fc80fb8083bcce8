//! Private keys read from files leave no copy in freed memory: this binary's allocator
//! looks into every block freed (or moved by `realloc`) while a key is loaded, for a piece
//! of the key's PEM text and of its DER bytes. Two readers are watched: the mTLS client key
//! (`HttpsClient.Key`, while the client's TLS configuration is built) and the device key
//! (`DeviceKey::load`). The key files are made by `openssl` (RSA and ECDSA P-256, in PKCS#8
//! and in the traditional `RSA PRIVATE KEY` / `EC PRIVATE KEY` forms; Ed25519 for the
//! device key) before the watch starts.
//!
//! The watch is process-wide: the tests take turns ([`ONE`]).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use common::{openssl, SelfSigned};
use mender_bridge::client::{Backoff, DownloadConfig, Downloader, TlsConfig};
use mender_bridge::keys::DeviceKey;
use zeroize::Zeroizing;

/// Most needles looked for at once.
const NEEDLES: usize = 2;
const NEEDLE_LEN: usize = 16;

/// Set while a client configuration is built.
static ARMED: AtomicBool = AtomicBool::new(false);
/// How many of `NEEDLE` are set (written only while disarmed).
static NEEDLE_COUNT: AtomicUsize = AtomicUsize::new(0);
static mut NEEDLE: [[u8; NEEDLE_LEN]; NEEDLES] = [[0; NEEDLE_LEN]; NEEDLES];
/// Bit `i`: a freed block held needle `i`.
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Watch;

impl Watch {
    /// Records which needles the block `[ptr, ptr + size)` holds.
    ///
    /// # Safety
    /// The block must be allocated and readable.
    unsafe fn scan(ptr: *const u8, size: usize) -> usize {
        if !ARMED.load(Ordering::SeqCst) || size < NEEDLE_LEN {
            return 0;
        }
        // SAFETY: the caller's block; NEEDLE is not written while armed.
        let block = unsafe { std::slice::from_raw_parts(ptr, size) };
        let needles = unsafe { &*std::ptr::addr_of!(NEEDLE) };
        let mut hits = 0;
        for (i, n) in needles
            .iter()
            .take(NEEDLE_COUNT.load(Ordering::SeqCst))
            .enumerate()
        {
            if block.windows(NEEDLE_LEN).any(|w| w == n) {
                hits |= 1 << i;
            }
        }
        hits
    }
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let hits = unsafe { Self::scan(ptr, layout.size()) };
        FOUND.fetch_or(hits, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The old block is looked at first: once moved, it is freed with its contents.
        let hits = unsafe { Self::scan(ptr, layout.size()) };
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new != ptr {
            FOUND.fetch_or(hits, Ordering::SeqCst);
        }
        new
    }
}

#[global_allocator]
static ALLOC: Watch = Watch;

/// Serialises the watch: one test at a time.
static ONE: Mutex<()> = Mutex::new(());

/// The private value of a key as `openssl pkey -text` prints it (`priv:` of an EC key,
/// `privateExponent:` of an RSA key), leading zero bytes dropped.
fn private_value(dir: &Path, key: &str) -> Zeroizing<Vec<u8>> {
    let text = Zeroizing::new(openssl(dir, &["pkey", "-in", key, "-text", "-noout"]));
    let mut hex = Zeroizing::new(String::with_capacity(text.len()));
    let mut inside = false;
    for line in text.lines() {
        if line == "priv:" || line == "privateExponent:" {
            inside = true;
        } else if inside && line.starts_with(' ') {
            hex.extend(line.chars().filter(char::is_ascii_hexdigit));
        } else if inside {
            break;
        }
    }
    let mut value = Zeroizing::new(vec![0u8; hex.len() / 2]);
    for (i, b) in value.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let lead = value.iter().take_while(|b| **b == 0).count();
    value.drain(..lead);
    // A 32-byte value may start with zero bytes, dropped above.
    assert!(
        value.len() >= 24,
        "{key}: no private value in openssl's output"
    );
    value
}

/// Two 16-byte needles that only the private part of the key holds (the certificate loaded
/// alongside shares the public part): a piece of the PEM text that encodes private bytes
/// only and lies within one line, and a piece of the DER from the middle of the private
/// value. Every copy made here is in a buffer of fixed size, zeroized on drop: a stale copy
/// left by the test in freed memory could be handed out again and reported by the watch.
fn needles(dir: &Path, key: &str) -> [[u8; NEEDLE_LEN]; 2] {
    let private = private_value(dir, key);
    let pem = Zeroizing::new(std::fs::read(dir.join(key)).unwrap());
    let mut b64 = Zeroizing::new(Vec::with_capacity(pem.len()));
    let mut line_len = 0;
    for line in pem.split(|b| *b == b'\n') {
        if !line.is_empty() && !line.starts_with(b"-----") {
            line_len = line_len.max(line.len());
            b64.extend_from_slice(line);
        }
    }
    let mut der = Zeroizing::new(vec![0u8; b64.len()]);
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(&b64[..], &mut der[..])
        .unwrap();
    let der = &der[..n];
    let start = der
        .windows(private.len())
        .position(|w| w == &private[..])
        .unwrap_or_else(|| panic!("{key}: private value not found in the DER"));
    let end = start + private.len();

    let mut bin = [0u8; NEEDLE_LEN];
    let mid = start + private.len() / 2 - NEEDLE_LEN / 2;
    bin.copy_from_slice(&der[mid..mid + NEEDLE_LEN]);

    // Bytes [s, s + 12) are the base64 characters [4s/3, 4s/3 + 16) when s is a multiple
    // of 3; lines are `line_len` characters.
    let s = (start.div_ceil(3)..)
        .map(|g| g * 3)
        .take_while(|s| s + 12 <= end)
        .find(|s| (4 * s / 3) % line_len + NEEDLE_LEN <= line_len)
        .unwrap_or_else(|| panic!("{key}: no needle within one line"));
    let mut text = [0u8; NEEDLE_LEN];
    text.copy_from_slice(&b64[4 * s / 3..4 * s / 3 + NEEDLE_LEN]);
    [text, bin]
}

fn config() -> DownloadConfig {
    DownloadConfig {
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_resume_attempts: 1,
        resume_backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
            repeats: 1,
            max_tries: None,
        },
        max_url_refreshes: 0,
    }
}

/// Runs `f` with the watch armed for `found_needles`; returns what it returned and which
/// needles a freed block held (bit 0: the PEM text, bit 1: the DER).
fn watched<T>(found_needles: [[u8; NEEDLE_LEN]; NEEDLES], f: impl FnOnce() -> T) -> (T, usize) {
    // SAFETY: written while disarmed; the allocator reads it only while armed.
    unsafe { *std::ptr::addr_of_mut!(NEEDLE) = found_needles };
    NEEDLE_COUNT.store(NEEDLES, Ordering::SeqCst);
    FOUND.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let out = f();
    ARMED.store(false, Ordering::SeqCst);
    (out, FOUND.load(Ordering::SeqCst))
}

/// What a freed block held, as failure lines for `key`.
fn failures_of(key: &str, found: usize) -> Vec<String> {
    let mut failures = Vec::new();
    if found & 1 != 0 {
        failures.push(format!("{key}: PEM text of the key in freed memory"));
    }
    if found & 2 != 0 {
        failures.push(format!("{key}: DER of the key in freed memory"));
    }
    failures
}

/// Checks that `key` (in `dir`) begins with a `label` block.
fn assert_label(dir: &Path, key: &str, label: &str) {
    let mut head = [0u8; 64];
    let n =
        std::io::Read::read(&mut std::fs::File::open(dir.join(key)).unwrap(), &mut head).unwrap();
    let begin = format!("-----BEGIN {label}-----\n");
    assert!(head[..n].starts_with(begin.as_bytes()), "{key}");
}

/// The device key (`DeviceKey::load`, the key a device authenticates with) in each form a
/// device may have: the official client's `mender-agent.pem` (RSA PKCS#1), Mender 5's
/// Ed25519 PKCS#8, ECDSA P-256 in SEC1 and PKCS#8, RSA in PKCS#8.
#[test]
fn the_device_key_leaves_no_copy_in_freed_memory() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            "ec.pem",
        ],
    );
    openssl(
        d,
        &["genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem"],
    );
    traditional_forms(d);

    let cases = [
        ("rsa-pkcs1.pem", "RSA PRIVATE KEY", "RSA"),
        ("rsa.pem", "PRIVATE KEY", "RSA"),
        ("ec-sec1.pem", "EC PRIVATE KEY", "ECDSA P-256"),
        ("ec.pem", "PRIVATE KEY", "ECDSA P-256"),
        ("ed25519.pem", "PRIVATE KEY", "Ed25519"),
    ];
    let mut failures = Vec::new();
    for (key, label, kind) in cases {
        assert_label(d, key, label);
        let path = d.join(key);
        let (loaded, found) = watched(needles(d, key), || DeviceKey::load(&path));
        let loaded = loaded.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(loaded.kind(), kind, "{key}");
        failures.extend(failures_of(key, found));
        drop(loaded);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `rsa-pkcs1.pem` and `ec-sec1.pem`: `rsa.pem` and `ec.pem` (PKCS#8) in their
/// traditional forms.
fn traditional_forms(d: &Path) {
    for (from, to) in [("rsa.pem", "rsa-pkcs1.pem"), ("ec.pem", "ec-sec1.pem")] {
        openssl(d, &["pkey", "-in", from, "-traditional", "-out", to]);
    }
}

#[test]
fn the_client_key_leaves_no_copy_in_freed_memory() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (newkey, opts, key, cert) in [
        ("rsa:2048", &[][..], "rsa.pem", "rsa.crt"),
        (
            "ec",
            &["ec_paramgen_curve:prime256v1"][..],
            "ec.pem",
            "ec.crt",
        ),
    ] {
        SelfSigned {
            newkey,
            opts,
            key,
            cert,
            subject: "/CN=device",
            days: "1",
            ext: &[],
        }
        .write(d);
    }
    traditional_forms(d);

    let cases = [
        ("rsa.pem", "rsa.crt", "PRIVATE KEY"),
        ("rsa-pkcs1.pem", "rsa.crt", "RSA PRIVATE KEY"),
        ("ec.pem", "ec.crt", "PRIVATE KEY"),
        ("ec-sec1.pem", "ec.crt", "EC PRIVATE KEY"),
    ];
    let mut failures = Vec::new();
    for (key, cert, label) in cases {
        assert_label(d, key, label);
        let tls = TlsConfig {
            client_certificate: Some(d.join(cert)),
            client_key: Some(d.join(key)),
            ..TlsConfig::default()
        };
        let (built, found) = watched(needles(d, key), || {
            Downloader::new(&tls, Duration::from_secs(5), config())
        });
        let downloader = built.unwrap_or_else(|e| panic!("{key}: {e}"));
        failures.extend(failures_of(key, found));
        drop(downloader);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
