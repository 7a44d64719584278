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
}
