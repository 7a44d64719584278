//! Support for the hostile-input, crash, concurrency and full-disk tests:
//! an [`Arena`] that puts the store, the work directory and a sentinel
//! tree with a canary file side by side and proves afterwards that nothing
//! outside the store and the work directory was created, changed or
//! deleted (test-support's `TreeWatch`), and that the canary's content
//! reached no file rbuild wrote; and docker-archive / OCI-archive builders
//! around layers written with test-support's `RawTar` (names and types
//! unchecked, so tests can say anything a hostile archive can).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rbuild_oci::digest::Digest;

use crate::harness::*;
pub use rbuild_test_support::{RawTar, TreeWatch, gzip};

/// A directory holding `store/`, `work/` and `sentinel/` side by side.
pub struct Arena {
    pub env: Env,
    /// The parent of the store, the work dir and the sentinel.
    pub base: tempfile::TempDir,
    /// Files a hostile case might try to reach: never to change.
    pub sentinel: PathBuf,
    /// A file in the sentinel whose content must never show up in the store
    /// or in an output.
    pub canary: PathBuf,
    /// The canary's content.
    pub secret: String,
    /// Everything under the base but the store and the work dir.
    watch: TreeWatch,
}

impl Arena {
    /// A fresh arena with an empty store.
    pub fn new() -> Arena {
        let base = tempfile::Builder::new().prefix("rbuild-hostile-").tempdir().expect("arena");
        let env = Env {
            root: tempfile::Builder::new().prefix("store-").tempdir_in(base.path()).unwrap(),
            work: tempfile::Builder::new().prefix("work-").tempdir_in(base.path()).unwrap(),
        };
        let sentinel = base.path().join("sentinel");
        for dir in ["sub/deeper", "empty", "etc"] {
            fs::create_dir_all(sentinel.join(dir)).unwrap();
        }
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let secret = format!("CANARY-{:x}-{}", nanos, std::process::id());
        let canary = sentinel.join("canary.txt");
        fs::write(&canary, format!("{secret}\n")).unwrap();
        fs::write(sentinel.join("sub/file"), "sentinel file\n").unwrap();
        fs::write(sentinel.join("sub/deeper/x"), "x\n").unwrap();
        fs::write(sentinel.join("etc/passwd"), "root:x:0:0:sentinel:/:/bin/sh\n").unwrap();
        let watch = TreeWatch::new(base.path(), &[env.root.path(), env.work.path()]);
        Arena { env, base, sentinel, canary, secret, watch }
    }

    /// A fresh arena whose store holds `busybox:local`.
    pub fn with_busybox() -> Arena {
        let arena = Arena::new();
        arena.env.rbuild(&["import", busybox_rootfs().to_str().unwrap(), "busybox:local"]).ok();
        arena
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.env.path(rel)
    }

    /// Retakes the "before" listing, for a test that planted files of its
    /// own beside the sentinel.
    pub fn rebaseline(mut self) -> Arena {
        self.watch.rebaseline();
        self
    }

    /// Panics unless everything outside the store and the work dir is as it
    /// was when the arena was made, no `pwned` file appeared in the usual
    /// places an escape would write to, and the canary's content is in no
    /// file under the store or the work dir.
    pub fn assert_nothing_escaped(&self, case: &str) {
        let diff = self.watch.changes();
        if !diff.is_empty() {
            panic!("case {case}: something outside the store and work dir changed:\n{}", diff.join("\n"));
        }
        for dir in ["/", "/tmp", "/etc", "/root"] {
            for entry in fs::read_dir(dir).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with("pwned"), "case {case}: {dir}/{name} was created");
            }
        }
        for dir in [self.env.root.path(), self.env.work.path()] {
            if let Some(file) = file_containing(dir, self.secret.as_bytes()) {
                panic!("case {case}: the canary's content leaked into {}", file.display());
            }
        }
    }
}

/// The first regular file under `dir` (symlinks not followed) that contains
/// `needle`.
pub fn file_containing(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file()
                && meta.len() < (512 << 20)
                && fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                return Some(path);
            }
        }
    }
    None
}

fn image_config(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        ids.join(",")
    )
    .into_bytes()
}

/// A `docker save` archive of one image tagged `tag` with these layer
/// tars (bottom first).
pub fn docker_archive(tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let config = image_config(&diff_ids);
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let layer_names: Vec<String> = diff_ids.iter().map(|d| format!("{}/layer.tar", d.hex())).collect();
    let names: Vec<String> = layer_names.iter().map(|n| format!("\"{n}\"")).collect();
    let manifest = format!(
        "[{{\"Config\":\"{config_name}\",\"RepoTags\":[\"{tag}\"],\"Layers\":[{}]}}]",
        names.join(",")
    );
    let mut tar = RawTar::new().file(&config_name, &config);
    for (name, layer) in layer_names.iter().zip(layers) {
        tar = tar.file(name, layer);
    }
    tar.file("manifest.json", manifest.as_bytes()).finish()
}

/// An OCI image archive of one image named `tag` whose layers are these
/// tars, gzip-compressed (bottom first).
pub fn oci_archive(tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let config = image_config(&diff_ids);
    let blobs: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    let layer_descs: Vec<String> = blobs
        .iter()
        .map(|b| {
            format!(
                "{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{}\",\"size\":{}}}",
                Digest::of(b),
                b.len()
            )
        })
        .collect();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{}]}}",
        Digest::of(&config),
        config.len(),
        layer_descs.join(",")
    );
    let index = format!(
        "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{}\",\"size\":{},\"annotations\":{{\"io.containerd.image.name\":\"{tag}\",\"org.opencontainers.image.ref.name\":\"{}\"}}}}]}}",
        Digest::of(manifest.as_bytes()),
        manifest.len(),
        tag.rsplit(':').next().unwrap_or("latest")
    );
    let blob_name = |d: Digest| format!("blobs/sha256/{}", d.hex());
    let mut tar = RawTar::new()
        .file("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}")
        .file(&blob_name(Digest::of(&config)), &config)
        .file(&blob_name(Digest::of(manifest.as_bytes())), manifest.as_bytes());
    for blob in &blobs {
        tar = tar.file(&blob_name(Digest::of(blob)), blob);
    }
    tar.file("index.json", index.as_bytes()).finish()
}

/// A deterministic pseudo-random sequence (xorshift64*), so a failing run
/// can be repeated with the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Mounts under `dir` listed in this process's mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Names in the store's `tmp/` (scratch of live or dead processes).
pub fn scratch_left(store: &Path) -> Vec<String> {
    fs::read_dir(store.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Asserts that `rbuild system check` finds the store consistent.
pub fn assert_store_consistent(env: &Env, after: &str) {
    let run = env.rbuild(&["system", "check"]);
    assert_eq!(run.code, 0, "system check after {after}:\n{}\n{}", run.stdout, run.stderr);
}

/// Runs rbuild on the store at `store` (not an [`Env`]'s), in that store's
/// parent directory.
pub fn rbuild_at(store: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut all = vec!["--root", store.to_str().unwrap()];
    all.extend_from_slice(args);
    // Env::rbuild passes its own --root first; a second one would clash, so
    // run the binary directly.
    let mut cmd = std::process::Command::new(RBUILD);
    cmd.args(&all).current_dir(store.parent().unwrap()).env_remove("SOURCE_DATE_EPOCH");
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start rbuild");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
