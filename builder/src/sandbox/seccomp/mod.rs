//! Docker's default seccomp profile, compiled for the machine rbuild runs
//! on. The profile is data, `profile.json` beside this file, in a schema of
//! rbuild's own (regenerated from moby's `profiles/seccomp/default.json` by
//! `scripts/seccomp-profile.py`; its `follows` field names the version).
//! Here it is resolved the way Docker resolves it, for the host's
//! architecture, the step's capability bounding set and the running kernel,
//! and compiled by libseccomp into a BPF program, kept in the store.
//! The sandbox helper installs that program as the step's last act before
//! its command starts (`child::seccomp`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::OnceLock;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use rbuild_oci::digest::Digest;
use serde::Deserialize;

/// The profile as shipped.
const PROFILE_JSON: &str = include_str!("profile.json");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Which moby release the data was taken from.
    pub follows: String,
    /// What a syscall no rule allows returns.
    pub default_errno: String,
    /// libseccomp's name of a native architecture, and the other ABIs its
    /// processes can call the kernel through (i386 and x32 on x86_64).
    pub arches: BTreeMap<String, Vec<String>>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub syscalls: Vec<String>,
    pub action: RuleAction,
    /// For `action: errno`.
    #[serde(default)]
    pub errno: Option<String>,
    /// All must hold for the action to apply; a syscall with several rules
    /// takes the action of any that matches.
    #[serde(default)]
    pub args: Vec<ArgCheck>,
    #[serde(default)]
    pub only_if: Option<Condition>,
    #[serde(default)]
    pub not_if: Option<Condition>,
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Allow,
    Errno,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCheck {
    pub arg: u32,
    pub op: ArgOp,
    pub value: u64,
    /// For `masked_eq`: `arg & mask == value`.
    #[serde(default)]
    pub mask: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// A rule's condition, moby's `includes`/`excludes`. Under `only_if` every
/// listed part must hold (the host's arch is one of `arch`, the step holds
/// all of `caps`, the kernel is at least `kernel_at_least`); under `not_if`
/// any part that holds drops the rule (the arch is listed, the step holds
/// one of `caps`, the kernel is that new).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default)]
    pub arch: Vec<String>,
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub kernel_at_least: Option<String>,
}

/// What a profile is resolved against.
#[derive(Debug, Clone)]
pub struct Host {
    /// The native architecture in moby's words (`amd64`, `arm64`, …).
    pub arch: String,
    /// The step's capability bounding set (`CAP_CHOWN`, …).
    pub caps: Vec<String>,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Host {
    /// This machine, for a step holding `caps`.
    pub fn this_machine(caps: &[String]) -> Host {
        Host { arch: native_arch_name().to_string(), caps: caps.to_vec(), kernel: running_kernel() }
    }
}

impl Profile {
    /// The profile rbuild ships.
    pub fn shipped() -> Result<Profile, String> {
        serde_json::from_str(PROFILE_JSON).map_err(|e| format!("seccomp profile.json: {e}"))
    }

    /// The rules Docker would keep for `host`, in order.
    pub fn rules_for<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.applies_to(host))
    }

    /// Compiles the rules that apply to `host` into a BPF program (the raw
    /// `struct sock_filter` array libseccomp exports).
    pub fn compile(&self, host: &Host) -> Result<Vec<u8>, String> {
        let lib = |what: &str, e: libseccomp::error::SeccompError| format!("seccomp: {what}: {e}");
        let default = ScmpAction::Errno(errno_number(&self.default_errno)?);
        let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib("new filter", e))?;
        // As Docker: setuid binaries of the image keep working under the
        // filter, so no_new_privs stays off (installing then needs
        // CAP_SYS_ADMIN, which the helper holds when it installs it).
        ctx.set_ctl_nnp(false).map_err(|e| lib("no_new_privs", e))?;
        // A binary tree of syscall numbers rather than a list: each syscall
        // of the step, and the kernel's check of every syscall number when
        // the filter is installed, walk a few branches instead of hundreds.
        ctx.set_ctl_optimize(2).map_err(|e| lib("optimize", e))?;
        let native = ScmpArch::native();
        let native_key = format!("{native:?}");
        if let Some(subs) = self.arches.iter().find(|(k, _)| arch_key_matches(k, &native_key)).map(|(_, v)| v)
        {
            for sub in subs {
                let arch: ScmpArch = sub.parse().map_err(|e| lib(sub, e))?;
                ctx.add_arch(arch).map_err(|e| lib(sub, e))?;
            }
        }
        for rule in self.rules_for(host) {
            let action = match rule.action {
                RuleAction::Allow => ScmpAction::Allow,
                RuleAction::Errno => {
                    let name = rule.errno.as_deref().ok_or("seccomp profile: an errno rule without errno")?;
                    ScmpAction::Errno(errno_number(name)?)
                }
            };
            let checks: Vec<ScmpArgCompare> = rule.args.iter().map(ArgCheck::to_libseccomp).collect();
            for name in &rule.syscalls {
                // A name this libseccomp does not know on this architecture
                // is a syscall the machine cannot make: skipped, as runc does.
                let Ok(syscall) = ScmpSyscall::from_name(name) else { continue };
                let added = if checks.is_empty() {
                    ctx.add_rule(action, syscall)
                } else {
                    ctx.add_rule_conditional(action, syscall, &checks)
                };
                added.map_err(|e| lib(&format!("rule for {name}"), e))?;
            }
        }
        export(&ctx)
    }
}

