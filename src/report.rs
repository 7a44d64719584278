//! How a failed command tells the user: `error: …`, the Dockerfile line
//! with a caret when there is one, the step's last output, and a hint.

use std::process::ExitCode;

/// A command's failure, ready to print.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    /// Pre-rendered detail (source excerpt, output tail).
    pub detail: Option<String>,
    pub code: u8,
    /// The disk (or a quota) ran full, as the error's kind said.
    pub storage_full: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), hint: None, detail: None, code: 1, storage_full: false }
    }

    /// A failure reporting `e`: its message with its causes on one line,
    /// and whether any of them was a full disk.
    pub fn caused_by(e: &(dyn std::error::Error + 'static)) -> Failure {
        let mut f = Failure::new(rbuild_builder::error::chain(e));
        f.storage_full = rbuild_oci::io_error::is_storage_full(e);
        f
    }

    /// Adds a hint unless one is set: the first hint, given closest to the
    /// failure, is the most specific and wins (as in the libraries).
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint.get_or_insert(hint.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Failure {
        self.detail = Some(detail.into());
        self
    }

    pub fn report(mut self) -> ExitCode {
        // A full disk shows up deep in whatever was being written; what the
        // user can do about it is the same everywhere, so it replaces any
        // other hint.
        if self.storage_full {
            self.hint = Some(
                "the disk holding the store (or the output) is full; nothing half-written was kept. \
                 Free space, e.g. with `rbuild image prune -a` and `rbuild builder prune -a`, and run it again"
                    .into(),
            );
        }
        eprintln!("error: {}", self.message);
        if let Some(d) = &self.detail {
            eprint!("{d}");
            if !d.ends_with('\n') {
                eprintln!();
            }
        }
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
        ExitCode::from(self.code)
    }
}

impl From<rbuild_cache::StoreError> for Failure {
    fn from(e: rbuild_cache::StoreError) -> Failure {
        Failure::caused_by(&e)
    }
}

/// An archive that could not be read or written (`load`, `import`, a
/// build's `-o type=docker|oci`). Nothing reached the store.
pub fn archive_failure(e: rbuild_archive::ArchiveError) -> Failure {
    Failure::caused_by(&e)
        .hint("the store is unchanged; check the file is a complete docker save or OCI archive")
}
