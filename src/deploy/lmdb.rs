//! A read-only reader of the main database of an LMDB file, enough to read the official
//! client's store (`<data dir>/mender-store`, LMDB with `MDB_NOSUBDIR`, keys in the root
//! database: `artifact-name`, `artifact-group`, `artifact-provides`) when a device moves
//! from the official client to the bridge.
//!
//! The format (LMDB 0.9, `mdb.c`): pages of `psize` bytes; pages 0 and 1 are meta pages
//! (the one with the higher transaction id is current); the main database is a B+tree
//! whose root page the meta names; branch pages hold child page numbers, leaf pages key
//! and value (or the number of the overflow pages holding a large value). Word-sized
//! fields follow the writer's platform: 8 bytes on 64-bit devices, 4 on 32-bit ones
//! (common on ARM), told apart by where the meta magic sits.
//!
//! Invariants: the file is only read; every offset is checked against the page or the
//! file before use; at most [`MAX_PAGES`] pages are visited, [`MAX_DEPTH`] levels deep,
//! and no value over [`MAX_VALUE`] bytes is read, so a corrupt or hostile file ends in
//! an error, never in a loop or an unbounded allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u32 = 0xBEEF_C0DE;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_LEAF2: u16 = 0x20;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;
/// `MDB_node` header: lo, hi, flags, ksize.
const NODE_HEADER: usize = 8;

/// Pages visited at most in one read.
pub const MAX_PAGES: usize = 4096;
/// Tree depth at most.
pub const MAX_DEPTH: usize = 16;
/// Largest value read (bytes).
pub const MAX_VALUE: usize = 1024 * 1024;
/// Page sizes LMDB uses (the OS page size).
const PAGE_SIZES: std::ops::RangeInclusive<usize> = 512..=65536;

#[derive(Debug, thiserror::Error)]
pub enum LmdbError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an LMDB file ({detail})")]
    NotLmdb { path: PathBuf, detail: String },
    #[error("{path}: page {page}: {detail}")]
    Corrupt {
        path: PathBuf,
        page: u64,
        detail: String,
    },
}

/// The layout of the writer's platform.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// `sizeof(size_t)`: 8 or 4.
    word: usize,
    psize: usize,
}

impl Layout {
    /// `PAGEHDRSZ`: pgno, pad, flags, lower, upper.
    fn header(&self) -> usize {
        self.word + 8
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn word_at(b: &[u8], at: usize, word: usize) -> Option<u64> {
    match word {
        8 => Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)),
        _ => u32_at(b, at).map(u64::from),
    }
}

struct Reader<'a> {
    path: &'a Path,
    file: File,
    len: u64,
    layout: Layout,
    visited: usize,
}