impl Rule {
    fn applies_to(&self, host: &Host) -> bool {
        let kernel_reached =
            |k: &Option<String>| k.as_deref().and_then(parse_kernel).is_some_and(|v| host.kernel >= v);
        if let Some(only) = &self.only_if {
            if !only.arch.is_empty() && !only.arch.contains(&host.arch) {
                return false;
            }
            if !only.caps.iter().all(|c| host.caps.contains(c)) {
                return false;
            }
            if only.kernel_at_least.is_some() && !kernel_reached(&only.kernel_at_least) {
                return false;
            }
        }
        if let Some(not) = &self.not_if {
            if not.arch.contains(&host.arch) || not.caps.iter().any(|c| host.caps.contains(c)) {
                return false;
            }
            if kernel_reached(&not.kernel_at_least) {
                return false;
            }
        }
        true
    }
}

impl ArgCheck {
    fn to_libseccomp(&self) -> ScmpArgCompare {
        let op = match self.op {
            ArgOp::Ne => ScmpCompareOp::NotEqual,
            ArgOp::Lt => ScmpCompareOp::Less,
            ArgOp::Le => ScmpCompareOp::LessOrEqual,
            ArgOp::Eq => ScmpCompareOp::Equal,
            ArgOp::Ge => ScmpCompareOp::GreaterEqual,
            ArgOp::Gt => ScmpCompareOp::Greater,
            ArgOp::MaskedEq => ScmpCompareOp::MaskedEqual(self.mask.unwrap_or(u64::MAX)),
        };
        ScmpArgCompare::new(self.arg, op, self.value)
    }
}

/// The BPF program for a step with Docker's default capabilities on this
/// machine. libseccomp takes tens of milliseconds to compile Docker's
/// profile for three ABIs, so the program is kept in `cache_dir` (the
/// store's), named after everything it depends on, and in memory for the
/// rest of the process.
pub fn docker_default_filter(cache_dir: &Path) -> Result<&'static [u8], String> {
    static FILTER: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    FILTER.get_or_init(|| load_or_compile(cache_dir)).as_deref().map_err(Clone::clone)
}

fn load_or_compile(cache_dir: &Path) -> Result<Vec<u8>, String> {
    let caps: Vec<String> = super::child::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    let host = Host::this_machine(&caps);
    let lib = libseccomp::ScmpVersion::current().map(|v| format!("{v:?}")).unwrap_or_default();
    let inputs = format!("{PROFILE_JSON}\n{host:?}\n{lib}\n{:?}", ScmpArch::native());
    let cached = cache_dir.join(format!("seccomp-{}.bpf", &Digest::of(inputs.as_bytes()).hex()[..32]));
    if let Ok(bpf) = fs::read(&cached)
        && !bpf.is_empty()
        && bpf.len().is_multiple_of(8)
    {
        return Ok(bpf);
    }
    let bpf = Profile::shipped()?.compile(&host)?;
    // Best effort: a store that cannot take the file compiles again next time.
    let partial = cached.with_extension(format!("partial-{}", std::process::id()));
    if fs::create_dir_all(cache_dir)
        .and_then(|_| fs::write(&partial, &bpf))
        .and_then(|_| fs::rename(&partial, &cached))
        .is_err()
    {
        let _ = fs::remove_file(&partial);
    }
    Ok(bpf)
}

/// The BPF program libseccomp made, read back through a memory file
/// (libseccomp 2.5 exports only to a descriptor).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, String> {
    let memfd = nix::sys::memfd::memfd_create(c"rbuild-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("seccomp: memfd: {e}"))?;
    let mut file = File::from(memfd);
    ctx.export_bpf(&file).map_err(|e| format!("seccomp: export: {e}"))?;
    let mut bpf = Vec::new();
    file.rewind().and_then(|_| file.read_to_end(&mut bpf)).map_err(|e| format!("seccomp: read back: {e}"))?;
    Ok(bpf)
}

