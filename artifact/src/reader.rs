//! The streaming reader: walks the outer tar in the fixed member order, verifies the
//! signature and every checksum, parses the header, then hands out the payload files of
//! `data/0000.tar*` as chunk streams whose final chunk is held back until the file — and,
//! for the last file, the whole artifact — has been verified.

use futures_util::StreamExt;
use tokio::io::{AsyncRead, BufReader};
use tokio_tar::{Archive, Entries, Entry};

use super::compression::{BoxRead, Compression};
use super::error::ArtifactError;
use super::header::{parse_augment, parse_header, ArtifactHeader};
use super::io::{map_io, read_bounded};
use super::manifest::{check_digest, sha256, Manifest};
use super::member::{check_entry, entry_path, header_number, MemberKind};
use super::payload::{FileInfo, FileStream};
use super::signature::{verify_manifest, SignatureStatus, MAX_SIGNATURE_LEN};
use super::tarend::finish_tar;
use super::targuard::{tar_guard, TarGuard};
use super::ReadOptions;

const OUTER: &str = "artifact";
const ORDER: &str = "members must come in the order version, manifest, manifest.sig, \
                     manifest-augment, header.tar*, header-augment.tar*, data/0000.tar*";

/// What the reader learned before the first payload byte: safe to act on, because the
/// manifest signature (when keys are configured) and the header checksum were verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArtifactInfo {
    /// 2 or 3.
    pub format_version: u32,
    pub signature: SignatureStatus,
    /// Compression of the header member (`none`, `gzip`, `xz`, `zstd`).
    pub compression: Compression,
    pub header: ArtifactHeader,
}

/// The outer tar reads through a [`TarGuard`] that bounds extension entries.
type Outer<R> = TarGuard<R>;
type OuterEntry<R> = Entry<Archive<Outer<R>>>;
type OuterTar<R> = (Archive<Outer<R>>, Entries<Outer<R>>);
type InnerEntry = Entry<Archive<BoxRead>>;

/// The data member being read: its inner tar and, between files, the file after the
/// current one, already checked (looked at early to know whether the current file is the
/// last, and to refuse a bad one before the current file's tail goes out).
struct DataTar {
    archive: Archive<BoxRead>,
    entries: Entries<BoxRead>,
    member: String,
    next: Option<FileStream>,
    files: Vec<String>,
}

/// A Mender Artifact being read from any byte stream. Use [`ArtifactReader::open`], then
/// [`next_file`](Self::next_file) / [`read_chunk`](Self::read_chunk) until `next_file`
/// returns `None`, then [`finish`](Self::finish).
///
/// Invariants: no payload byte is handed out before the header was verified; the last chunk
/// of a file is handed out only after that file's SHA-256 matched its manifest line, and the
/// last chunk of the last file only after the whole artifact (every manifest line matched,
/// both tars properly ended) was verified.
pub struct ArtifactReader<R: AsyncRead + Unpin + Send + 'static> {
    info: ArtifactInfo,
    manifest: Manifest,
    opts: ReadOptions,
    /// The outer tar and its entries stream; taken when the artifact is completed.
    outer: Option<OuterTar<R>>,
    /// The member after the header(s), looked at during `open`.
    pending: Option<(OuterEntry<R>, MemberKind, String)>,
    data: Option<DataTar>,
    current: Option<FileStream>,
    /// Set once everything after the last payload byte has been verified.
    complete: bool,
}

struct Member<R: AsyncRead + Unpin> {
    entry: OuterEntry<R>,
    kind: MemberKind,
    name: String,
}

async fn next_member<R: AsyncRead + Unpin + Send>(
    outer: &mut Entries<Outer<R>>,
) -> Result<Option<Member<R>>, ArtifactError> {
    let Some(entry) = outer.next().await else {
        return Ok(None);
    };
    let entry = entry.map_err(|e| tar_err(OUTER, e))?;
    let name = entry_path(OUTER, entry.path_bytes())?;
    check_entry(OUTER, &name, entry.header(), entry.effective_size(), false)?;
    let kind = MemberKind::classify(&name)?;
    Ok(Some(Member { entry, kind, name }))
}

/// Tar-level errors get their own variant so messages say "malformed tar".
fn tar_err(context: &str, e: std::io::Error) -> ArtifactError {
    match map_io(context, e) {
        ArtifactError::Io { context, source } if source.kind() != std::io::ErrorKind::Other => {
            ArtifactError::Io { context, source }
        }
        ArtifactError::Io { context, source } => ArtifactError::Tar {
            context,
            detail: source.to_string(),
        },
        other => other,
    }
}

