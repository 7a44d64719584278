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
