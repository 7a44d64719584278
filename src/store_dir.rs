//! Which store a command works on (`--root`, `RBUILD_ROOT`, or this user's
//! default) and opening it with a hint when that fails.

use std::path::{Path, PathBuf};

use rbuild_cache::Store;

use crate::report::Failure;

/// The store directory: `--root`, `RBUILD_ROOT`, else the default for this user.
pub fn store_root(cli_root: Option<PathBuf>) -> PathBuf {
    if let Some(r) = cli_root {
        return r;
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/rbuild");
    }
    let data = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".local/share")
    });
    data.join("rbuild")
}

pub fn open_store(root: &Path) -> Result<Store, Failure> {
    Store::open(root).map_err(|e| {
        let mut f = Failure::caused_by(&e);
        f.message = format!("cannot open the store at {}: {}", root.display(), f.message);
        f.hint("pass --root DIR (or set RBUILD_ROOT) to use a store you can write")
    })
}
