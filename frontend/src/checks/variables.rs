//! UndefinedVar: a word that BuildKit expands and checks (ENV and LABEL
//! keys and values, ARG defaults, WORKDIR, USER, VOLUME, STOPSIGNAL,
//! COPY/ADD paths, flags and unquoted heredoc bodies, RUN `--mount` values)
//! names a variable that is neither in the stage's environment nor a
//! declared ARG. RUN, CMD and ENTRYPOINT texts are left to the shell, and
//! BuildKit does not check EXPOSE, so those are not checked.

use std::collections::BTreeSet;

use super::entries::Entry;
use super::{Reporter, rules};
use crate::error::suggest;
use crate::shell::Lexer;

/// Args BuildKit never puts into the environment, which are therefore
/// never reported as undefined.
pub(super) const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// The variables a stage can see at one point.
#[derive(Debug, Clone, Default)]
pub(super) struct Scope {
    /// The build environment: the base image's env, ENV, and ARGs with a value.
    pub env: Vec<(String, String)>,
    /// Every ARG the stage (or its base stage) declared, with a value or not.
    pub declared: BTreeSet<String>,
}

impl Scope {
    pub(super) fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Expands `word` as BuildKit would, reporting the undefined variables
    /// it uses; on an expansion error the word is returned as written (the
    /// build reports the error).
    pub(super) fn expand(
        &self,
        lexer: &Lexer,
        entry: &Entry<'_>,
        word: &str,
        reporter: &mut Reporter,
    ) -> String {
        let Ok(expansion) = lexer.process_word(word, &self.env) else { return word.to_string() };
        let undefined = expansion
            .unmatched
            .iter()
            .filter(|name| !self.declared.contains(*name) && !NON_ENV_ARGS.contains(&name.as_str()));
        for name in undefined {
            let hint = suggest(name, self.env.iter().map(|(k, _)| k.as_str()))
                .map(|near| format!(" (did you mean ${near}?)"))
                .unwrap_or_default();
            reporter.report(
                &entry.config,
                &rules::UNDEFINED_VAR,
                entry.instr.span,
                format!("Usage of undefined variable '${name}'{hint}"),
            );
        }
        expansion.value
    }
}
