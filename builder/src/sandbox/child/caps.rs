//! Capabilities: the step keeps Docker's default set and nothing else.

use super::{SetupResult, ctx};

/// Docker's default capability set; everything else is dropped.
pub(crate) const DEFAULT_CAPS: &[caps::Capability] = &[
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_MKNOD,
    caps::Capability::CAP_NET_RAW,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETFCAP,
    caps::Capability::CAP_SETPCAP,
    caps::Capability::CAP_NET_BIND_SERVICE,
    caps::Capability::CAP_SYS_CHROOT,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_AUDIT_WRITE,
];

pub(super) fn drop_capabilities() -> SetupResult<()> {
    for cap in caps::all() {
        if !DEFAULT_CAPS.contains(&cap) {
            ctx(caps::drop(None, caps::CapSet::Bounding, cap), || format!("drop {cap}"))?;
        }
    }
    let keep: caps::CapsHashSet = DEFAULT_CAPS.iter().copied().collect();
    for set in [caps::CapSet::Inheritable, caps::CapSet::Effective, caps::CapSet::Permitted] {
        let current = ctx(caps::read(None, set), || "read capabilities".into())?;
        let wanted: caps::CapsHashSet = current.intersection(&keep).copied().collect();
        ctx(caps::set(None, set, &wanted), || "set capabilities".into())?;
    }
    Ok(())
}
