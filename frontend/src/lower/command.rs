//! How a command becomes an argv: CMD, ENTRYPOINT and RUN in exec form as
//! written, in shell form wrapped in the stage's SHELL; and RUN heredocs,
//! which are a script for the shell, a `#!` program of their own, or input
//! the shell reads itself.

use crate::graph::{INLINE_SCRIPT_DIR, ImageMeta, InlineScript};
use crate::instructions::Command;
use crate::parser::Heredoc;

/// Exec form as is; shell form wrapped in the stage's shell.
pub(super) fn command_argv(c: &Command, meta: &ImageMeta) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = meta.shell_or_default();
            v.push(s.clone());
            v
        }
    }
}

/// The argv of a RUN and, for a `#!` heredoc, the script it runs.
pub(super) fn run_argv(
    command: &Command,
    heredocs: &[Heredoc],
    meta: &ImageMeta,
) -> (Vec<String>, Option<InlineScript>) {
    let Command::Shell(cmd) = command else { return (command_argv(command, meta), None) };
    if heredocs.is_empty() {
        return (command_argv(command, meta), None);
    }
    let mut shell = meta.shell_or_default();
    match sole_heredoc(command, heredocs) {
        // A script with its own interpreter: run the file, not the shell
        // (BuildKit mounts it the same way).
        Some(body) if body.content.starts_with("#!") => {
            let script = InlineScript { name: body.name.clone(), content: body.content.clone() };
            (vec![format!("{INLINE_SCRIPT_DIR}/{}", body.name)], Some(script))
        }
        Some(body) => {
            shell.push(body.content.clone());
            (shell, None)
        }
        None => {
            // The shell itself reads the heredocs (`python3 <<EOF`, several
            // bodies on one line): give it the text back whole.
            let mut text = cmd.clone();
            for h in heredocs {
                text.push('\n');
                text.push_str(&h.content);
                text.push_str(&h.name);
            }
            shell.push(text);
            (shell, None)
        }
    }
}

/// The heredoc of a RUN whose shell text is nothing but its one marker
/// (`RUN <<EOF`): that body is the whole command.
pub(super) fn sole_heredoc<'a>(command: &Command, heredocs: &'a [Heredoc]) -> Option<&'a Heredoc> {
    let Command::Shell(cmd) = command else { return None };
    let t = cmd.trim();
    let only_marker = t.starts_with("<<") && !t.contains(char::is_whitespace);
    match heredocs {
        [one] if only_marker => Some(one),
        _ => None,
    }
}

/// The first lines of a heredoc, for progress (`RUN <<EOF (echo hi…)`).
pub(super) fn summarize_heredoc(content: &str) -> String {
    let lines: Vec<&str> = content.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first, ..] => format!("{first}..."),
    }
}
