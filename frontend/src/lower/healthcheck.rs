//! HEALTHCHECK to the image config's `Healthcheck`: the test command in
//! Docker's `CMD`/`CMD-SHELL`/`NONE` form, durations in nanoseconds (Go's
//! duration syntax, at least 1ms unless 0) and the retry count.

use crate::duration::parse_go_duration;
use crate::error::FrontendError;
use crate::graph::Healthcheck;
use crate::instructions::{Command, HealthArgs, Word};

pub(super) fn healthcheck(h: &HealthArgs) -> Result<Healthcheck, FrontendError> {
    let Some(cmd) = &h.command else {
        return Ok(Healthcheck { test: vec!["NONE".into()], ..Default::default() });
    };
    let test = match cmd {
        Command::Exec(v) => std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect(),
        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let retries = match &h.retries {
        None => 0,
        Some(w) => w
            .text
            .parse::<i64>()
            .ok()
            .filter(|r| *r >= 0)
            .ok_or_else(|| FrontendError::new(format!("invalid --retries {:?}", w.text), w.span))?,
    };
    Ok(Healthcheck {
        test,
        interval_ns: duration_flag(&h.interval, "--interval")?,
        timeout_ns: duration_flag(&h.timeout, "--timeout")?,
        start_period_ns: duration_flag(&h.start_period, "--start-period")?,
        start_interval_ns: duration_flag(&h.start_interval, "--start-interval")?,
        retries,
    })
}

/// A duration flag in nanoseconds; 0 when not given.
fn duration_flag(w: &Option<Word>, what: &str) -> Result<i64, FrontendError> {
    let Some(w) = w else { return Ok(0) };
    // A negative duration is as invalid here as a malformed one.
    let ns = parse_go_duration(&w.text).filter(|ns| *ns >= 0).ok_or_else(|| {
        FrontendError::new(format!("invalid {what} {:?}", w.text), w.span)
            .with_hint("write a duration such as 30s or 1m30s")
    })?;
    if ns < 1_000_000 && ns != 0 {
        return Err(FrontendError::new(format!("{what} {:?} cannot be less than 1ms", w.text), w.span));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::Kind;
    use crate::lower::testing::instruction;

    fn check(src: &str) -> Result<Healthcheck, FrontendError> {
        match instruction(src).kind {
            Kind::Healthcheck(h) => healthcheck(&h),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_disables_the_check() {
        assert_eq!(
            check("HEALTHCHECK NONE").unwrap(),
            Healthcheck { test: vec!["NONE".into()], ..Default::default() }
        );
    }

    #[test]
    fn durations_are_go_durations_in_nanoseconds() {
        let h = check("HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=300ms --start-interval=0 --retries=4 CMD [\"curl\", \"-f\", \"http://x/\"]").unwrap();
        assert_eq!(h.test, ["CMD", "curl", "-f", "http://x/"]);
        assert_eq!(
            (h.interval_ns, h.timeout_ns, h.start_period_ns, h.start_interval_ns, h.retries),
            (90_000_000_000, 1_500_000_000, 300_000_000, 0, 4)
        );
        let h = check("HEALTHCHECK CMD curl -f http://x/ || exit 1").unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://x/ || exit 1"]);
        assert_eq!((h.interval_ns, h.timeout_ns, h.retries), (0, 0, 0), "unset flags are 0");
        assert_eq!(check("HEALTHCHECK --timeout=1ms CMD true").unwrap().timeout_ns, 1_000_000);
    }

    #[test]
    fn bad_durations_are_errors_at_the_flag() {
        let e = check("HEALTHCHECK --interval=5 CMD true").unwrap_err();
        assert_eq!(e.message, "invalid --interval \"5\"");
        assert_eq!(e.hint.as_deref(), Some("write a duration such as 30s or 1m30s"));
        assert_eq!((e.span.start.col, e.span.end.col), (13, 25), "the span is the flag");
        let e = check("HEALTHCHECK --timeout=-1s CMD true").unwrap_err();
        assert_eq!(e.message, "invalid --timeout \"-1s\"", "negative durations are invalid");
        let e = check("HEALTHCHECK --start-period=999us CMD true").unwrap_err();
        assert_eq!(e.message, "--start-period \"999us\" cannot be less than 1ms");
        assert_eq!(e.hint, None);
    }

    #[test]
    fn retries_must_be_a_count() {
        for bad in ["-1", "x", "1.5"] {
            let e = check(&format!("HEALTHCHECK --retries={bad} CMD true")).unwrap_err();
            assert_eq!(e.message, format!("invalid --retries {bad:?}"));
        }
    }
}