/// libseccomp's arch (Debug form, `X8664`) against the profile's key
/// (`SCMP_ARCH_X86_64`).
fn arch_key_matches(key: &str, native_debug: &str) -> bool {
    key.trim_start_matches("SCMP_ARCH_").replace('_', "").eq_ignore_ascii_case(native_debug)
}

/// The host's architecture as moby's profile names it.
fn native_arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn running_kernel() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

/// `6.18.44-foo` → (6, 18).
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn errno_number(name: &str) -> Result<i32, String> {
    let n = match name {
        "EPERM" => libc::EPERM,
        "ENOSYS" => libc::ENOSYS,
        "EACCES" => libc::EACCES,
        "EINVAL" => libc::EINVAL,
        other => return Err(format!("seccomp profile: unknown errno {other:?}")),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_default_host() -> Host {
        let caps = super::super::child::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        Host { arch: "amd64".into(), caps, kernel: (6, 1) }
    }

    fn rule_for<'a>(p: &'a Profile, host: &'a Host, syscall: &str) -> Vec<&'a Rule> {
        p.rules_for(host).filter(|r| r.syscalls.iter().any(|s| s == syscall)).collect()
    }

    #[test]
    fn the_shipped_profile_names_its_source_and_compiles_here() {
        let p = Profile::shipped().unwrap();
        assert!(p.follows.contains("moby"), "{}", p.follows);
        let dir = tempfile::tempdir().unwrap();
        let bpf = docker_default_filter(dir.path()).unwrap();
        assert!(
            !bpf.is_empty() && bpf.len().is_multiple_of(8),
            "a whole number of sock_filter: {}",
            bpf.len()
        );
    }

    #[test]
    fn docker_default_caps_keep_the_namespace_and_admin_rules_out() {
        let p = Profile::shipped().unwrap();
        let host = docker_default_host();
        for syscall in ["unshare", "setns", "mount", "bpf", "perf_event_open", "open_by_handle_at", "reboot"]
        {
            assert!(rule_for(&p, &host, syscall).is_empty(), "{syscall} is not allowed with Docker's caps");
        }
        // chroot comes with CAP_SYS_CHROOT, which Docker's set has.
        assert_eq!(rule_for(&p, &host, "chroot").len(), 1);
        // clone only without namespace flags; clone3 fails with ENOSYS so
        // that libc falls back to clone.
        let clone = rule_for(&p, &host, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args[0].op, ArgOp::MaskedEq);
        assert_eq!(clone[0].args[0].mask, Some(0x7E02_0000), "CLONE_NEW* flags");
        let clone3 = rule_for(&p, &host, "clone3");
        assert_eq!((clone3[0].action, clone3[0].errno.as_deref()), (RuleAction::Errno, Some("ENOSYS")));
        // ptrace needs kernel 4.8 (seccomp checked after ptrace from then).
        assert_eq!(rule_for(&p, &host, "ptrace").len(), 1);
        let old = Host { kernel: (4, 4), ..host.clone() };
        assert!(rule_for(&p, &old, "ptrace").is_empty());
    }

    #[test]
    fn more_capabilities_bring_dockers_rules_for_them() {
        let p = Profile::shipped().unwrap();
        let mut host = docker_default_host();
        host.caps.push("CAP_SYS_ADMIN".into());
        assert_eq!(rule_for(&p, &host, "unshare").len(), 1);
        let clone = rule_for(&p, &host, "clone");
        assert!(clone.iter().all(|r| r.args.is_empty()), "CAP_SYS_ADMIN: clone with any flags");
        assert!(rule_for(&p, &host, "clone3").iter().all(|r| r.action == RuleAction::Allow));
    }

    #[test]
    fn arch_rules_follow_the_host_architecture() {
        let p = Profile::shipped().unwrap();
        let host = docker_default_host();
        assert_eq!(rule_for(&p, &host, "arch_prctl").len(), 1);
        let arm = Host { arch: "arm64".into(), ..host };
        assert!(rule_for(&p, &arm, "arch_prctl").is_empty());
        assert_eq!(rule_for(&p, &arm, "set_tls").len(), 1);
    }

    #[test]
    fn the_compiled_program_is_kept_and_a_damaged_copy_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let compiled = load_or_compile(dir.path()).unwrap();
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "one cached program, no partial file: {files:?}");
        assert_eq!(fs::read(&files[0]).unwrap(), compiled);
        fs::write(&files[0], b"bad").unwrap();
        assert_eq!(load_or_compile(dir.path()).unwrap(), compiled, "a damaged copy is compiled again");
        assert_eq!(fs::read(&files[0]).unwrap(), compiled, "and replaced");
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
        assert!(arch_key_matches("SCMP_ARCH_X86_64", "X8664"));
        assert!(!arch_key_matches("SCMP_ARCH_X86", "X8664"));
    }
}
