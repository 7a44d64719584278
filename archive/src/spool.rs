//! Taking an archive's entries in, once, in whatever order they come.
//!
//! An archive read from a pipe cannot be rewound, and `docker save` puts
//! `manifest.json` last, so nothing can wait for the manifest: each entry is
//! dealt with as it streams past and remembered by name.
//!
//! * A layer tar (recognised by content: gzip or zstd magic, a ustar header,
//!   or the all-zero block of an empty tar) is committed into the store
//!   right away. Until an image refers to it, such a layer is a stray, but a
//!   complete and valid one: its diffID is the hash of what was stored.
//! * Small files (JSON, short blobs) are kept in memory.
//! * Anything else large is copied to this load's scratch directory (or,
//!   for a directory input, left where it is).
//!
//! Afterwards [`Contents::lookup`] finds an entry by the name a manifest
//! uses, following the symlinks and hard links older archives contain.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::error::{ArchiveError, NotALayer, Result};
use super::names::{digest_in_blob_name, normalize_entry_name, resolve_symlink_target};
use rbuild_cache::store::{Store, StoreError, remove_tree};
use rbuild_oci::compress::{self, Compression};
use rbuild_oci::digest::{Digest, Hasher};
use rbuild_oci::io_error::{IoContext, IoError};

/// Entries up to this size that are not layers stay in memory.
pub(crate) const INLINE_LIMIT: u64 = 16 << 20;
/// How many links one lookup may follow before it is taken as a loop.
const MAX_LINK_HOPS: usize = 40;
/// Bytes looked at to recognise a layer tar (a tar header block).
const SNIFF_LEN: usize = 512;

/// What became of one file of the archive.
pub(crate) enum Content {
    /// A small file, kept whole.
    Bytes(Vec<u8>),
    /// A large file that did not look like a layer: spooled to scratch, or
    /// the original file of a directory input.
    File { path: PathBuf, size: u64 },
    /// A layer tar, already committed into the store.
    Layer(LayerFacts),
    /// A blob named by its digest whose bytes hash to something else.
    WrongDigest { named: Digest, actual: Digest },
    /// It looked like a layer tar but could not be unpacked. Only an error
    /// if a manifest uses it, so junk nobody refers to cannot fail a load.
    Unreadable(Arc<StoreError>),
}

/// Everything an archive held, by normalised name.
pub(crate) struct Contents {
    files: BTreeMap<String, Content>,
    /// Link name -> the (normalised) name it leads to.
    links: BTreeMap<String, String>,
    /// This load's scratch directory, removed when the contents go.
    scratch: Option<PathBuf>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = remove_tree(dir);
        }
    }
}

/// Where large entries that are not layers end up.
enum LargeEntries<'a> {
    SpoolTo(&'a Path),
    LeaveAt(PathBuf),
}

