//! A Dockerfile's text and the name it is shown by, and how what the
//! frontend says about it reaches the user: errors with the source line and
//! a caret, warnings prefixed with `FILE:LINE:`.

use std::io::Read;
use std::path::{Path, PathBuf};

use rbuild_frontend::error::FrontendError;
use rbuild_frontend::graph::Warning;

use crate::report::Failure;

/// A Dockerfile as read, before parsing.
pub struct Dockerfile {
    /// Where it was read from (`-` for stdin).
    pub path: PathBuf,
    /// `path` as errors and warnings name it.
    pub name: String,
    pub text: String,
}

impl Dockerfile {
    fn new(path: PathBuf, text: String) -> Dockerfile {
        Dockerfile { name: path.display().to_string(), path, text }
    }

    /// The Dockerfile of a build: `-f PATH`, `-f -` (stdin), or
    /// CONTEXT/Dockerfile (CONTEXT/dockerfile when only that exists).
    pub fn for_build(file: Option<&Path>, context: &Path) -> Result<Dockerfile, Failure> {
        match file {
            Some(p) if p.as_os_str() == "-" => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::new(format!("cannot read the Dockerfile from stdin: {e}")))?;
                Ok(Dockerfile::new(PathBuf::from("-"), text))
            }
            file => {
                let path = file.map_or_else(|| default_dockerfile(context), Path::to_path_buf);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Dockerfile::new(path, text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(Failure::new(format!("cannot find the Dockerfile {}", path.display()))
                            .hint("name it with -f PATH, or create CONTEXT/Dockerfile"))
                    }
                    Err(e) => {
                        Err(Failure::new(format!("cannot read the Dockerfile {}: {e}", path.display())))
                    }
                }
            }
        }
    }

    /// The file a `debug` command names.
    pub fn read(path: &Path) -> Result<Dockerfile, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
        Ok(Dockerfile::new(path.to_path_buf(), text))
    }

    /// A frontend error as a failure: its message, the source excerpt with
    /// a caret, and its hint on a line of its own.
    pub fn failure(&self, e: FrontendError) -> Failure {
        let hint = e.hint.clone();
        let mut f = Failure::new(e.message.clone())
            .detail(FrontendError { hint: None, ..e }.render(&self.name, &self.text));
        f.hint = hint;
        f
    }

    /// A lowering warning as printed: `warning: FILE:LINE: message`.
    pub fn warning(&self, w: &Warning) -> String {
        let at = w.span.map(|s| format!("{}:{}: ", self.name, s.start.line)).unwrap_or_default();
        format!("warning: {at}{}", w.message)
    }
}

/// CONTEXT/Dockerfile, or CONTEXT/dockerfile when only the lower-case name
/// exists (BuildKit's fallback).
fn default_dockerfile(context: &Path) -> PathBuf {
    let upper = context.join("Dockerfile");
    let lower = context.join("dockerfile");
    if !upper.exists() && lower.exists() { lower } else { upper }
}
