//! `SOURCE_DATE_EPOCH`: the one clock a reproducible build, export or
//! import reads instead of the current time.

/// `SOURCE_DATE_EPOCH` from the environment, when set to a number.
pub fn from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok())
}

/// The clock of a build: `--build-arg SOURCE_DATE_EPOCH=…` (how BuildKit
/// is given it), else the environment, else a global `ARG
/// SOURCE_DATE_EPOCH=…` default in the Dockerfile. A value that is no
/// number of seconds is an error.
pub fn for_build(
    build_args: &std::collections::BTreeMap<String, String>,
    dockerfile_default: Option<&str>,
) -> Result<Option<i64>, crate::report::Failure> {
    let parse = |v: &str| {
        v.trim().parse().map(Some).map_err(|_| {
            crate::report::Failure::new(format!("invalid SOURCE_DATE_EPOCH: {v}"))
                .hint("give the time as whole seconds since 1970-01-01 UTC, e.g. $(git log -1 --format=%ct)")
        })
    };
    match (build_args.get("SOURCE_DATE_EPOCH"), from_env(), dockerfile_default) {
        (Some(v), _, _) => parse(v),
        (None, Some(secs), _) => Ok(Some(secs)),
        (None, None, Some(v)) => parse(v),
        (None, None, None) => Ok(None),
    }
}
