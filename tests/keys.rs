//! Device keys against OpenSSL: every kind of PEM an existing Mender device may hold loads,
//! and the auth signatures verify with `openssl` exactly as the server's rules say
//! (RSA PKCS#1 v1.5 SHA-256, ECDSA P-256 SHA-256 DER, Ed25519 over the raw body).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::openssl;
use mender_bridge::keys::{DeviceKey, KeyType};

const BODY: &[u8] = b"{\"id_data\":\"{\\\"mac\\\":\\\"02:00:00:00:00:01\\\"}\",\"tenant_token\":\"\",\"pubkey\":\"x\"}\n";

/// Signs BODY with `key`, then has openssl verify it with the key's own public PEM.
fn assert_openssl_verifies(dir: &Path, key: &DeviceKey) {
    std::fs::write(dir.join("body"), BODY).unwrap();
    std::fs::write(dir.join("sig"), key.sign(BODY).unwrap()).unwrap();
    std::fs::write(dir.join("pub.pem"), key.public_key_pem().unwrap()).unwrap();
    let out = if key.kind() == "Ed25519" {
        openssl(
            dir,
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "body",
                "-sigfile", "sig",
            ],
        )
    } else {
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "body",
            ],
        )
    };
    assert!(
        out.contains("Verified OK") || out.contains("Signature Verified Successfully"),
        "{out}"
    );
}

#[test]
fn loads_every_pem_form_and_signs_as_the_server_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The official client's mender-agent.pem (RSA PKCS#1), and the other forms.
    openssl(d, &["genrsa", "-traditional", "-out", "rsa1.pem", "2048"]);
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "rsa1.pem", "-out", "rsa8.pem",
        ],
    );
    openssl(
        d,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-out",
            "ec-sec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "ec-sec1.pem",
            "-out",
            "ec8.pem",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"]);
    for (file, kind) in [
        ("rsa1.pem", "RSA"),
        ("rsa8.pem", "RSA"),
        ("ec-sec1.pem", "ECDSA P-256"),
        ("ec8.pem", "ECDSA P-256"),
        ("ed.pem", "Ed25519"),
    ] {
        let key = DeviceKey::load(&d.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.kind(), kind, "{file}");
        // Same public key as openssl derives.
        let theirs = openssl(d, &["pkey", "-in", file, "-pubout"]);
        assert_eq!(
            key.public_key_pem().unwrap().trim(),
            theirs.trim(),
            "{file}"
        );
        assert_openssl_verifies(d, &key);
    }
    // ECDSA auth signatures are DER, not raw r||s.
    let ec = DeviceKey::load(&d.join("ec8.pem")).unwrap();
    let sig = ec.sign(BODY).unwrap();
    assert_eq!(sig[0], 0x30, "DER SEQUENCE");
    assert!((68..=72).contains(&sig.len()), "{}", sig.len());
}

#[test]
fn generated_keys_are_written_atomically_0600_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [KeyType::Ed25519, KeyType::P256, KeyType::Rsa3072] {
        let path = dir.path().join(format!("sub/{kind:?}.pem"));
        let (key, created) = DeviceKey::load_or_generate(&path, kind).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{kind:?}");
        let (again, created) = DeviceKey::load_or_generate(&path, kind).unwrap();
        assert!(!created, "an existing key is kept");
        assert_eq!(
            key.public_key_pem().unwrap(),
            again.public_key_pem().unwrap()
        );
        assert_openssl_verifies(dir.path(), &again);
        // openssl reads what we wrote.
        openssl(
            dir.path(),
            &["pkey", "-in", path.to_str().unwrap(), "-noout"],
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left behind");
}

#[test]
fn a_broken_key_is_an_error_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mender-agent.pem");
    std::fs::write(
        &path,
        "-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = DeviceKey::load_or_generate(&path, KeyType::Ed25519)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mender-agent.pem"), "{err}");
    assert!(
        std::fs::read_to_string(&path).unwrap().contains("garbage"),
        "untouched"
    );
    // Debug output never shows key material.
    let key = DeviceKey::generate(KeyType::P256).unwrap();
    let dbg = format!("{key:?}");
    assert!(!dbg.contains("BEGIN") && dbg.len() < 200, "{dbg}");
}
