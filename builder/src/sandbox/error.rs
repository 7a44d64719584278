//! What can keep a RUN step from running at all (not the command's own
//! failure, which is an exit code).

use rbuild_oci::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Store(#[from] rbuild_cache::StoreError),
    #[error("could not set up the sandbox: {0}")]
    Setup(String),
    /// Something the step needs is missing from this system.
    #[error("{message}")]
    Unavailable { message: String, hint: String },
}

impl SandboxError {
    /// What the user can do about it, when rbuild knows.
    pub fn hint(&self) -> Option<&str> {
        match self {
            SandboxError::Unavailable { hint, .. } => Some(hint),
            _ => None,
        }
    }
}
