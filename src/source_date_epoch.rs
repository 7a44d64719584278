//! `SOURCE_DATE_EPOCH`: the one clock a reproducible build, export or
//! import reads instead of the current time.

/// `SOURCE_DATE_EPOCH` from the environment, when set to a number.
pub fn from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok())
}
