//! Helpers shared by rbuild's tests, and only by them: a dev-dependency of
//! the workspace's crates, never published.
//!
//! - [`prereq`]: what a test needs from the machine (root, a tool, Docker,
//!   busybox-static, a base image under `/opt/bases`, BuildKit's test
//!   corpus), each check saying what is missing and how to get it.
//! - [`skip`]: the one way a test gives up for a missing prerequisite, the
//!   [`require!`] macro. Without `RBUILD_TEST_STRICT=1` the test prints
//!   `skipped: <test>: <reason>` and adds a line to the skip list that
//!   `scripts/test.sh` prints at the end of the run; with it (CI), the test
//!   fails instead.
//! - [`rawtar`]: tars written header by header, names and types unchecked,
//!   so tests can say anything a hostile archive can.
//! - [`compress`]: gzip and zstd of a byte string.
//! - [`fixtures`]: the busybox root filesystem that integration tests build on.
//! - [`watch`]: a listing of a directory tree taken before a test acts and
//!   compared after, proving that nothing outside what the test may change
//!   was created, changed or deleted.

pub mod compress;
pub mod fixtures;
pub mod prereq;
pub mod rawtar;
pub mod skip;
pub mod watch;

pub use compress::{gzip, zstd};
pub use fixtures::busybox_rootfs;
pub use prereq::{Missing, Need};
pub use rawtar::{RawTar, TEST_MTIME};
pub use skip::{partly, skip, strict};
pub use watch::TreeWatch;
