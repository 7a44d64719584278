//! The builder's error: what went wrong, at which Dockerfile step and span,
//! with a hint, and for a failed RUN its exit code and last output lines.
//! An error that came from a library keeps that error as its source, so the
//! command line can ask what it was (a full disk, say) by type.

use std::error::Error;
use std::sync::Arc;

use rbuild_frontend::span::Span;

/// Boxed so `Result<_, BuildError>` stays small on the happy path.
#[derive(Debug, Clone)]
pub struct BuildError(Box<Details>);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[derive(Debug, Clone)]
pub struct Details {
    pub message: String,
    /// The instruction's location in the Dockerfile.
    pub span: Option<Span>,
    pub hint: Option<String>,
    /// `[stage 2/4] RUN …` of the failing step.
    pub step: Option<String>,
    /// For a failed RUN: the exit code and the last lines it printed.
    pub exit_code: Option<i32>,
    pub tail: Vec<String>,
    /// The library error this one reports, kept whole (shared: a stage's
    /// error is handed to every stage waiting on it).
    pub cause: Option<Arc<dyn Error + Send + Sync>>,
}

impl BuildError {
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError(Box::new(Details {
            message: message.into(),
            span: None,
            hint: None,
            step: None,
            exit_code: None,
            tail: Vec::new(),
            cause: None,
        }))
    }

    /// An error reporting `e`: its message (with its causes, on one line)
    /// and `e` itself as the source.
    pub fn caused_by(e: impl Error + Send + Sync + 'static) -> BuildError {
        let mut built = BuildError::new(chain(&e));
        built.cause = Some(Arc::new(e));
        built
    }

    /// Puts what was being done in front of the message (`extract x.tar: …`),
    /// keeping the source.
    pub fn context(mut self, doing: impl std::fmt::Display) -> BuildError {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// Whether the disk (or the user's quota) ran full, by the error kind
    /// of any error in the chain.
    pub fn is_storage_full(&self) -> bool {
        rbuild_oci::io_error::is_storage_full(self)
    }

    pub fn at(mut self, span: Span) -> BuildError {
        self.span.get_or_insert(span);
        self
    }

    /// Adds a hint unless one is set: the first hint, given closest to the
    /// failure, is the most specific and wins.
    pub fn hint(mut self, hint: impl Into<String>) -> BuildError {
        self.hint.get_or_insert(hint.into());
        self
    }

    pub fn step(mut self, title: impl Into<String>) -> BuildError {
        self.step.get_or_insert(title.into());
        self
    }
}

impl std::ops::Deref for BuildError {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for BuildError {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for BuildError {
            fn from(e: $t) -> BuildError {
                BuildError::caused_by(e)
            }
        }
    )*};
}

from_error!(
    rbuild_cache::StoreError,
    rbuild_layer::LayerError,
    crate::sandbox::error::SandboxError,
    crate::copy::CopyError,
    crate::context::ContextError,
    std::io::Error
);

/// An error and its sources on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let text = src.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = src.source();
    }
    s
}
