//! Build progress events. The builder reports; the command line decides how
//! to show them (live TTY view, plain lines, quiet).

use std::time::Duration;

/// Which step an event is about: `[label number/total]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepId {
    pub stage: usize,
    pub label: String,
    pub number: usize,
    pub total: usize,
    /// The instruction as written (`RUN echo hi`).
    pub text: String,
}

impl StepId {
    /// `[deps 2/4] RUN echo hi`
    pub fn title(&self) -> String {
        format!("[{} {}/{}] {}", self.label, self.number, self.total, self.text)
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A step began running (not served from cache).
    Started { step: StepId, reason: String },
    /// A step was served from the cache.
    Cached { step: StepId },
    /// `--explain`: the step would run, for this reason.
    WouldRun { step: StepId, reason: String },
    /// A line of a running step's output.
    Log { step: StepId, line: String },
    /// A step finished running.
    Done { step: StepId, elapsed: Duration },
    /// A step failed.
    Failed { step: StepId, elapsed: Duration },
    /// Something worth telling the user (a warning, an export).
    Note { message: String },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// Discards every event.
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}