impl Contents {
    /// Reads a tar stream (plain, gzip or zstd) to its end.
    pub fn from_stream(store: &Store, reader: Box<dyn Read>) -> Result<Contents> {
        let mut raw = BufReader::with_capacity(1 << 16, reader);
        if raw.fill_buf().map_err(ArchiveError::Read)?.is_empty() {
            return Err(ArchiveError::Empty);
        }
        let scratch = store.temp_dir("load")?;
        let mut contents =
            Contents { files: BTreeMap::new(), links: BTreeMap::new(), scratch: Some(scratch.clone()) };
        let ended = Rc::new(Cell::new(false));
        let input =
            EndWatch { inner: compress::decompress_auto(raw).map_err(read_error)?, ended: ended.clone() };
        // The tar crate reports an archive that ends inside a header block
        // or while skipping an entry's data as a plain error; that the input
        // had run out by then is what says the archive was cut short.
        let stream_error = |e: io::Error| {
            if ended.get() {
                ArchiveError::Truncated { detail: e.to_string(), source: Some(e) }
            } else {
                read_error(e)
            }
        };
        let mut archive = tar::Archive::new(input);
        for entry in archive.entries().map_err(stream_error)? {
            let first = contents.files.is_empty() && contents.links.is_empty();
            let mut entry = entry.map_err(|e| match stream_error(e) {
                // Garbage where the first header should be: not a tar at all.
                ArchiveError::Read(e) if first => ArchiveError::NotAnArchive(first_line(&e.to_string())),
                other => other,
            })?;
            let raw_name =
                String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| ArchiveError::UnsafeName {
                    name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    reason: "names must be UTF-8",
                })?;
            let name = normalize_entry_name(&raw_name)
                .map_err(|reason| ArchiveError::UnsafeName { name: raw_name.clone(), reason })?;
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let content =
                        take_entry(store, &name, size, &mut entry, LargeEntries::SpoolTo(&scratch))?;
                    contents.files.insert(name, content);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let resolved = if kind == tar::EntryType::Link {
                        normalize_entry_name(&target).ok()
                    } else {
                        resolve_symlink_target(&name, &target)
                    };
                    let resolved = resolved.ok_or(ArchiveError::UnsafeName {
                        name: format!("{raw_name} -> {target}"),
                        reason: "the link leads outside the archive",
                    })?;
                    contents.links.insert(name, resolved);
                }
                // Directories need no record; PAX global headers and the
                // like say nothing about images.
                _ => {}
            }
        }
        if contents.files.is_empty() && contents.links.is_empty() {
            return Err(ArchiveError::NoManifest);
        }
        Ok(contents)
    }

    /// Reads an unpacked archive (an OCI layout directory, or an extracted
    /// docker-archive).
    pub fn from_dir(store: &Store, dir: &Path) -> Result<Contents> {
        if !dir.is_dir() {
            let not_dir = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
            return Err(IoError::new("load from", dir, not_dir).into());
        }
        let mut contents = Contents { files: BTreeMap::new(), links: BTreeMap::new(), scratch: None };
        let walker = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name();
        for item in walker {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                IoError::new("read", path, e.into())
            })?;
            let Ok(relative) = item.path().strip_prefix(dir) else { continue };
            let Some(relative) = relative.to_str() else {
                return Err(ArchiveError::UnsafeName {
                    name: relative.to_string_lossy().into_owned(),
                    reason: "names must be UTF-8",
                });
            };
            let name = normalize_entry_name(relative)
                .map_err(|reason| ArchiveError::UnsafeName { name: relative.to_string(), reason })?;
            let file_type = item.file_type();
            if file_type.is_symlink() {
                let target = fs::read_link(item.path()).ctx("read link", item.path())?;
                let target = target.to_string_lossy().into_owned();
                let resolved =
                    resolve_symlink_target(&name, &target).ok_or_else(|| ArchiveError::UnsafeName {
                        name: format!("{name} -> {target}"),
                        reason: "the link leads outside the directory",
                    })?;
                contents.links.insert(name, resolved);
            } else if file_type.is_file() {
                let mut file = File::open(item.path()).ctx("open", item.path())?;
                let size = file.metadata().ctx("stat", item.path())?.len();
                let content = take_entry(
                    store,
                    &name,
                    size,
                    &mut file,
                    LargeEntries::LeaveAt(item.path().to_path_buf()),
                )?;
                contents.files.insert(name, content);
            }
        }
        Ok(contents)
    }

    /// Whether the archive has a file (or a link to one) by this name.
    pub fn has(&self, name: &str) -> bool {
        matches!(self.lookup(name), Ok(Some(_)))
    }

    /// Finds a file by the name a manifest gives it, following links. The
    /// name found is returned too, for messages and digest checks.
    pub fn lookup(&self, requested: &str) -> Result<Option<(String, &Content)>> {
        let mut name = normalize_entry_name(requested)
            .map_err(|reason| ArchiveError::UnsafeName { name: requested.to_string(), reason })?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(content) = self.files.get(&name) {
                return Ok(Some((name, content)));
            }
            match self.follow_one_link(&name) {
                Some(next) => name = next,
                None => return Ok(None),
            }
        }
        Err(ArchiveError::UnsafeName { name: requested.to_string(), reason: "too many levels of links" })
    }

    /// Replaces the longest prefix of `name` that is a link by its target.
    fn follow_one_link(&self, name: &str) -> Option<String> {
        let parts: Vec<&str> = name.split('/').collect();
        (1..=parts.len()).rev().find_map(|n| {
            let prefix = parts[..n].join("/");
            let target = self.links.get(&prefix)?;
            let rest = &parts[n..];
            Some(if rest.is_empty() { target.clone() } else { format!("{target}/{}", rest.join("/")) })
        })
    }

    /// The whole content of a small file (JSON), with its digest.
    pub fn read_small(
        &self,
        requested: &str,
        what: &'static str,
        needed_for: &str,
    ) -> Result<(String, Vec<u8>)> {
        let Some((name, content)) = self.lookup(requested)? else {
            return Err(ArchiveError::MissingFile {
                path: requested.to_string(),
                needed_for: needed_for.to_string(),
            });
        };
        let bytes = match content {
            Content::Bytes(bytes) => bytes.clone(),
            Content::File { path, size } => {
                if *size > INLINE_LIMIT {
                    return Err(ArchiveError::TooLarge {
                        path: name,
                        what,
                        size: *size,
                        limit: INLINE_LIMIT,
                    });
                }
                fs::read(path).ctx("read", path)?
            }
            Content::Layer(_) | Content::Unreadable(_) | Content::WrongDigest { .. } => {
                return Err(ArchiveError::InvalidJson {
                    path: name,
                    what,
                    message: "it is a tar archive, not JSON".into(),
                });
            }
        };
        Ok((name, bytes))
    }
}

