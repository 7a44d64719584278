//! EXPOSE ports as written after expansion: the protocol in lower case
//! (ExposeProtoCasing) and no IP address or host port (ExposeInvalidFormat).
//! A port is `[IP:][HOSTPORT:]PORT[/PROTO]`; an IPv6 address keeps its
//! colons, so the last two `:`-parts are the ports.

use super::entries::Entry;
use super::{Reporter, rules};

pub(super) fn check(entry: &Entry<'_>, ports: &[String], reporter: &mut Reporter) {
    for raw in ports {
        let parts: Vec<&str> = raw.split(':').collect();
        let container = parts.last().copied().unwrap_or_default();
        let has_host_part = parts[..parts.len() - 1].iter().any(|part| !part.is_empty());
        let proto = container.split('/').nth(1).filter(|p| !p.is_empty()).unwrap_or("tcp");
        if proto != proto.to_lowercase() {
            reporter.report(
                &entry.config,
                &rules::EXPOSE_PROTO_CASING,
                entry.instr.span,
                format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
            );
        }
        if has_host_part {
            reporter.report(
                &entry.config,
                &rules::EXPOSE_INVALID_FORMAT,
                entry.instr.span,
                format!(
                    "EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"
                ),
            );
        }
    }
}
