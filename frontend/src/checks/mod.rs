//! Build checks: BuildKit's Dockerfile lint rules (`docker buildx build
//! --call=check`), run over the parsed file without building anything.
//!
//! The work follows BuildKit's order, so the same file gives the same
//! findings: while instructions are typed, the per-instruction rules
//! (`naming`: stage name and `AS` casing; `commands`: MAINTAINER;
//! `descriptions`: description comments); then the whole-file rules
//! (`naming`: duplicate and reserved stage names, keyword casing;
//! `from_line`: FROM lines with default and given args); then `dispatch`
//! walks the stages with their environment as a build would, for the rules
//! that need state (`variables`: undefined variables; `commands`: CMD,
//! ENTRYPOINT, HEALTHCHECK, ENV, LABEL, ARG, WORKDIR; `expose`; `ignored`:
//! sources the `.dockerignore` drops). `rules` is the table, `config` the
//! `# check=` settings, `outline` what `--call=outline|targets` reports.
//!
//! Nothing here does I/O: base images come through [`BaseResolver`] and
//! the `.dockerignore` through [`IgnoreRules`].

mod commands;
mod config;
mod descriptions;
mod dispatch;
mod entries;
mod expose;
mod from_line;
mod ignored;
mod naming;
pub mod outline;
pub mod rules;
mod source;
mod variables;

use std::collections::{BTreeMap, BTreeSet};

pub use config::CheckConfig;
pub use ignored::IgnoreRules;
pub use rules::Rule;

use crate::error::FrontendError;
use crate::lower::{BaseResolver, Platform};
use crate::parser::Ast;
use crate::span::Span;

/// One finding: which rule, BuildKit's message for it, and the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static Rule,
    pub message: String,
    pub span: Span,
}

/// What a check run needs besides the file.
pub struct CheckInput<'a> {
    pub config: CheckConfig,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: &'a Platform,
    /// The stages whose instructions are checked one by one: for an
    /// ordinary build the stages the target needs (as BuildKit does), for
    /// `--call=check` (`None`) every stage. FROM lines and whole-file rules
    /// cover every stage either way.
    pub stages: Option<&'a BTreeSet<usize>>,
    /// The build context's `.dockerignore`, for CopyIgnoredFile.
    pub ignore: Option<&'a dyn IgnoreRules>,
}

/// What a check run found. `error` is an instruction that could not be
/// read; the violations found before it are kept, as BuildKit shows
/// warnings before the error.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    pub error: Option<FrontendError>,
}

impl CheckReport {
    /// The rule names that were violated, each once, in table order: the
    /// `error=true` failure message names them.
    pub fn rule_names(&self) -> Vec<&'static str> {
        let found: BTreeSet<&str> = self.violations.iter().map(|v| v.rule.name).collect();
        rules::ALL.iter().map(|r| r.name).filter(|name| found.contains(name)).collect()
    }
}

/// Collects violations of enabled rules.
#[derive(Default)]
struct Reporter {
    violations: Vec<Violation>,
}

impl Reporter {
    fn report(&mut self, config: &CheckConfig, rule: &'static Rule, span: Span, message: String) {
        if config.enabled(rule) {
            self.violations.push(Violation { rule, message, span });
        }
    }
}

/// Runs every enabled check over `ast`.
pub fn check(ast: &Ast, input: &CheckInput<'_>, bases: &mut dyn BaseResolver) -> CheckReport {
    let mut reporter = Reporter::default();
    let file = match source::read(ast, &input.config, &mut reporter) {
        Ok(file) => file,
        Err(error) => return finish(reporter, Some(error)),
    };
    naming::stage_names(&file, &input.config, &mut reporter);
    naming::instruction_casing(&file, &input.config, &mut reporter);
    let lexer = crate::shell::Lexer::new(ast.directives.escape);
    let globals = from_line::Globals::new(&file, input, &lexer);
    from_line::invalid_defaults(&file, &globals, &lexer, &input.config, &mut reporter);
    from_line::from_lines(&file, &globals, &lexer, input, &mut reporter);
    dispatch::stages(&file, &globals, &lexer, input, bases, &mut reporter);
    finish(reporter, None)
}

/// Orders the findings by line, keeping BuildKit's order within a line.
fn finish(reporter: Reporter, error: Option<FrontendError>) -> CheckReport {
    let mut violations = reporter.violations;
    violations.sort_by_key(|v| v.span.start.line);
    CheckReport { violations, error }
}

#[cfg(test)]
mod tests;
