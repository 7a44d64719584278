//! Prerequisites: what a test needs from the machine it runs on, checked
//! before the test starts.
//!
//! Each check returns a [`Need`]: `Ok` (with the thing found, where there is
//! one, such as a path) or a [`Missing`] that says what is absent and how to
//! provide it. Tests hand checks to [`require!`](crate::require), which turns
//! a `Missing` into a recorded skip or, in strict mode, a failure. Everything
//! `scripts/test.sh` runs the tests with is provided by `scripts/deps.sh`
//! (packages), `scripts/services.sh` (dockerd) and `scripts/bases.sh` (base
//! images), so in CI no check may fail.

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Why a test cannot run here: what is missing and how to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub String);

impl Missing {
    pub fn new(reason: impl Into<String>) -> Missing {
        Missing(reason.into())
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Missing {
    fn from(reason: String) -> Missing {
        Missing(reason)
    }
}

impl From<&str> for Missing {
    fn from(reason: &str) -> Missing {
        Missing(reason.to_string())
    }
}

/// The outcome of a prerequisite check.
pub type Need<T = ()> = Result<T, Missing>;

/// The workspace's root directory (where the top `Cargo.toml` is).
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
    })
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root: namespaces, overlayfs, mknod, chown and `trusted.*` xattrs need it.
pub fn root() -> Need {
    if is_root() { Ok(()) } else { Err(Missing::new("needs root (namespaces, overlayfs, mknod, chown)")) }
}

/// The full path of `name` if an executable of that name is on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// An executable on `PATH`.
pub fn tool(name: &str) -> Need<PathBuf> {
    which(name).ok_or_else(|| Missing(format!("{name} is not installed (scripts/deps.sh installs it)")))
}

/// Several executables on `PATH`; the first missing one is reported.
pub fn tools(names: &[&str]) -> Need {
    names.iter().try_for_each(|name| tool(name).map(drop))
}

/// A Docker daemon that answers `docker info`.
pub fn docker() -> Need {
    tool("docker")?;
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if answers {
        Ok(())
    } else {
        Err(Missing::new("no Docker daemon answers `docker info` (scripts/services.sh start runs dockerd)"))
    }
}

/// Where Debian's `busybox-static` puts busybox.
pub const BUSYBOX: &str = "/bin/busybox";

/// A statically linked busybox at [`BUSYBOX`] (Debian's `busybox-static`),
/// which runs in a root filesystem without a C library.
pub fn busybox_static() -> Need<&'static Path> {
    let missing = || Missing::new(format!("{BUSYBOX} from Debian's busybox-static is not installed"));
    let bytes = std::fs::read(BUSYBOX).map_err(|_| missing())?;
    if !is_static_elf(&bytes) {
        return Err(Missing::new(format!(
            "{BUSYBOX} is not statically linked (install Debian's busybox-static, not busybox)"
        )));
    }
    Ok(Path::new(BUSYBOX))
}

/// Whether `elf` is a 64-bit little-endian ELF file without a program
/// interpreter (`PT_INTERP`), that is, one that needs no dynamic loader.
fn is_static_elf(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at: usize| elf.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at: usize| elf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|kind| kind != PT_INTERP))
}

/// What RUN's default network needs: Debian's `slirp4netns` and a
/// `/dev/net/tun` this process can open.
pub fn default_network() -> Need {
    tool("slirp4netns")?;
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").map(drop).map_err(|e| {
        Missing(format!("/dev/net/tun cannot be opened ({e}); scripts/deps.sh makes it 0666 as udev does"))
    })
}

/// QEMU's arm64 emulator registered in binfmt_misc with the `F` flag
/// (Debian's `qemu-user-static`; scripts/deps.sh registers it), so arm64
/// binaries run inside a build's sandbox.
pub fn arm64_emulation() -> Need {
    let entry = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").map_err(|_| {
        Missing::new("qemu-aarch64 is not registered in binfmt_misc (scripts/deps.sh installs qemu-user-static and registers it)")
    })?;
    let enabled = entry.lines().next() == Some("enabled");
    let f_flag = entry.lines().any(|l| l.strip_prefix("flags:").is_some_and(|f| f.contains('F')));
    if enabled && f_flag {
        Ok(())
    } else {
        Err(Missing::new("qemu-aarch64 is registered in binfmt_misc but disabled or without the F flag"))
    }
}

/// Debian's Distribution registry and `htpasswd`, for a registry on 127.0.0.1.
pub fn registry() -> Need {
    tools(&["docker-registry", "htpasswd"])
}

/// A regular file at `path`.
pub fn file(path: impl AsRef<Path>) -> Need<PathBuf> {
    let path = path.as_ref();
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(Missing(format!("{} is absent", path.display())))
    }
}

/// A directory at `path`.
pub fn dir(path: impl AsRef<Path>) -> Need<PathBuf> {
    let path = path.as_ref();
    if path.is_dir() {
        Ok(path.to_path_buf())
    } else {
        Err(Missing(format!("{} is not a directory", path.display())))
    }
}

/// The directory base images are kept in: `$RBUILD_BASES`, else `/opt/bases`.
pub fn bases_dir() -> PathBuf {
    std::env::var_os("RBUILD_BASES").map_or_else(|| PathBuf::from("/opt/bases"), PathBuf::from)
}

/// A base image file made by `scripts/bases.sh`, such as `busybox.docker.tar`.
pub fn base(name: &str) -> Need<PathBuf> {
    let path = bases_dir().join(name);
    file(&path).map_err(|_| Missing(format!("{} is absent (scripts/bases.sh makes it)", path.display())))
}

/// BuildKit's parser test data, read where it lies and never copied:
/// `$RBUILD_BUILDKIT_CORPUS`, else `../shared/corpus/buildkit-parser` next to
/// the workspace. The directory must hold `testfiles/` and `shell/`.
pub fn buildkit_corpus() -> Need<PathBuf> {
    let dir = match std::env::var_os("RBUILD_BUILDKIT_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/corpus/buildkit-parser"),
    };
    if dir.join("testfiles").is_dir() && dir.join("shell").is_dir() {
        Ok(dir)
    } else {
        Err(Missing(format!(
            "BuildKit's parser corpus is not at {} (set RBUILD_BUILDKIT_CORPUS to a copy of \
             BuildKit's frontend/dockerfile/parser test data)",
            dir.display()
        )))
    }
}

/// A TCP connection to `host:port` within ten seconds (for tests whose
/// build steps download, like `apt-get` from Debian's mirror).
pub fn reachable(host: &str, port: u16) -> Need {
    let unreachable = |why: String| Missing(format!("{host}:{port} is not reachable: {why}"));
    let addrs = (host, port).to_socket_addrs().map_err(|e| unreachable(e.to_string()))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(unreachable(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_say_how_to_get_them() {
        let err = tool("rbuild-no-such-tool").unwrap_err();
        assert_eq!(err.0, "rbuild-no-such-tool is not installed (scripts/deps.sh installs it)");
        assert!(tool("sh").is_ok());
    }

    #[test]
    fn dynamic_executables_are_not_static() {
        let sh = std::fs::read(which("sh").unwrap().canonicalize().unwrap()).unwrap();
        assert!(!is_static_elf(&sh), "sh is dynamically linked on Debian");
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
