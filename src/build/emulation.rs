//! Foreign `RUN` steps run under QEMU user emulation: the kernel starts
//! the emulator for a foreign binary through a binfmt_misc entry. The entry
//! must have the `F` flag (the kernel opens the interpreter when it is
//! registered), so it works inside the sandbox's root, which does not hold
//! the emulator. Checked before anything runs.

use std::fs;
use std::path::Path;

use rbuild_frontend::graph::{Op, StepGraph};
use rbuild_oci::platform::Platform;

use crate::report::Failure;

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// QEMU's name for an architecture (`qemu-aarch64`).
fn qemu_arch(platform: &Platform) -> &str {
    match platform.architecture.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "ppc64le" => "ppc64le",
        "mips64le" => "mips64el",
        "loong64" => "loongarch64",
        other => other,
    }
}

/// How a binfmt_misc entry for `platform` stands.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Usable,
    /// Registered, but disabled or without the `F` flag.
    Unusable(String),
    Missing,
}

/// Reads the entry Debian's `qemu-user-static` (or `binfmt-support`)
/// registers for `platform`, `qemu-<arch>`.
fn entry(dir: &Path, platform: &Platform) -> Entry {
    let name = format!("qemu-{}", qemu_arch(platform));
    let Ok(text) = fs::read_to_string(dir.join(&name)) else { return Entry::Missing };
    if text.lines().next().is_none_or(|l| l.trim() != "enabled") {
        return Entry::Unusable(format!("{name} is registered but disabled"));
    }
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:")).unwrap_or("").trim().to_string();
    if !flags.contains('F') {
        return Entry::Unusable(format!(
            "{name} is registered without the F flag (flags: {flags:?}), so the emulator cannot be found inside the build's root"
        ));
    }
    Entry::Usable
}

/// Every platform of `graphs` with a RUN step the host cannot run natively
/// must have a usable emulator; the error names the first that lacks one,
/// the package and the registration command.
pub fn check(graphs: &[&StepGraph]) -> Result<(), Failure> {
    check_in(Path::new(BINFMT), graphs)
}

fn check_in(dir: &Path, graphs: &[&StepGraph]) -> Result<(), Failure> {
    for graph in graphs {
        for stage in graph.stages.iter().filter(|s| s.needed && !s.platform.is_native()) {
            if !stage.steps.iter().any(|s| matches!(s.op, Op::Run(_))) {
                continue;
            }
            let why = match entry(dir, &stage.platform) {
                Entry::Usable => continue,
                Entry::Unusable(why) => why,
                Entry::Missing if !dir.join("status").exists() => format!("{} is not mounted", dir.display()),
                Entry::Missing => format!("no emulator is registered for {}", stage.platform.architecture),
            };
            let qemu = qemu_arch(&stage.platform);
            return Err(Failure::new(format!(
                "stage {} has RUN steps for {}, which this {} machine cannot run: {why}",
                stage.label,
                stage.platform,
                Platform::host()
            ))
            .hint(format!(
                "install QEMU user emulation with `apt-get install qemu-user-static` (Debian's package registers its emulators with the F flag); if {BINFMT} is empty, mount it with `mount -t binfmt_misc binfmt_misc {BINFMT}` and register with `update-binfmts --enable qemu-{qemu}`"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn an_entry_must_be_enabled_and_have_the_f_flag() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("status"), "enabled\n").unwrap();
        assert_eq!(entry(dir.path(), &p("linux/arm64")), Entry::Missing);
        let good = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n";
        fs::write(dir.path().join("qemu-aarch64"), good).unwrap();
        assert_eq!(entry(dir.path(), &p("linux/arm64")), Entry::Usable);
        fs::write(dir.path().join("qemu-arm"), "enabled\ninterpreter /x\nflags: PO\n").unwrap();
        assert!(matches!(entry(dir.path(), &p("linux/arm/v7")), Entry::Unusable(w) if w.contains("F flag")));
        fs::write(dir.path().join("qemu-s390x"), "disabled\nflags: F\n").unwrap();
        assert!(matches!(entry(dir.path(), &p("linux/s390x")), Entry::Unusable(w) if w.contains("disabled")));
    }
}
