//! Applies arbitrary bytes as an uncompressed layer tar
//! (`rbuild_layer::apply_layer_tar`) into a fresh directory, with
//! owners and device nodes as root gets them, and checks that it never
//! panics and never creates anything outside the destination.
//!
//! Layout, under `$TMPDIR/rbuild-fuzz-layer/` (`/tmp/...` by default; the
//! seeds assume that): `dest-<pid>/` is the destination, emptied before each
//! input and removed at exit; `sentinel/` sits next to it and must stay
//! empty. A tar that escapes by `../sentinel/x`, through a symlink to
//! `../sentinel` or to `/tmp/rbuild-fuzz-layer/sentinel`, or through a hard
//! link, shows up as a file in the sentinel and fails the check. The
//! sentinel is shared by all fuzzing processes and emptied when one starts.
//!
//! An escape to anywhere else would not be seen here, and as root it could
//! damage the machine: run this target inside `fuzz/sandbox.sh`, where
//! everything is read-only but a private tmpfs on `/tmp` and libFuzzer's
//! output directories (see docs/dev/fuzzing.md).

#![no_main]

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rbuild_layer::{ApplyOptions, OverlayXattrs, apply_layer_tar};

struct Dirs {
    dest: PathBuf,
    sentinel: PathBuf,
}

static DIRS: LazyLock<Dirs> = LazyLock::new(|| {
    let base = std::env::temp_dir().join("rbuild-fuzz-layer");
    let dest = base.join(format!("dest-{}", std::process::id()));
    let sentinel = base.join("sentinel");
    fs::create_dir_all(&base).expect("create the fuzzing base directory");
    // Leftovers of an earlier run (a crash leaves its destination behind).
    remove_any(&sentinel).expect("clear the sentinel directory");
    remove_any(&dest).expect("clear the destination");
    fs::create_dir(&sentinel).expect("create the sentinel directory");
    // SAFETY: `remove_dest_at_exit` is an `extern "C" fn()` that does not
    // unwind (it ignores every error).
    unsafe { libc::atexit(remove_dest_at_exit) };
    Dirs { dest, sentinel }
});

extern "C" fn remove_dest_at_exit() {
    let dest = std::env::temp_dir().join("rbuild-fuzz-layer").join(format!("dest-{}", std::process::id()));
    let _ = remove_any(&dest);
}

/// Removes `path` whatever it is, without following symlinks.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `RBUILD_FUZZ_VERBOSE=1` prints each apply's result, to see what a seed
/// or crashing input does.
static VERBOSE: LazyLock<bool> = LazyLock::new(|| std::env::var_os("RBUILD_FUZZ_VERBOSE").is_some());

static OPTIONS: LazyLock<ApplyOptions> =
    LazyLock::new(|| ApplyOptions::for_current_user(OverlayXattrs::Trusted));

fuzz_target!(|data: &[u8]| {
    let dirs = &*DIRS;
    remove_any(&dirs.dest).expect("clear the destination");
    fs::create_dir(&dirs.dest).expect("create the destination");

    let result = apply_layer_tar(data, &dirs.dest, &OPTIONS);
    if *VERBOSE {
        eprintln!("apply_layer_tar: {result:?}");
    }

    let sentinel = fs::symlink_metadata(&dirs.sentinel).expect("the sentinel still exists");
    assert!(sentinel.is_dir(), "the sentinel was replaced by something that is not a directory");
    let inside: Vec<_> = fs::read_dir(&dirs.sentinel)
        .expect("list the sentinel")
        .map(|entry| entry.map(|e| e.file_name()))
        .collect();
    assert!(inside.is_empty(), "the layer wrote outside its destination, into the sentinel: {inside:?}");
    let dest = fs::symlink_metadata(&dirs.dest).expect("the destination still exists");
    assert!(dest.is_dir(), "the destination was replaced by something that is not a directory");
});
