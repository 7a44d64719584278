//! Loopback of a step's fresh network namespace: all a `--network=none`
//! step has, and what a default-network step has beside slirp4netns's
//! `eth0`.

use std::os::fd::AsRawFd;

use super::{SetupResult, ctx};

/// Sets `lo` up in a fresh network namespace.
pub(super) fn bring_up_loopback() -> SetupResult<()> {
    let sock = ctx(
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        ),
        || "open socket".into(),
    )?;
    set_interface_up(sock.as_raw_fd(), "lo").map_err(|e| format!("bring up lo: {e}"))
}

#[allow(unsafe_code)]
pub(super) fn set_interface_up(fd: i32, name: &str) -> std::io::Result<()> {
    // SAFETY: `ifreq` is plain old data; we zero it, copy a NUL-terminated
    // name shorter than IFNAMSIZ, and pass valid pointers to ioctl.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().enumerate().take(libc::IFNAMSIZ - 1) {
            req.ifr_name[i] = b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
