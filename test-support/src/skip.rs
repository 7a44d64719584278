//! Strict mode and the skip list: what a test does when a prerequisite is
//! missing.
//!
//! A test never passes by returning early unnoticed. [`require!`] (or
//! [`skip`], for a helper that finds something missing while the test runs)
//! either
//!
//! - in strict mode (`RBUILD_TEST_STRICT=1`, which `scripts/test.sh` sets
//!   when `CI` is set): panics with `prerequisite missing in strict mode:
//!   <reason>`, so the test fails; or
//! - otherwise: prints `skipped: <test>: <reason>` on the real stderr (past
//!   libtest's output capture, so it shows in a normal run) and appends
//!   `<test>: <reason>` to the skip list, the file named by
//!   `RBUILD_TEST_SKIPS` or else `<workspace>/target/test-skips.txt`.
//!   libtest has no end-of-run hook, so `scripts/test.sh` empties that file
//!   before the run and prints it after: the run ends with what was skipped
//!   and why.
//!
//! [`require!`]: crate::require

use std::io::Write;
use std::path::PathBuf;

use crate::prereq::{Missing, workspace_root};

/// The variable that turns strict mode on (`1`).
pub const STRICT_VAR: &str = "RBUILD_TEST_STRICT";
/// The variable naming the skip list file.
pub const SKIPS_VAR: &str = "RBUILD_TEST_SKIPS";

/// Whether a missing prerequisite fails the test (`RBUILD_TEST_STRICT=1`).
pub fn strict() -> bool {
    std::env::var(STRICT_VAR).is_ok_and(|v| v == "1")
}

/// The skip list: `$RBUILD_TEST_SKIPS`, else `<workspace>/target/test-skips.txt`.
pub fn skips_file() -> PathBuf {
    std::env::var_os(SKIPS_VAR).map_or_else(|| workspace_root().join("target/test-skips.txt"), PathBuf::from)
}

/// The running test's name as libtest gives it (`module::test`), after the
/// test binary's name without cargo's hash: `it::build::cached_rebuild`.
pub fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_string());
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let test = thread.name().filter(|name| *name != "main").unwrap_or("?");
    format!("{binary}::{test}")
}

/// Gives up on the running test for a missing prerequisite: panics in strict
/// mode; otherwise says so and records it in the skip list. The caller then
/// returns (the [`require!`](crate::require) macro does both).
pub fn skip(missing: impl Into<Missing>) {
    let missing = missing.into();
    let test = test_name();
    if strict() {
        record(&format!("{test}: FAILED in strict mode: {missing}"));
        panic!("prerequisite missing in strict mode: {missing}");
    }
    // Straight to the process's stderr: libtest captures only the print
    // macros, and a skip should show in the run's output.
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {missing}");
    record(&format!("{test}: {missing}"));
}

/// For a test that checks less, rather than nothing, without a
/// prerequisite: whether `need` is met. If it is not, the part that will
/// not be checked is recorded like a [`skip`] (`<test>: <part> not checked:
/// <reason>`), and in strict mode the test fails; otherwise it goes on with
/// the rest.
pub fn partly<T>(need: crate::Need<T>, part: &str) -> bool {
    match need {
        Ok(_) => true,
        Err(missing) => {
            skip(format!("{part} not checked: {missing}"));
            false
        }
    }
}

/// Appends one line to the skip list. A single `write` on an `O_APPEND`
/// file, so lines from parallel tests do not interleave. A list that cannot
/// be written (a test re-run as another user) loses the line, not the test.
fn record(line: &str) {
    let path = skips_file();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// Evaluates prerequisite checks ([`Need`](crate::Need)s) in order; at the
/// first one missing, [`skip`]s and returns from the calling test. With a
/// single check, evaluates to what it found:
///
/// ```
/// use rbuild_test_support::{prereq, require};
///
/// fn a_test() {
///     require!(prereq::root(), prereq::tool("skopeo"));
///     let corpus = require!(prereq::buildkit_corpus());
///     assert!(corpus.join("testfiles").is_dir());
/// }
/// # let _ = a_test;
/// ```
#[macro_export]
macro_rules! require {
    ($need:expr $(,)?) => {
        match $need {
            Ok(found) => found,
            Err(missing) => {
                $crate::skip::skip(missing);
                return;
            }
        }
    };
    ($($need:expr),+ $(,)?) => {
        $( $crate::require!($need); )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_binary_and_the_thread() {
        let name = test_name();
        assert!(name.ends_with("::skip::tests::the_test_name_is_the_binary_and_the_thread"), "{name}");
        assert!(name.starts_with("rbuild_test_support::"), "{name}");
    }
}