/// Maps errors from reading the outer stream: a decompressor that runs out
/// of bytes in the middle of its stream says so with `UnexpectedEof`.
fn read_error(err: io::Error) -> ArchiveError {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        ArchiveError::Truncated { detail: err.to_string(), source: Some(err) }
    } else {
        ArchiveError::Read(err)
    }
}

/// Notes whether the reader it wraps has reached its end.
struct EndWatch<R> {
    inner: R,
    ended: Rc<Cell<bool>>,
}

impl<R: Read> Read for EndWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        Ok(n)
    }
}

/// An error message cut to something printable (the tar reader quotes the
/// garbage it found).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Counts the bytes read through it, and hashes them when asked to.
struct Measured<R> {
    inner: R,
    count: u64,
    hasher: Option<Hasher>,
}

impl<R: Read> Read for Measured<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Files whose names say they are metadata, never layers.
fn is_metadata_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    matches!(base, "manifest.json" | "index.json" | "repositories" | "oci-layout" | "json" | "VERSION")
        || base.ends_with(".json")
}

fn looks_like_json(head: &[u8]) -> bool {
    matches!(head.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{') | Some(b'['))
}

/// A tar stream starts with a header block carrying the ustar magic at
/// offset 257 (POSIX and GNU both), or, for an empty tar such as Docker's
/// empty layer, with an all-zero block.
fn looks_like_layer(head: &[u8]) -> bool {
    match Compression::sniff(head) {
        Compression::Gzip | Compression::Zstd => true,
        Compression::None => {
            head.len() == SNIFF_LEN && (&head[257..262] == b"ustar" || head.iter().all(|&b| b == 0))
        }
        Compression::Bzip2 | Compression::Xz => false,
    }
}

fn truncated(name: &str, got: u64, size: u64) -> ArchiveError {
    ArchiveError::Truncated { detail: format!("{name} ends after {got} of its {size} bytes"), source: None }
}

/// Deals with one file of the archive: `reader` yields its `size` bytes.
fn take_entry(
    store: &Store,
    name: &str,
    size: u64,
    reader: &mut dyn Read,
    large: LargeEntries<'_>,
) -> Result<Content> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    reader.take(SNIFF_LEN as u64).read_to_end(&mut head).map_err(read_error)?;
    if (head.len() as u64) < size.min(SNIFF_LEN as u64) {
        return Err(truncated(name, head.len() as u64, size));
    }
    if !is_metadata_name(name) && !looks_like_json(&head) && looks_like_layer(&head) {
        return commit_streamed_layer(store, name, size, &head, reader);
    }
    let mut whole = Measured { inner: (&head[..]).chain(reader), count: 0, hasher: None };
    if size <= INLINE_LIMIT {
        let mut bytes = Vec::with_capacity(size as usize);
        whole.read_to_end(&mut bytes).map_err(read_error)?;
        if whole.count < size {
            return Err(truncated(name, whole.count, size));
        }
        return Ok(Content::Bytes(bytes));
    }
    match large {
        LargeEntries::LeaveAt(path) => Ok(Content::File { path, size }),
        LargeEntries::SpoolTo(dir) => {
            let path = dir.join(format!("entry-{}", rbuild_cache::store::unique_suffix()));
            let mut file = File::create(&path).ctx("create", &path)?;
            io::copy(&mut whole, &mut file).map_err(read_error)?;
            if whole.count < size {
                return Err(truncated(name, whole.count, size));
            }
            Ok(Content::File { path, size })
        }
    }
}

/// Commits a layer tar as it streams, measuring the raw bytes: their digest
/// is the blob digest an OCI manifest names. For a plain tar that digest is
/// the diffID the store computes anyway, so it is hashed only once.
fn commit_streamed_layer(
    store: &Store,
    name: &str,
    size: u64,
    head: &[u8],
    rest: &mut dyn Read,
) -> Result<Content> {
    let compressed = matches!(Compression::sniff(head), Compression::Gzip | Compression::Zstd);
    let named_digest = digest_in_blob_name(name);
    // A plain blob named by its digest whose layer is already stored needs
    // only its hash checked, not a second unpacking.
    let already_stored = match named_digest {
        Some(d) if !compressed => store.layer(&d)?.map(|_| d),
        _ => None,
    };
    let hash_raw_bytes = compressed || already_stored.is_some();
    let mut measured =
        Measured { inner: head.chain(rest), count: 0, hasher: hash_raw_bytes.then(Hasher::new) };

    if let Some(diff_id) = already_stored {
        io::copy(&mut measured, &mut io::sink()).map_err(read_error)?;
        if measured.count < size {
            return Err(truncated(name, measured.count, size));
        }
        let blob_digest = measured.hasher.take().map(Hasher::finish).unwrap_or(diff_id);
        if blob_digest != diff_id {
            return Ok(Content::WrongDigest { named: diff_id, actual: blob_digest });
        }
        return Ok(Content::Layer(LayerFacts { diff_id, blob_digest, blob_size: size }));
    }

    let committed = store.commit_tar(&mut measured, None);
    // A zstd frame can end before the entry does; the blob digest covers
    // every byte, so read the rest too.
    let drained = io::copy(&mut measured, &mut io::sink());
    if measured.count < size {
        return Err(truncated(name, measured.count, size));
    }
    drained.map_err(read_error)?;
    match committed {
        Ok(layer) => {
            let blob_digest = measured.hasher.take().map(Hasher::finish).unwrap_or(layer.meta.diff_id);
            Ok(Content::Layer(LayerFacts { diff_id: layer.meta.diff_id, blob_digest, blob_size: size }))
        }
        Err(e) => Ok(Content::Unreadable(Arc::new(e))),
    }
}

/// What a layer blob turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerFacts {
    pub diff_id: Digest,
    /// sha256 of the bytes as they are in the archive (compressed or not).
    pub blob_digest: Digest,
    pub blob_size: u64,
}

/// The layer a file of the archive holds, committing it now if the
/// streaming pass did not take it for one (an unusual tar dialect, or a
/// large file of a directory input). `Err` says why it is not a layer.
pub(crate) fn layer_facts(store: &Store, content: &Content) -> std::result::Result<LayerFacts, NotALayer> {
    let reader: Box<dyn Read + '_> = match content {
        Content::Layer(facts) => return Ok(*facts),
        Content::Unreadable(error) => return Err(NotALayer::Unreadable(error.clone())),
        Content::WrongDigest { named, actual } => {
            return Err(NotALayer::WrongDigest { named: *named, actual: *actual });
        }
        Content::Bytes(bytes) => Box::new(&bytes[..]),
        Content::File { path, .. } => Box::new(File::open(path).ctx("open", path)?),
    };
    let mut measured = Measured { inner: reader, count: 0, hasher: Some(Hasher::new()) };
    let layer = store.commit_tar(&mut measured, None).map_err(|e| NotALayer::Unreadable(Arc::new(e)))?;
    io::copy(&mut measured, &mut io::sink()).map_err(NotALayer::Read)?;
    let blob_digest = measured.hasher.take().map(Hasher::finish).unwrap_or(layer.meta.diff_id);
    Ok(LayerFacts { diff_id: layer.meta.diff_id, blob_digest, blob_size: measured.count })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of two small JSON files: two header blocks, two data blocks,
    /// and the end-of-archive marker.
    fn two_file_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for name in ["a.json", "b.json"] {
            let mut header = tar::Header::new_ustar();
            header.set_size(2);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, &b"{}"[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn load(bytes: Vec<u8>) -> Result<Contents> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        Contents::from_stream(&store, Box::new(io::Cursor::new(bytes)))
    }

    #[test]
    fn a_stream_that_ends_inside_a_header_is_truncated() {
        let mut bytes = two_file_tar();
        bytes.truncate(1024 + 100);
        match load(bytes) {
            Err(ArchiveError::Truncated { source: Some(_), .. }) => {}
            other => panic!("expected truncation: {:?}", other.err()),
        }
    }

    #[test]
    fn a_corrupt_header_with_input_left_is_not_truncation() {
        let mut bytes = two_file_tar();
        // Break the second header's checksum; the rest of the stream is there.
        bytes[1024 + 148..1024 + 156].copy_from_slice(b"0000000\0");
        match load(bytes) {
            Err(ArchiveError::Read(_)) => {}
            other => panic!("expected a read error: {:?}", other.err()),
        }
    }
}
