//! Apply: a layer tar becomes an overlay snapshot directory.
//!
//! `.wh.<name>` entries become whiteouts and `.wh..wh..opq` entries mark
//! their directory opaque (see [`super::overlay`]); everything else is
//! created with its mode (setuid/setgid/sticky included), owner (when
//! asked), mtime and xattrs, directories getting theirs after their
//! content is written.
//!
//! # What an entry name may be
//!
//! Layer tars name entries with relative paths (`usr/bin/env`, `etc/`).
//! Each name is split on `/`; empty and `.` components are dropped, so
//! `./etc//passwd` is `etc/passwd` and `./` is the destination itself
//! (which only takes directory metadata). Refused, with an error naming
//! the entry:
//!
//! * absolute names (a leading `/`): Docker never writes them, and
//!   quietly re-rooting them would hide a broken or hostile tar;
//! * any `..` component, even one that would stay inside;
//! * NUL bytes;
//! * whiteouts of nothing, `.` or `..` (`.wh.`, `.wh..`, `.wh...`), and
//!   whiteout names used as directories (`.wh.x/y`);
//! * hard links whose target is not a non-directory entry that came
//!   earlier in the same tar (that rules out targets outside the layer);
//! * any entry whose parent is, on disk, a symlink or a file: creation
//!   never follows symlinks (see [`super::safe_tree`]), so `evil -> /etc`
//!   followed by `evil/passwd` fails and writes nothing outside `dest`.
//!
//! A later entry for the same name replaces the earlier one, as with tar
//! itself: a directory entry for an existing directory updates its
//! metadata and keeps its content; anything else removes what was there
//! first (a directory with its whole subtree, without following links).
//! Entries under AUFS metadata names (`.wh..wh.*`) are skipped.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use super::LayerStats;
use super::error::LayerError;
use super::overlay::{AUFS_META_PREFIX, OPAQUE_MARKER, OverlayXattrs, WHITEOUT_PREFIX};
use super::safe_tree::{NodeAttrs, SafeTree, SpecialKind, TreeOptions};
use super::tar_reader::{ReadEntry, ReadKind, TarReader};
use rbuild_oci::compress::{Compression, read_head};

/// How to apply a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyOptions {
    /// Namespace of the opaque (and fallback whiteout) xattrs to write.
    pub xattr_prefix: OverlayXattrs,
    /// Give files the uid/gid recorded in the tar (needs root). Otherwise
    /// everything belongs to the caller.
    pub same_owner: bool,
    /// Leave character and block devices out (they cannot be created
    /// without root). Fifos are still created.
    pub skip_devices: bool,
}

impl ApplyOptions {
    /// Owners when running as root (in a user namespace too), devices only
    /// as root of the host.
    pub fn for_current_user(xattr_prefix: OverlayXattrs) -> ApplyOptions {
        let root = nix::unistd::geteuid().is_root();
        ApplyOptions { xattr_prefix, same_owner: root, skip_devices: !super::has_host_root() }
    }
}

/// Unpacks the uncompressed layer tar `tar` into the snapshot directory
/// `dest` (created if missing; normally empty). Reads `tar` to its end,
/// past the end-of-archive marker, so a hashing reader underneath sees
/// every byte.
pub fn apply_layer_tar<R: Read>(tar: R, dest: &Path, opts: &ApplyOptions) -> Result<LayerStats, LayerError> {
    let mut reader = TarReader::new(tar);
    let mut tree = SafeTree::open(dest, TreeOptions { chown: opts.same_owner, prefix: opts.xattr_prefix })?;
    // Non-directory entries created so far: the only valid hard-link targets.
    let mut link_targets: HashSet<Vec<Vec<u8>>> = HashSet::new();
    let mut stats = LayerStats::default();

    while let Some(entry) = reader.next_entry()? {
        stats.entries += 1;
        let name = entry.path.as_slice();
        let components = normalize(name).map_err(|reason| LayerError::unsafe_entry(name, reason))?;

        match overlay_meaning(&components).map_err(|reason| LayerError::unsafe_entry(name, reason))? {
            OverlayMeaning::Plain => {}
            OverlayMeaning::OpaqueMarker { dir } => {
                tree.mark_opaque(dir, name)?;
                continue;
            }
            OverlayMeaning::Whiteout { deleted } => {
                link_targets.remove(&deleted);
                tree.make_whiteout(&deleted, entry.mtime, entry.mtime_nanos, name)?;
                continue;
            }
            OverlayMeaning::AufsMetadata => {
                tracing::debug!(entry = %String::from_utf8_lossy(name), "skipping AUFS metadata entry");
                continue;
            }
        }
        if entry.kind == ReadKind::Dir {
            link_targets.remove(&components);
        }
        let made = make_node(&mut tree, &mut reader, &entry, &components, &link_targets, opts)?;
        stats.content_bytes += made.content_bytes;
        if made.link_target {
            link_targets.insert(components);
        }
    }

    tree.finish()?;
    stats.tar_bytes = reader.finish()?;
    Ok(stats)
}