fn misplaced(m: &str, expected: &str) -> ArtifactError {
    ArtifactError::unexpected(m, format!("found where {expected} was expected; {ORDER}"))
}

impl<R: AsyncRead + Unpin + Send + 'static> ArtifactReader<R> {
    /// Reads and verifies everything up to the first payload byte.
    pub async fn open(source: R, opts: ReadOptions) -> Result<Self, ArtifactError> {
        let limits = opts.limits.clone();
        let mut outer_archive = Archive::new(tar_guard(source, OUTER));
        // `outer` borrows nothing: tokio-tar's entries share the archive by reference count.
        let mut outer = outer_archive.entries().map_err(|e| tar_err(OUTER, e))?;

        // 1. version
        let mut m = next_member(&mut outer)
            .await?
            .ok_or_else(|| ArtifactError::Truncated("no 'version' member".into()))?;
        if m.kind != MemberKind::Version {
            return Err(misplaced(&m.name, "'version'"));
        }
        let version_bytes = read_bounded(&mut m.entry, limits.small_member, "version").await?;
        let format_version = parse_version(&version_bytes)?;

        // 2. manifest
        let mut m = next_member(&mut outer)
            .await?
            .ok_or_else(|| ArtifactError::Truncated("no 'manifest' after 'version'".into()))?;
        if m.kind != MemberKind::Manifest {
            return Err(misplaced(&m.name, "'manifest'"));
        }
        let manifest_bytes = read_bounded(&mut m.entry, limits.small_member, "manifest").await?;
        let mut manifest = Manifest::default();
        manifest.add_signed(&manifest_bytes)?;

        // 3. manifest.sig, checked before anything the manifest covers is trusted.
        let mut m = next_member(&mut outer)
            .await?
            .ok_or_else(|| ArtifactError::Truncated("no header after 'manifest'".into()))?;
        let signature = if m.kind == MemberKind::ManifestSig {
            let sig = read_bounded(&mut m.entry, MAX_SIGNATURE_LEN, "manifest.sig").await?;
            let status = verify_manifest(&manifest_bytes, &sig, &opts.verify_keys)
                .map_err(ArtifactError::Signature)?;
            m = next_member(&mut outer)
                .await?
                .ok_or_else(|| ArtifactError::Truncated("no header after 'manifest.sig'".into()))?;
            status
        } else if opts.verify_keys.is_empty() {
            SignatureStatus::Unsigned
        } else {
            return Err(ArtifactError::Signature(
                "expecting signed artifact, but no signature file found".into(),
            ));
        };
        manifest.verify("version", &sha256(&version_bytes))?;

        // 4. manifest-augment (v3 only)
        let mut augmented = false;
        if m.kind == MemberKind::ManifestAugment {
            if format_version != 3 {
                return Err(ArtifactError::unexpected(
                    &m.name,
                    "not allowed in format v2",
                ));
            }
            let text = read_bounded(&mut m.entry, limits.small_member, "manifest-augment").await?;
            manifest.add_augment(&text)?;
            augmented = true;
            m = next_member(&mut outer).await?.ok_or_else(|| {
                ArtifactError::Truncated("no header after 'manifest-augment'".into())
            })?;
        }

        // 5. header.tar*: read whole (bounded), verified, then parsed.
        let MemberKind::Header(compression) = m.kind else {
            return Err(misplaced(&m.name, "header.tar*"));
        };
        // The name is checked against the manifest before a byte of it is read.
        let expected = manifest.take(&m.name)?;
        let header_bytes = read_bounded(&mut m.entry, limits.header_member, &m.name).await?;
        check_digest(&m.name, &expected, &sha256(&header_bytes))?;
        let mut header =
            parse_header(&m.name, header_bytes, compression, format_version, &limits).await?;

        // 6. header-augment.tar*, then whatever comes next is kept for the data phase.
        let mut next = next_member(&mut outer).await?;
        if let Some(mut a) = next.take_if(|a| matches!(a.kind, MemberKind::HeaderAugment(_))) {
            let MemberKind::HeaderAugment(c) = a.kind else {
                unreachable!("matched above")
            };
            if !augmented {
                return Err(ArtifactError::unexpected(
                    &a.name,
                    "header-augment without manifest-augment",
                ));
            }
            let expected = manifest.take(&a.name)?;
            let bytes = read_bounded(&mut a.entry, limits.header_member, &a.name).await?;
            check_digest(&a.name, &expected, &sha256(&bytes))?;
            header.augment = Some(parse_augment(&a.name, bytes, c, &limits).await?);
            next = next_member(&mut outer).await?;
        }
        let pending = match next {
            None => None,
            Some(d) if matches!(d.kind, MemberKind::Data(_)) => Some((d.entry, d.kind, d.name)),
            Some(other) if other.kind.rank() <= MemberKind::Header(compression).rank() => {
                return Err(ArtifactError::unexpected(
                    &other.name,
                    format!("out of order or repeated after the header; {ORDER}"),
                ))
            }
            Some(other) => return Err(misplaced(&other.name, "data/0000.tar*")),
        };
        Ok(ArtifactReader {
            info: ArtifactInfo {
                format_version,
                signature,
                compression,
                header,
            },
            manifest,
            opts,
            outer: Some((outer_archive, outer)),
            pending,
            data: None,
            current: None,
            complete: false,
        })
    }

    /// What the artifact is; available before any payload byte is read.
    pub fn info(&self) -> &ArtifactInfo {
        &self.info
    }

    /// Moves to the next payload file. Returns `None` once the data tar has no more files.
    /// The previous file must have been read to its end.
    pub async fn next_file(&mut self) -> Result<Option<FileInfo>, ArtifactError> {
        if let Some(cur) = &self.current {
            if !cur.is_done() {
                return Err(ArtifactError::Usage(format!(
                    "payload file '{}' was not read to its end",
                    cur.info().name
                )));
            }
            self.current = None;
        }
        if self.data.is_none() && !self.complete {
            match self.pending.take() {
                None => {
                    // The outer tar already ended after the header: no data member.
                    self.complete_artifact(false).await?;
                    return Ok(None);
                }
                Some((entry, MemberKind::Data(c), name)) => self.open_data(entry, c, name)?,
                Some((_, _, name)) => return Err(misplaced(&name, "data/0000.tar*")),
            }
        }
        let Some(data) = self.data.as_mut() else {
            return Ok(None);
        };
        let file = match data.next.take() {
            Some(f) => f,
            None => match next_inner(data).await? {
                Some(entry) => self.start_file(entry)?,
                None => {
                    self.complete_artifact(true).await?;
                    return Ok(None);
                }
            },
        };
        let info = file.info().clone();
        self.current = Some(file);
        Ok(Some(info))
    }

    fn open_data(
        &mut self,
        entry: OuterEntry<R>,
        compression: Compression,
        member: String,
    ) -> Result<(), ArtifactError> {
        let buffered = BufReader::with_capacity(super::CHUNK, entry);
        let decoded = compression.decoder(buffered, self.opts.limits.decoder_memory);
        let guarded: BoxRead = Box::pin(tar_guard(decoded, member.clone()));
        let mut archive = Archive::new(guarded);
        let entries = archive.entries().map_err(|e| tar_err(&member, e))?;
        self.data = Some(DataTar {
            archive,
            entries,
            member,
            next: None,
            files: Vec::new(),
        });
        Ok(())
    }

    fn start_file(&mut self, entry: InnerEntry) -> Result<FileStream, ArtifactError> {
        let data = self
            .data
            .as_mut()
            .ok_or_else(|| ArtifactError::Usage("payload file without a data member".into()))?;
        let member = data.member.as_str();
        let name = entry_path(member, entry.path_bytes())?;
        let size = entry.effective_size();
        check_entry(member, &name, entry.header(), size, false)?;
        if name.contains('/') {
            return Err(ArtifactError::unexpected(
                format!("{member}/{name}"),
                "payload files must sit at the root of the data tar",
            ));
        }
        if self.info.header.payload.payload_type.is_none() {
            return Err(ArtifactError::unexpected(
                format!("{member}/{name}"),
                "an empty-payload (bootstrap) artifact must not carry data files",
            ));
        }
        if let Some(listed) = &self.info.header.payload.v2_files {
            if !listed.contains(&name) {
                return Err(ArtifactError::unexpected(
                    format!("{member}/{name}"),
                    "not in the header's files list",
                ));
            }
        }
        if let Some(max) = self.opts.limits.payload_file {
            if size > max {
                return Err(ArtifactError::TooLarge {
                    what: format!("payload file '{name}' ({size} bytes)"),
                    limit: max,
                });
            }
        }
        let mode = header_number(member, &name, "mode", entry.header().mode())? as u32;
        let mtime = header_number(member, &name, "mtime", entry.header().mtime())?;
        let expected = self.manifest.take(&format!("data/0000/{name}"))?;
        data.files.push(name.clone());
        let info = FileInfo {
            name,
            size,
            mode,
            mtime,
            sha256: expected,
        };
        Ok(FileStream::new(entry, info))
    }

    /// The next chunk of the current payload file, or `None` at its verified end.
    pub async fn read_chunk(&mut self) -> Result<Option<bytes::Bytes>, ArtifactError> {
        let Some(file) = self.current.as_mut() else {
            return Err(ArtifactError::Usage(
                "read_chunk without a current file".into(),
            ));
        };
        if file.is_done() {
            return Ok(None);
        }
        let member = self
            .data
            .as_ref()
            .map(|d| d.member.clone())
            .unwrap_or_default();
        match file.read(&member).await? {
            super::payload::Step::Chunk(c) => Ok(Some(c)),
            super::payload::Step::Verified(tail) => {
                // The file is good. Before its tail goes out, find out whether it was the
                // last one; if so, verify the rest of the artifact first.
                let data = self.data.as_mut().ok_or_else(|| {
                    ArtifactError::Usage("payload file without a data member".into())
                })?;
                match next_inner(data).await? {
                    Some(entry) => {
                        let next = self.start_file(entry)?;
                        if let Some(data) = self.data.as_mut() {
                            data.next = Some(next);
                        }
                    }
                    None => self.complete_artifact(true).await?,
                }
                Ok(tail)
            }
        }
    }

    /// Everything after the last payload byte: the inner tar's end, the v2 file list, the
    /// outer tar's end, every manifest line matched.
    /// `outer_open`: whether the outer tar still has to be read to its end (false when its
    /// entries stream already ended right after the header).
    async fn complete_artifact(&mut self, outer_open: bool) -> Result<(), ArtifactError> {
        if self.complete {
            return Ok(());
        }
        if let Some(data) = self.data.take() {
            let DataTar {
                archive,
                entries,
                member,
                files,
                ..
            } = data;
            drop(entries);
            // Drains the decoder: trailing garbage after the compressed stream fails here.
            finish_tar(archive, &member).await?;
            if let Some(listed) = &self.info.header.payload.v2_files {
                if let Some(missing) = listed.iter().find(|f| !files.contains(f)) {
                    return Err(ArtifactError::MissingFromArtifact {
                        name: missing.clone(),
                        member: "headers/0000/files".into(),
                    });
                }
            }
        }
        if let Some((archive, mut entries)) = self.outer.take() {
            if !outer_open {
            } else if let Some(m) = next_member(&mut entries).await? {
                return Err(ArtifactError::unexpected(
                    &m.name,
                    "after the data member; data/0000.tar* must be the last member",
                ));
            }
            drop(entries);
            finish_tar(archive, OUTER).await?;
        }
        self.manifest.ensure_all_seen()?;
        self.complete = true;
        Ok(())
    }

    /// Reads whatever payload is left (verifying it), then checks the end of the artifact.
    pub async fn finish(mut self) -> Result<ArtifactInfo, ArtifactError> {
        loop {
            if self.current.as_ref().is_some_and(|c| !c.is_done()) {
                while self.read_chunk().await?.is_some() {}
            }
            if self.next_file().await?.is_none() {
                break;
            }
        }
        Ok(self.info)
    }
}

async fn next_inner(data: &mut DataTar) -> Result<Option<InnerEntry>, ArtifactError> {
    match data.entries.next().await {
        None => Ok(None),
        Some(e) => e.map(Some).map_err(|e| tar_err(&data.member, e)),
    }
}

/// `version`: `{"format":"mender","version":N}`, parsed as JSON, N = 2 or 3.
fn parse_version(bytes: &[u8]) -> Result<u32, ArtifactError> {
    #[derive(serde::Deserialize)]
    struct V {
        format: String,
        version: u32,
    }
    let v: V = serde_json::from_slice(bytes)
        .map_err(|e| ArtifactError::Version(format!("'version' is not valid: {e}")))?;
    if v.format != "mender" {
        return Err(ArtifactError::Version(format!(
            "format is '{}', not 'mender'",
            v.format
        )));
    }
    match v.version {
        2 | 3 => Ok(v.version),
        n => Err(ArtifactError::Version(format!(
            "format version {n} (supported: 3, and 2 for reading)"
        ))),
    }
}
