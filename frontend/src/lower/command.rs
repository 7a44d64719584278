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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::Kind;
    use crate::lower::testing::instruction;

    /// The command and heredocs of a RUN.
    fn run(src: &str) -> (Command, Vec<Heredoc>) {
        match instruction(src).kind {
            Kind::Run { command, heredocs, .. } => (command, heredocs),
            other => panic!("{other:?}"),
        }
    }

    fn bash() -> ImageMeta {
        ImageMeta {
            shell: vec!["/bin/bash".into(), "-eo".into(), "pipefail".into(), "-c".into()],
            ..Default::default()
        }
    }

    #[test]
    fn exec_form_is_kept_and_shell_form_uses_the_stage_shell() {
        let exec = Command::Exec(vec!["a".into(), "$B".into()]);
        assert_eq!(command_argv(&exec, &bash()), ["a", "$B"]);
        let shell = Command::Shell("echo $B".into());
        assert_eq!(command_argv(&shell, &ImageMeta::default()), ["/bin/sh", "-c", "echo $B"]);
        assert_eq!(command_argv(&shell, &bash()), ["/bin/bash", "-eo", "pipefail", "-c", "echo $B"]);
    }

    #[test]
    fn a_sole_heredoc_is_the_script_for_the_shell() {
        let (command, heredocs) = run("RUN <<EOF\necho one\necho two\nEOF\n");
        assert_eq!(
            run_argv(&command, &heredocs, &bash()),
            (
                vec![
                    "/bin/bash".into(),
                    "-eo".into(),
                    "pipefail".into(),
                    "-c".into(),
                    "echo one\necho two\n".into()
                ],
                None
            )
        );
    }

    #[test]
    fn a_sole_shebang_heredoc_runs_as_a_program() {
        let (command, heredocs) = run("RUN <<PY\n#!/usr/bin/env python3\nprint(1)\nPY\n");
        let (argv, script) = run_argv(&command, &heredocs, &ImageMeta::default());
        assert_eq!(argv, ["/dev/pipes/PY"]);
        assert_eq!(
            script,
            Some(InlineScript { name: "PY".into(), content: "#!/usr/bin/env python3\nprint(1)\n".into() })
        );
    }

    #[test]
    fn other_heredocs_are_read_by_the_shell_from_the_whole_text() {
        let (command, heredocs) = run("RUN python3 <<EOF\nprint(1)\nEOF\n");
        let (argv, script) = run_argv(&command, &heredocs, &ImageMeta::default());
        assert_eq!(argv, ["/bin/sh", "-c", "python3 <<EOF\nprint(1)\nEOF"]);
        assert_eq!(script, None);
        let (command, heredocs) = run("RUN <<A <<B\na\nA\nb\nB\n");
        assert!(sole_heredoc(&command, &heredocs).is_none(), "two heredocs are not one script");
        assert_eq!(run_argv(&command, &heredocs, &ImageMeta::default()).0[2], "<<A <<B\na\nA\nb\nB");
    }

    #[test]
    fn commands_without_heredocs_are_plain() {
        let (command, heredocs) = run("RUN [\"make\", \"-j2\"]");
        assert_eq!(run_argv(&command, &heredocs, &bash()), (vec!["make".into(), "-j2".into()], None));
        assert!(sole_heredoc(&command, &heredocs).is_none());
    }

    #[test]
    fn heredoc_summaries_show_the_first_nonblank_line() {
        assert_eq!(summarize_heredoc("\n  echo hi  \n\n"), "echo hi");
        assert_eq!(summarize_heredoc("set -e\napt-get update\n"), "set -e...");
        assert_eq!(summarize_heredoc(" \n\t\n"), "");
    }
}