impl Reader<'_> {
    fn corrupt(&self, page: u64, detail: impl Into<String>) -> LmdbError {
        LmdbError::Corrupt {
            path: self.path.to_path_buf(),
            page,
            detail: detail.into(),
        }
    }

    /// `n` consecutive pages from page `pgno`.
    fn pages(&mut self, pgno: u64, n: usize) -> Result<Vec<u8>, LmdbError> {
        self.visited += n;
        if self.visited > MAX_PAGES {
            return Err(self.corrupt(pgno, format!("more than {MAX_PAGES} pages to read")));
        }
        let size = self.layout.psize * n;
        let offset = pgno
            .checked_mul(self.layout.psize as u64)
            .filter(|o| o.saturating_add(size as u64) <= self.len)
            .ok_or_else(|| self.corrupt(pgno, "beyond the end of the file"))?;
        let mut buf = vec![0u8; size];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|source| LmdbError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        Ok(buf)
    }

    /// Every key and value under page `pgno`, in key order.
    fn walk(
        &mut self,
        pgno: u64,
        depth: usize,
        out: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), LmdbError> {
        if depth > MAX_DEPTH {
            return Err(self.corrupt(pgno, format!("tree deeper than {MAX_DEPTH}")));
        }
        let page = self.pages(pgno, 1)?;
        let hdr = self.layout.header();
        let path = self.path;
        let bad = |detail: &str| LmdbError::Corrupt {
            path: path.to_path_buf(),
            page: pgno,
            detail: detail.to_string(),
        };
        let flags = u16_at(&page, self.layout.word + 2).ok_or_else(|| bad("short header"))?;
        let lower =
            usize::from(u16_at(&page, self.layout.word + 4).ok_or_else(|| bad("short header"))?);
        if lower < hdr || lower > page.len() {
            return Err(bad("bad lower bound"));
        }
        if flags & P_LEAF2 != 0 {
            return Err(bad("a DUPFIXED page in the main database"));
        }
        let count = (lower - hdr) / 2;
        for i in 0..count {
            let at = usize::from(u16_at(&page, hdr + 2 * i).ok_or_else(|| bad("short index"))?);
            let node = page
                .get(at..at + NODE_HEADER)
                .ok_or_else(|| bad("node outside the page"))?;
            let lo = u64::from(u16_at(node, 0).unwrap_or(0));
            let hi = u64::from(u16_at(node, 2).unwrap_or(0));
            let nflags = u16_at(node, 4).unwrap_or(0);
            let ksize = usize::from(u16_at(node, 6).unwrap_or(0));
            let key_at = at + NODE_HEADER;
            let key = page
                .get(key_at..key_at + ksize)
                .ok_or_else(|| bad("key outside the page"))?
                .to_vec();
            if flags & P_BRANCH != 0 {
                let child = lo | (hi << 16) | (u64::from(nflags) << 32);
                self.walk(child, depth + 1, out)?;
            } else if flags & P_LEAF != 0 {
                if nflags & (F_SUBDATA | F_DUPDATA) != 0 {
                    continue; // sub-databases and duplicates: not the official store's
                }
                let dsize = usize::try_from(lo | (hi << 16)).unwrap_or(usize::MAX);
                if dsize > MAX_VALUE {
                    return Err(bad("a value larger than the reader allows"));
                }
                let data_at = key_at + ksize;
                let value = if nflags & F_BIGDATA != 0 {
                    let ov = word_at(&page, data_at, self.layout.word)
                        .ok_or_else(|| bad("overflow page number outside the page"))?;
                    let n = (hdr + dsize).div_ceil(self.layout.psize);
                    let pages = self.pages(ov, n)?;
                    pages[hdr..hdr + dsize].to_vec()
                } else {
                    page.get(data_at..data_at + dsize)
                        .ok_or_else(|| bad("value outside the page"))?
                        .to_vec()
                };
                out.insert(key, value);
            } else {
                return Err(bad(&format!("neither branch nor leaf (flags {flags:#x})")));
            }
        }
        Ok(())
    }
}

/// The meta page's fields that matter: (txnid, main root page or None for an empty db).
fn meta(b: &[u8], l: Layout) -> Option<(u64, Option<u64>)> {
    let m = l.header();
    if u32_at(b, m)? != MAGIC {
        return None;
    }
    // magic, version, address, mapsize, then two MDB_db: pad u32, flags u16, depth u16,
    // branch, leaf, overflow pages, entries, root (words).
    let db = m + 8 + 2 * l.word;
    let db_size = 8 + 5 * l.word;
    let main = db + db_size;
    let root = word_at(b, main + 8 + 4 * l.word, l.word)?;
    let txnid = word_at(b, main + db_size + l.word, l.word)?;
    // P_INVALID (all ones) is an empty database.
    let empty = root == u64::MAX || (l.word == 4 && root == u64::from(u32::MAX));
    Some((txnid, (!empty).then_some(root)))
}

/// All keys and values of the main database of the LMDB file at `path`.
pub fn read_main_db(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, LmdbError> {
    let io = |source| LmdbError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not = |detail: &str| LmdbError::NotLmdb {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut first = vec![0u8; 512.min(usize::try_from(len).unwrap_or(0))];
    file.read_exact_at(&mut first, 0).map_err(io)?;
    // The word size: where the magic is (16 on 64-bit writers, 12 on 32-bit ones).
    let word = [8usize, 4]
        .into_iter()
        .find(|w| u32_at(&first, w + 8) == Some(MAGIC))
        .ok_or_else(|| not("no meta page magic"))?;
    // The page size is the free database's md_pad.
    let psize = u32_at(&first, word + 8 + 8 + 2 * word)
        .map(|p| p as usize)
        .filter(|p| PAGE_SIZES.contains(p) && p.is_power_of_two())
        .ok_or_else(|| not("implausible page size"))?;
    let mut reader = Reader {
        path,
        file,
        len,
        layout: Layout { word, psize },
        visited: 0,
    };
    let metas = reader.pages(0, 2)?;
    let current = [&metas[..psize], &metas[psize..]]
        .into_iter()
        .filter_map(|b| meta(b, reader.layout))
        .max_by_key(|(txnid, _)| *txnid)
        .ok_or_else(|| not("no valid meta page"))?;
    let mut out = BTreeMap::new();
    if let Some(root) = current.1 {
        reader.walk(root, 0, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
