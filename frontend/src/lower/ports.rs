//! EXPOSE values: a port or a range of ports, with an optional protocol,
//! to the `port/protocol` keys of the image config.

use crate::error::FrontendError;
use crate::span::Span;

/// EXPOSE values: `80`, `80/udp`, `8000-8002/tcp` → `80/tcp` etc.
pub(super) fn expose_ports(value: &str, span: Span) -> Result<Vec<String>, FrontendError> {
    let mut out = Vec::new();
    for item in value.split_whitespace() {
        let (ports, proto) = match item.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (item, "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(FrontendError::new(format!("invalid protocol {proto:?} in EXPOSE {item}"), span)
                .with_hint("use tcp, udp or sctp"));
        }
        let (lo, hi) = port_range(ports).ok_or_else(|| {
            FrontendError::new(format!("invalid port {item:?} in EXPOSE"), span)
                .with_hint("write a port (1-65535) or a range like 8000-8010")
        })?;
        out.extend((lo..=hi).map(|p| format!("{p}/{proto}")));
    }
    Ok(out)
}

/// `80` or `8000-8002`: the first and last port, both 1-65535, in order.
fn port_range(ports: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
        None => {
            let p = ports.parse::<u16>().ok()?;
            (p, p)
        }
    };
    (lo != 0 && hi >= lo).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    fn span() -> Span {
        Span::new(Pos::new(3, 8), Pos::new(3, 20))
    }

    #[test]
    fn ports_default_to_tcp_and_keep_their_protocol_lower_cased() {
        assert_eq!(expose_ports("80", span()).unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/udp 9/SCTP", span()).unwrap(), ["53/udp", "9/sctp"]);
        assert_eq!(expose_ports("  443/TCP\t", span()).unwrap(), ["443/tcp"]);
        assert_eq!(expose_ports("", span()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn ranges_expand_to_every_port() {
        assert_eq!(expose_ports("8000-8002/udp", span()).unwrap(), ["8000/udp", "8001/udp", "8002/udp"]);
        assert_eq!(expose_ports("7-7", span()).unwrap(), ["7/tcp"]);
        assert_eq!(expose_ports("65535", span()).unwrap(), ["65535/tcp"]);
    }

    #[test]
    fn bad_ports_are_errors_at_the_word() {
        for bad in ["0", "65536", "9-3", "0-2", "a-b", "80-", "-80", "http", "1.5"] {
            let e = expose_ports(bad, span()).unwrap_err();
            assert_eq!(e.message, format!("invalid port {bad:?} in EXPOSE"));
            assert_eq!(e.span, span());
            assert_eq!(e.hint.as_deref(), Some("write a port (1-65535) or a range like 8000-8010"));
        }
    }

    #[test]
    fn bad_protocols_are_errors_before_the_port_is_read() {
        let e = expose_ports("80/tcp x/quic", span()).unwrap_err();
        assert_eq!(e.message, "invalid protocol \"quic\" in EXPOSE x/quic");
        assert_eq!(e.hint.as_deref(), Some("use tcp, udp or sctp"));
        assert_eq!(e.span, span());
    }
}
