//! Parses arbitrary `.dockerignore` text and matches paths against it.
//!
//! Input layout: everything before the first NUL byte is the ignore file;
//! the rest, split on NUL bytes, are context-relative paths (both lossily
//! decoded as UTF-8). Checks that parsing and matching never panic or hang,
//! and that `can_skip_dir` keeps its promise: a directory it lets the walker
//! skip is itself excluded, and so is every path below it (tested with the
//! other input paths appended, when no `..` could lead them back out).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_builder::dockerignore::DockerIgnore;

/// True when `path` has a `..` component, which could climb out of a prefix.
fn climbs(path: &str) -> bool {
    path.split('/').any(|component| component == "..")
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let ignore_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let Ok(ignore) = DockerIgnore::parse(&ignore_text) else {
        return;
    };
    let paths: Vec<String> = parts.take(16).map(|p| String::from_utf8_lossy(p).into_owned()).collect();

    for dir in &paths {
        let excluded = ignore.is_excluded(dir);
        if !ignore.can_skip_dir(dir) {
            continue;
        }
        assert!(excluded, "can_skip_dir({dir:?}) but the directory itself is not excluded");
        if climbs(dir) {
            continue;
        }
        for below in paths.iter().filter(|p| !climbs(p)) {
            let inner = format!("{dir}/{below}");
            assert!(ignore.is_excluded(&inner), "can_skip_dir({dir:?}) but {inner:?} is not excluded");
        }
    }
});
