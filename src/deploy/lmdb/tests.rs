use std::process::Command;

use super::*;

/// An LMDB file written by the real LMDB (`mdb_load` from lmdb-utils) with `pairs`.
pub(crate) fn load(dir: &Path, name: &str, pairs: &[(String, String)]) -> PathBuf {
    let esc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_graphic() && b != b'\\' || b == b' ' {
                    (b as char).to_string()
                } else {
                    format!("\\{b:02x}")
                }
            })
            .collect::<String>()
    };
    let mut dump =
        String::from("VERSION=3\nformat=print\ntype=btree\nmapsize=67108864\nHEADER=END\n");
    for (k, v) in pairs {
        dump.push_str(&format!(" {}\n {}\n", esc(k), esc(v)));
    }
    dump.push_str("DATA=END\n");
    let dump_path = dir.join(format!("{name}.dump"));
    std::fs::write(&dump_path, dump).expect("dump");
    let path = dir.join(name);
    let out = Command::new("mdb_load")
        .arg("-n")
        .arg("-f")
        .arg(&dump_path)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("mdb_load: {e}; install the test dependencies (scripts/setup-test-deps.sh)")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn text(m: &BTreeMap<Vec<u8>, Vec<u8>>, k: &str) -> String {
    String::from_utf8_lossy(&m[k.as_bytes()]).into_owned()
}

#[test]
fn reads_the_official_clients_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = load(
        dir.path(),
        "mender-store",
        &[
            ("artifact-name".into(), "release-2".into()),
            ("artifact-group".into(), "".into()),
            (
                "artifact-provides".into(),
                r#"{"rootfs-image.checksum":"abc"}"#.into(),
            ),
        ],
    );
    let m = read_main_db(&path).expect("read");
    assert_eq!(m.len(), 3);
    assert_eq!(text(&m, "artifact-name"), "release-2");
    assert_eq!(text(&m, "artifact-group"), "");
    assert_eq!(
        text(&m, "artifact-provides"),
        r#"{"rootfs-image.checksum":"abc"}"#
    );
}

#[test]
fn reads_a_deep_tree_and_overflow_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pairs: Vec<(String, String)> = (0..3000)
        .map(|i| {
            (
                format!("key-{i:05}"),
                format!("value {i} {}", "x".repeat(i % 50)),
            )
        })
        .collect();
    let big = "B".repeat(20_000);
    pairs.push(("zz-big".into(), big.clone()));
    let path = load(dir.path(), "big", &pairs);
    let m = read_main_db(&path).expect("read");
    assert_eq!(m.len(), pairs.len());
    for (k, v) in &pairs {
        assert_eq!(text(&m, k), *v, "{k}");
    }
}

#[test]
fn an_empty_database_has_no_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = load(dir.path(), "empty", &[]);
    assert!(read_main_db(&path).expect("read").is_empty());
}

/// A store as a 32-bit device writes it: 4-byte words, 4096-byte pages, one leaf.
fn store_32bit() -> Vec<u8> {
    let ps = 4096;
    let mut f = vec![0u8; 3 * ps];
    for (i, txnid) in [(0usize, 1u32), (1, 2)] {
        let p = &mut f[i * ps..(i + 1) * ps];
        p[0..4].copy_from_slice(&(i as u32).to_le_bytes());
        p[6..8].copy_from_slice(&0x08u16.to_le_bytes()); // P_META
        let m = 12;
        p[m..m + 4].copy_from_slice(&MAGIC.to_le_bytes());
        p[m + 4..m + 8].copy_from_slice(&1u32.to_le_bytes());
        let db = m + 8 + 8;
        p[db..db + 4].copy_from_slice(&(ps as u32).to_le_bytes()); // free db md_pad = psize
        p[db + 24..db + 28].copy_from_slice(&u32::MAX.to_le_bytes()); // free root: none
        let main = db + 28;
        let root = if txnid == 2 { 2u32 } else { u32::MAX };
        p[main + 24..main + 28].copy_from_slice(&root.to_le_bytes());
        p[main + 28 + 4..main + 28 + 8].copy_from_slice(&txnid.to_le_bytes());
    }
    let p = &mut f[2 * ps..];
    p[0..4].copy_from_slice(&2u32.to_le_bytes());
    p[6..8].copy_from_slice(&0x02u16.to_le_bytes()); // P_LEAF
    let nodes = [("artifact-name", "rel-32"), ("artifact-provides", "{}")];
    let mut upper = ps;
    let mut ptrs = Vec::new();
    for (k, v) in nodes {
        let size = 8 + k.len() + v.len();
        upper -= size;
        let n = &mut p[upper..upper + size];
        n[0..2].copy_from_slice(&(v.len() as u16).to_le_bytes());
        n[6..8].copy_from_slice(&(k.len() as u16).to_le_bytes());
        n[8..8 + k.len()].copy_from_slice(k.as_bytes());
        n[8 + k.len()..].copy_from_slice(v.as_bytes());
        ptrs.push(upper as u16);
    }
    for (i, at) in ptrs.iter().enumerate() {
        p[12 + 2 * i..14 + 2 * i].copy_from_slice(&at.to_le_bytes());
    }
    let lower = 12 + 2 * ptrs.len();
    p[8..10].copy_from_slice(&(lower as u16).to_le_bytes());
    p[10..12].copy_from_slice(&(upper as u16).to_le_bytes());
    f
}

#[test]
fn reads_a_store_written_on_a_32_bit_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store32");
    std::fs::write(&path, store_32bit()).expect("write");
    let m = read_main_db(&path).expect("read");
    assert_eq!(text(&m, "artifact-name"), "rel-32");
    assert_eq!(m.len(), 2);
}

#[test]
fn corrupt_files_are_errors_not_loops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad");
    std::fs::write(&path, b"not an lmdb file at all").expect("write");
    assert!(matches!(
        read_main_db(&path),
        Err(LmdbError::NotLmdb { .. })
    ));

    // A root that points past the end of the file.
    let mut f = store_32bit();
    let main_root = 4096 + 12 + 16 + 28 + 24;
    f[main_root..main_root + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, &f).expect("write");
    let e = read_main_db(&path).expect_err("beyond the end");
    assert!(e.to_string().contains("beyond the end"), "{e}");

    // A branch page whose child is itself.
    let mut f = store_32bit();
    let leaf = 2 * 4096;
    f[leaf + 6..leaf + 8].copy_from_slice(&0x01u16.to_le_bytes()); // P_BRANCH
    let first = usize::from(u16::from_le_bytes([f[leaf + 12], f[leaf + 13]]));
    f[leaf + first..leaf + first + 2].copy_from_slice(&2u16.to_le_bytes()); // child pgno 2
    f[leaf + first + 2..leaf + first + 6].fill(0);
    std::fs::write(&path, &f).expect("write");
    let e = read_main_db(&path).expect_err("a cycle");
    assert!(e.to_string().contains("deeper than"), "{e}");

    // Truncated after the meta pages.
    let f = store_32bit();
    std::fs::write(&path, &f[..2 * 4096]).expect("write");
    assert!(read_main_db(&path).is_err());
}
