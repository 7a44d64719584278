//! Helpers for the `archive_*` tests (`mod support;` in each): stores,
//! loading and exporting, reading archives back, and the base images that
//! `scripts/bases.sh` makes. Raw tars, compression, prerequisites and
//! `require!` come from `rbuild-test-support`.
#![allow(dead_code, unused_imports)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use rbuild_test_support::prereq::{base, docker, tool};
pub use rbuild_test_support::{Need, RawTar, gzip, require, zstd};

use rbuild_archive::{ArchiveError, ExportImage, ExportOptions, LoadInput, LoadedImage};
use rbuild_cache::Store;
use rbuild_cache::store::RefMap;
use rbuild_oci::digest::Digest;

/// Docker's own `docker save` of busybox:local, in the bases directory.
pub const BUSYBOX_DOCKER: &str = "busybox.docker.tar";
/// The same image as an OCI archive, by skopeo.
pub const BUSYBOX_OCI: &str = "busybox.oci.tar";
/// The busybox root filesystem it was imported from.
pub const BUSYBOX_ROOTFS: &str = "busybox-rootfs.tar";

/// The path of a base image file (check it with `require!(base(name))`).
pub fn bases(name: &str) -> PathBuf {
    rbuild_test_support::prereq::bases_dir().join(name)
}

/// A store in a fresh temporary directory (kept alive by the TempDir).
pub fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("store")).expect("open store");
    (dir, store)
}

pub fn load_bytes(store: &Store, bytes: Vec<u8>) -> Result<Vec<LoadedImage>, ArchiveError> {
    rbuild_archive::load(store, LoadInput::Reader(Box::new(std::io::Cursor::new(bytes))))
}

pub fn load_file(store: &Store, path: impl AsRef<Path>) -> Result<Vec<LoadedImage>, ArchiveError> {
    rbuild_archive::load(store, LoadInput::Reader(Box::new(std::fs::File::open(path).expect("open archive"))))
}

/// Loads busybox:local from Docker's own `docker save` output.
pub fn load_busybox(store: &Store) -> Digest {
    let loaded = load_file(store, bases(BUSYBOX_DOCKER)).expect("load busybox docker archive");
    assert_eq!(loaded.len(), 1);
    loaded[0].id
}

pub fn export_docker(store: &Store, id: Digest, tags: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let images = [ExportImage { id, tags: tags.iter().map(|t| t.to_string()).collect() }];
    rbuild_archive::write_docker_archive(store, &images, &mut out, &ExportOptions::default())
        .expect("export docker");
    out
}

pub fn export_oci(store: &Store, id: Digest, tags: &[&str], opts: &ExportOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let images = [ExportImage { id, tags: tags.iter().map(|t| t.to_string()).collect() }];
    rbuild_archive::write_oci_archive(store, &images, &mut out, opts).expect("export oci");
    out
}

/// What a failed load must leave as it was: image records and tags.
pub fn visible_state(store: &Store) -> (Vec<Digest>, RefMap) {
    let mut ids: Vec<Digest> = store.list_images().expect("list images").into_iter().map(|r| r.id).collect();
    ids.sort();
    (ids, store.refs().expect("refs"))
}

/// Every entry of a tar: (name, entry type, bytes).
pub fn entries(archive: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let mut out = Vec::new();
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        out.push((name, kind, data));
    }
    out
}

pub fn entry<'a>(all: &'a [(String, tar::EntryType, Vec<u8>)], name: &str) -> &'a [u8] {
    &all.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no entry {name}")).2
}

/// Rebuilds an archive, letting `change` rename, replace or drop entries.
pub fn rewrite(
    archive: &[u8],
    mut change: impl FnMut(&str, Vec<u8>) -> Option<(String, Vec<u8>)>,
) -> Vec<u8> {
    let mut maker = RawTar::new();
    for (name, kind, data) in entries(archive) {
        if kind != tar::EntryType::Regular {
            continue;
        }
        if let Some((name, data)) = change(&name, data) {
            maker = maker.file(&name, &data);
        }
    }
    maker.finish()
}

/// A small valid layer tar holding one file.
pub fn tiny_layer(file_name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, file_name, content).expect("append");
    builder.into_inner().expect("finish")
}

/// A tag no other test run uses.
pub fn unique_tag(repo: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{repo}:t{}-{nanos}", std::process::id())
}

pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Runs a command, returning (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
