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
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), hint: None, detail: None, code: 1 }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Failure {
        self.detail = Some(detail.into());
        self
    }

    pub fn report(mut self) -> ExitCode {
        // A full disk shows up deep in whatever was being written; what the
        // user can do about it is the same everywhere.
        let full_disk = |text: &str| text.contains("No space left on device");
        if full_disk(&self.message) || self.detail.as_deref().is_some_and(full_disk) {
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
        Failure::new(rbuild_builder::error::chain(&e))
    }
}

/// An archive that could not be read or written (`load`, `import`, a
/// build's `-o type=docker|oci`). Nothing reached the store.
pub fn archive_failure(e: rbuild_archive::ArchiveError) -> Failure {
    Failure::new(rbuild_builder::error::chain(&e))
        .hint("the store is unchanged; check the file is a complete docker save or OCI archive")
}
