//! The one error every rbuild crate uses for a failed filesystem operation:
//! what was being done, to which path, and the `io::Error` itself (kept as
//! the source). Also recognising a full disk (or an exhausted quota) by its
//! error kind anywhere in an error's source chain, so no caller has to look
//! for "No space left on device" in a message.

use std::borrow::Cow;
use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};

/// A filesystem operation that failed: `"{action} {path}: {source}"`, e.g.
/// `write /var/lib/rbuild/refs.json: No space left on device (os error 28)`,
/// or `"{action}: {source}"` for one on no path (a pipe, a process).
#[derive(Debug, thiserror::Error)]
#[error("{action}{}: {source}", if path.as_os_str().is_empty() { String::new() } else { format!(" {}", path.display()) })]
pub struct IoError {
    action: Cow<'static, str>,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl IoError {
    /// `action` is what was being done, worded to come before the path
    /// ("read", "create temp dir", "cannot inspect").
    pub fn new(action: impl Into<Cow<'static, str>>, path: impl Into<PathBuf>, source: io::Error) -> IoError {
        IoError { action: action.into(), path: path.into(), source }
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying error, e.g. to look at its [`io::ErrorKind`].
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// Whether the operation failed because the disk (or the user's quota)
    /// is full.
    pub fn is_storage_full(&self) -> bool {
        io_is_storage_full(&self.source)
    }
}

/// Attaches the action and the path to an `io::Result`'s error. Both are
/// converted only when there is an error.
pub trait IoContext<T> {
    fn ctx(self, action: impl Into<Cow<'static, str>>, path: impl Into<PathBuf>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: impl Into<Cow<'static, str>>, path: impl Into<PathBuf>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(action, path, source))
    }
}

/// Whether `err`, or any error in its source chain, is an `io::Error` that
/// says the disk or the quota is full. Errors wrapped inside an `io::Error`
/// (`io::Error::other(e)`) are looked into too, since `io::Error::source`
/// skips them.
pub fn is_storage_full(err: &(dyn Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io_is_storage_full(io) {
                return true;
            }
            if let Some(inner) = io.get_ref()
                && is_storage_full(inner)
            {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// ENOSPC or EDQUOT, by kind or (for errors made from a raw errno that std
/// does not classify) by number.
fn io_is_storage_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that wraps another, as a crate's error enum does.
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] IoError);

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper: {0}")]
    struct Wrapper(#[source] Outer);

    fn wrapped(errno: i32) -> Wrapper {
        Wrapper(Outer(IoError::new("write", "/store/blob", io::Error::from_raw_os_error(errno))))
    }

    #[test]
    fn enospc_two_levels_deep_is_recognised() {
        let err = wrapped(libc::ENOSPC);
        assert!(is_storage_full(&err));
        assert!(err.0.0.is_storage_full());
        assert!(is_storage_full(&wrapped(libc::EDQUOT)));
    }

    #[test]
    fn other_errors_are_not() {
        let err = wrapped(libc::EACCES);
        assert!(!is_storage_full(&err));
        assert!(!err.0.0.is_storage_full());
        assert!(!is_storage_full(&io::Error::other("No space left on device")));
    }

    #[test]
    fn an_error_inside_an_io_error_is_looked_into() {
        let inner = IoError::new("write", "/x", io::Error::from_raw_os_error(libc::ENOSPC));
        let outer = io::Error::other(inner);
        assert!(is_storage_full(&outer));
        assert!(is_storage_full(&Outer(IoError::new("copy", "/y", outer))));
    }

    #[test]
    fn display_names_action_path_and_cause() {
        let err: Result<(), IoError> =
            Err(io::Error::from_raw_os_error(libc::ENOENT)).ctx("read", Path::new("/a/b"));
        let err = err.unwrap_err();
        assert_eq!(err.to_string(), "read /a/b: No such file or directory (os error 2)");
        assert_eq!(
            (err.action(), err.path(), err.kind()),
            ("read", Path::new("/a/b"), io::ErrorKind::NotFound)
        );
        assert!(err.source().is_some_and(|s| s.downcast_ref::<io::Error>().is_some()));
    }
}
