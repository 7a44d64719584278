//! The builder's error: what went wrong, at which Dockerfile step and span,
//! with a hint, and for a failed RUN its exit code and last output lines.

use rbuild_frontend::span::Span;

/// Boxed so `Result<_, BuildError>` stays small on the happy path.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.message)]
pub struct BuildError(Box<Details>);

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
        }))
    }

    pub fn at(mut self, span: Span) -> BuildError {
        self.span.get_or_insert(span);
        self
    }

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
                BuildError::new(crate::error::chain(&e))
            }
        }
    )*};
}

from_error!(
    rbuild_cache::StoreError,
    rbuild_layer::LayerError,
    crate::sandbox::SandboxError,
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