/// What making one node did.
struct Made {
    content_bytes: u64,
    /// A later hard link may point at it (a non-directory that was made).
    link_target: bool,
}

/// Makes the node a plain entry stands for at `components`.
fn make_node<R: Read>(
    tree: &mut SafeTree,
    reader: &mut TarReader<R>,
    entry: &ReadEntry,
    components: &[Vec<u8>],
    link_targets: &HashSet<Vec<Vec<u8>>>,
    opts: &ApplyOptions,
) -> Result<Made, LayerError> {
    let name = entry.path.as_slice();
    let attrs = NodeAttrs {
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime,
        mtime_nanos: entry.mtime_nanos,
        xattrs: &entry.xattrs,
    };
    let mut made = Made { content_bytes: 0, link_target: true };
    match entry.kind {
        ReadKind::Dir => {
            tree.make_dir(components, &attrs, name)?;
            made.link_target = false;
        }
        ReadKind::File => {
            made.content_bytes =
                tree.make_file(components, &attrs, name, |file| reader.copy_content(file, name))?;
        }
        ReadKind::Symlink => {
            if entry.link_target.is_empty() {
                return Err(LayerError::unsafe_entry(name, "symlink with an empty target"));
            }
            if entry.link_target.contains(&0) {
                return Err(LayerError::unsafe_entry(name, "symlink target contains a NUL byte"));
            }
            tree.make_symlink(components, &entry.link_target, &attrs, name)?;
        }
        ReadKind::HardLink => {
            let target = hard_link_target(entry, components, link_targets)?;
            tree.make_hardlink(components, &target, name)?;
        }
        ReadKind::CharDevice | ReadKind::BlockDevice if opts.skip_devices => {
            tracing::debug!(entry = %String::from_utf8_lossy(name), "skipping device node");
            made.link_target = false;
        }
        ReadKind::CharDevice | ReadKind::BlockDevice | ReadKind::Fifo => {
            let kind = match entry.kind {
                ReadKind::CharDevice => SpecialKind::CharDevice,
                ReadKind::BlockDevice => SpecialKind::BlockDevice,
                _ => SpecialKind::Fifo,
            };
            tree.make_special(components, kind, (entry.dev_major, entry.dev_minor), &attrs, name)?;
        }
    }
    Ok(made)
}

/// A hard link's target, which must be an earlier non-directory entry of
/// this layer (never itself, never anything outside).
fn hard_link_target(
    entry: &ReadEntry,
    components: &[Vec<u8>],
    link_targets: &HashSet<Vec<Vec<u8>>>,
) -> Result<Vec<Vec<u8>>, LayerError> {
    let name = entry.path.as_slice();
    let shown = || String::from_utf8_lossy(&entry.link_target).into_owned();
    let target = normalize(&entry.link_target).map_err(|reason| {
        LayerError::unsafe_entry(name, format!("hard link target {:?}: {reason}", shown()))
    })?;
    if target == components {
        return Err(LayerError::unsafe_entry(name, "hard link to itself"));
    }
    if !link_targets.contains(&target) {
        return Err(LayerError::unsafe_entry(
            name,
            format!("hard link target {:?} is not an earlier file in this layer", shown()),
        ));
    }
    Ok(target)
}

