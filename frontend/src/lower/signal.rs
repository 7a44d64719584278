//! STOPSIGNAL values: a signal name (with or without `SIG`), a real-time
//! signal `RTMIN…`/`RTMAX…`, or a number from 1 to 64.

use crate::error::FrontendError;
use crate::span::Span;

/// The Linux signal names, without `SIG`.
const SIGNAL_NAMES: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
    "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
    "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

pub(super) fn validate_signal(sig: &str, span: Span) -> Result<(), FrontendError> {
    let name = sig.trim_start_matches("SIG");
    let ok = sig.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n))
        || SIGNAL_NAMES.contains(&name)
        || name.starts_with("RTMIN")
        || name.starts_with("RTMAX");
    if ok {
        Ok(())
    } else {
        Err(FrontendError::new(format!("invalid signal {sig:?}"), span)
            .with_hint("use a name like SIGTERM or a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    #[test]
    fn names_numbers_and_realtime_signals_are_valid() {
        for ok in ["SIGTERM", "TERM", "KILL", "SIGWINCH", "1", "9", "64", "SIGRTMIN", "SIGRTMIN+3", "RTMAX-1"]
        {
            assert!(validate_signal(ok, Span::default()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn unknown_names_and_out_of_range_numbers_are_errors_at_the_span() {
        let span = Span::new(Pos::new(4, 12), Pos::new(4, 16));
        for bad in ["0", "65", "-9", "sigterm", "term", "SIGFOO", "", "SIG"] {
            let e = validate_signal(bad, span).unwrap_err();
            assert_eq!(e.message, format!("invalid signal {bad:?}"));
            assert_eq!(e.span, span);
            assert_eq!(e.hint.as_deref(), Some("use a name like SIGTERM or a number"));
        }
    }
}
