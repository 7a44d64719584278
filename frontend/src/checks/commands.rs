//! Rules about single instructions of a stage: MaintainerDeprecated,
//! JSONArgsRecommended (shell-form CMD/ENTRYPOINT without a SHELL),
//! LegacyKeyValueFormat (`ENV key value`), MultipleInstructionsDisallowed
//! (a second CMD, ENTRYPOINT or HEALTHCHECK in a stage), WorkdirRelativePath
//! and SecretsUsedInArgOrEnv. Messages name the instruction as written
//! (`cmd` or `CMD`), as BuildKit's do.

use super::config::CheckConfig;
use super::entries::Entry;
use super::{Reporter, rules};
use crate::instructions::{Command, Kind};
use crate::parser::Node;
use crate::span::Span;

/// Name parts that suggest a secret, and parts that say it is not one
/// (`PUBLIC_KEY`, `PASSWORD_FILE`, `AUTH_VERSION`), compared without case
/// against the `_`-separated parts of a name.
const SECRET_PARTS: &[&str] =
    &["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
const NOT_SECRET_PARTS: &[&str] = &["public", "file", "version"];

pub(super) fn maintainer(node: &Node, config: &CheckConfig, reporter: &mut Reporter) {
    reporter.report(
        config,
        &rules::MAINTAINER_DEPRECATED,
        node.span,
        "Maintainer instruction is deprecated in favor of using label".to_string(),
    );
}

/// A shell-form CMD or ENTRYPOINT in a stage whose image has no SHELL.
pub(super) fn json_args(entry: &Entry<'_>, has_shell: bool, reporter: &mut Reporter) {
    if has_shell {
        return;
    }
    if let Kind::Cmd(Command::Shell(_)) | Kind::Entrypoint(Command::Shell(_)) = &entry.instr.kind {
        let keyword = entry.written_keyword();
        reporter.report(
            &entry.config,
            &rules::JSON_ARGS_RECOMMENDED,
            entry.instr.span,
            format!("JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"),
        );
    }
}

/// ENV and LABEL pairs written `key value` (the parser gives them an empty
/// separator).
pub(super) fn legacy_key_value(entry: &Entry<'_>, reporter: &mut Reporter) {
    if !matches!(entry.instr.kind, Kind::Env(_) | Kind::Label(_)) {
        return;
    }
    let keyword = entry.written_keyword();
    for triple in entry.node.args.chunks(3) {
        if triple.get(2).is_some_and(String::is_empty) {
            reporter.report(
                &entry.config,
                &rules::LEGACY_KEY_VALUE_FORMAT,
                entry.instr.span,
                format!(
                    "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
                ),
            );
        }
    }
}

/// Where a stage last set CMD, ENTRYPOINT and HEALTHCHECK; a stage does not
/// inherit these from its base.
#[derive(Default)]
pub(super) struct UsedOnce {
    cmd: Option<Span>,
    entrypoint: Option<Span>,
    healthcheck: Option<Span>,
}

impl UsedOnce {
    /// Reports the earlier instruction of the same kind, which is the one
    /// that has no effect.
    pub(super) fn see(&mut self, entry: &Entry<'_>, reporter: &mut Reporter) {
        let slot = match entry.instr.kind {
            Kind::Cmd(_) => &mut self.cmd,
            Kind::Entrypoint(_) => &mut self.entrypoint,
            Kind::Healthcheck(_) => &mut self.healthcheck,
            _ => return,
        };
        if let Some(earlier) = slot.replace(entry.instr.span) {
            reporter.report(
                &entry.config,
                &rules::MULTIPLE_INSTRUCTIONS_DISALLOWED,
                earlier,
                format!(
                    "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                    entry.written_keyword()
                ),
            );
        }
    }
}

/// The first WORKDIR of a stage chain that is relative (the path as
/// expanded).
pub(super) fn workdir(entry: &Entry<'_>, path: &str, workdir_set: bool, reporter: &mut Reporter) {
    if !workdir_set && !path.starts_with('/') {
        reporter.report(
            &entry.config,
            &rules::WORKDIR_RELATIVE_PATH,
            entry.instr.span,
            format!("Relative workdir {path:?} can have unexpected results if the base image changes"),
        );
    }
}

/// An ARG or ENV whose name looks like it holds a secret.
pub(super) fn secret_name(entry: &Entry<'_>, name: &str, reporter: &mut Reporter) {
    let has_part =
        |parts: &[&str]| name.split('_').any(|part| parts.iter().any(|p| part.eq_ignore_ascii_case(p)));
    if has_part(SECRET_PARTS) && !has_part(NOT_SECRET_PARTS) {
        reporter.report(
            &entry.config,
            &rules::SECRETS_USED_IN_ARG_OR_ENV,
            entry.instr.span,
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({} {name:?})",
                entry.instr.keyword
            ),
        );
    }
}