/// Like [`apply_layer_tar`], for a tar that may be gzip- or
/// zstd-compressed; the format is told by its first bytes. The returned
/// `tar_bytes` counts the uncompressed stream.
pub fn apply_layer_tar_auto<R: Read>(
    mut input: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<LayerStats, LayerError> {
    let head = read_head(&mut input).map_err(|source| LayerError::ReadTar { offset: 0, source })?;
    let compression = Compression::sniff(&head);
    let stream = io::Cursor::new(head).chain(input);
    match compression {
        Compression::None => apply_layer_tar(stream, dest, opts),
        Compression::Gzip => apply_layer_tar(flate2::read::MultiGzDecoder::new(stream), dest, opts),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(stream)
                .map_err(|source| LayerError::ReadTar { offset: 0, source })?;
            apply_layer_tar(decoder, dest, opts)
        }
        Compression::Bzip2 => Err(LayerError::UnsupportedCompression("bzip2")),
        Compression::Xz => Err(LayerError::UnsupportedCompression("xz")),
    }
}

/// Splits an entry name (or hard-link target) into components, following
/// the rules in the module documentation. An empty result is the root.
fn normalize(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw.contains(&0) {
        return Err("name contains a NUL byte".into());
    }
    if raw.starts_with(b"/") {
        return Err("absolute path (layer entries must be relative)".into());
    }
    let mut components = Vec::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("path contains a `..` component".into()),
            other => components.push(other.to_vec()),
        }
    }
    Ok(components)
}

/// What an entry means besides being a file of its own.
enum OverlayMeaning<'a> {
    Plain,
    /// `<dir>/.wh..wh..opq`
    OpaqueMarker {
        dir: &'a [Vec<u8>],
    },
    /// `<dir>/.wh.<name>`: `<dir>/<name>` is deleted.
    Whiteout {
        deleted: Vec<Vec<u8>>,
    },
    /// Anything else under a `.wh..wh.` name.
    AufsMetadata,
}

fn overlay_meaning(components: &[Vec<u8>]) -> Result<OverlayMeaning<'_>, String> {
    let Some((base, parents)) = components.split_last() else {
        return Ok(OverlayMeaning::Plain);
    };
    if parents.iter().any(|c| c.starts_with(AUFS_META_PREFIX)) {
        return Ok(OverlayMeaning::AufsMetadata);
    }
    if parents.iter().any(|c| c.starts_with(WHITEOUT_PREFIX)) {
        return Err("a whiteout name is used as a directory".into());
    }
    if base == OPAQUE_MARKER {
        return Ok(OverlayMeaning::OpaqueMarker { dir: parents });
    }
    if base.starts_with(AUFS_META_PREFIX) {
        return Ok(OverlayMeaning::AufsMetadata);
    }
    let Some(deleted_name) = base.strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(OverlayMeaning::Plain);
    };
    if deleted_name.is_empty() || deleted_name == b"." || deleted_name == b".." {
        return Err(format!(
            "whiteout of {:?} deletes no nameable entry",
            String::from_utf8_lossy(deleted_name)
        ));
    }
    let mut deleted = parents.to_vec();
    deleted.push(deleted_name.to_vec());
    Ok(OverlayMeaning::Whiteout { deleted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Result<Vec<String>, String> {
        normalize(raw.as_bytes()).map(|c| c.into_iter().map(|p| String::from_utf8(p).unwrap()).collect())
    }

    #[test]
    fn names_are_normalised_or_refused() {
        assert_eq!(parts("./etc//passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(parts("usr/bin/").unwrap(), ["usr", "bin"]);
        assert!(parts("./").unwrap().is_empty());
        assert!(parts("/etc/passwd").is_err());
        assert!(parts("a/../b").is_err());
        assert!(parts("..").is_err());
        assert!(parts("").is_err());
        assert!(parts("a\0b").is_err());
    }

    #[test]
    fn whiteout_names_are_checked() {
        let c = normalize(b"a/.wh.b").unwrap();
        assert!(
            matches!(overlay_meaning(&c), Ok(OverlayMeaning::Whiteout { deleted }) if deleted == [b"a".to_vec(), b"b".to_vec()])
        );
        for bad in [&b".wh."[..], b".wh..", b".wh...", b".wh.x/y"] {
            let c = normalize(bad).unwrap();
            assert!(overlay_meaning(&c).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let c = normalize(b"d/.wh..wh..opq").unwrap();
        assert!(
            matches!(overlay_meaning(&c), Ok(OverlayMeaning::OpaqueMarker { dir }) if dir == [b"d".to_vec()])
        );
        let c = normalize(b".wh..wh.plnk/123").unwrap();
        assert!(matches!(overlay_meaning(&c), Ok(OverlayMeaning::AufsMetadata)));
    }
}
