//! The stage walk: each stage starts from its base (an earlier stage's end
//! state, `scratch`, or an image's config through the [`BaseResolver`]) and
//! goes through its instructions in order, tracking what the rules need
//! (the environment and declared ARGs, whether a SHELL or an absolute
//! WORKDIR was set, the last CMD/ENTRYPOINT/HEALTHCHECK), and runs the
//! instruction rules on the stages the run checks.

use std::collections::BTreeMap;

use super::commands::{self, UsedOnce};
use super::entries::{Entry, File, StageSource};
use super::from_line::Globals;
use super::variables::{NON_ENV_ARGS, Scope};
use super::{CheckInput, Reporter, expose, ignored};
use crate::instructions::{CopyArgs, Kind};
use crate::lower::{BaseResolver, DEFAULT_PATH};
use crate::shell::{Env, Lexer};

/// What a stage passes on to a stage built FROM it.
#[derive(Debug, Clone, Default)]
struct StageEnd {
    scope: Scope,
    has_shell: bool,
    workdir_set: bool,
}

struct Walk<'a> {
    lexer: &'a Lexer,
    globals: &'a Globals,
    input: &'a CheckInput<'a>,
}

pub(super) fn stages(
    file: &File<'_>,
    globals: &Globals,
    lexer: &Lexer,
    input: &CheckInput<'_>,
    bases: &mut dyn BaseResolver,
    reporter: &mut Reporter,
) {
    let walk = Walk { lexer, globals, input };
    let mut ends: Vec<StageEnd> = Vec::with_capacity(file.stages.len());
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, stage) in file.stages.iter().enumerate() {
        let checked = input.stages.is_none_or(|set| set.contains(&index));
        let start = walk.base(stage, &names, &ends, checked, bases);
        // A stage not checked is still walked: later checked stages may
        // build FROM it.
        let mut unchecked = Reporter::default();
        let end = walk.stage(stage, start, if checked { &mut *reporter } else { &mut unchecked });
        ends.push(end);
        if let Some(name) = &stage.name {
            names.insert(name, index);
        }
    }
}

impl Walk<'_> {
    /// The state a stage starts from.
    fn base(
        &self,
        stage: &StageSource<'_>,
        names: &BTreeMap<&str, usize>,
        ends: &[StageEnd],
        checked: bool,
        bases: &mut dyn BaseResolver,
    ) -> StageEnd {
        let Kind::From { image, .. } = &stage.from.instr.kind else { return StageEnd::default() };
        let reference = self
            .lexer
            .process_word(&image.text, &self.globals.values)
            .map_or_else(|_| image.text.clone(), |e| e.value);
        if let Some(&parent) = names.get(reference.to_ascii_lowercase().as_str()) {
            return ends[parent].clone();
        }
        let mut start = StageEnd::default();
        start.scope.set("PATH", DEFAULT_PATH);
        // Images of stages that are not checked are not looked up: an
        // ordinary build need not have them.
        if checked
            && !reference.eq_ignore_ascii_case("scratch")
            && let Ok(meta) = bases.resolve(&reference, self.input.platform)
        {
            start.scope.env = meta.env;
            start.has_shell = !meta.shell.is_empty();
        }
        start
    }

    fn stage(&self, stage: &StageSource<'_>, mut state: StageEnd, reporter: &mut Reporter) -> StageEnd {
        let mut used_once = UsedOnce::default();
        for entry in &stage.body {
            self.instruction(entry, &mut state, &mut used_once, reporter);
        }
        state
    }

    fn instruction(
        &self,
        entry: &Entry<'_>,
        state: &mut StageEnd,
        used_once: &mut UsedOnce,
        reporter: &mut Reporter,
    ) {
        let expand =
            |word: &str, reporter: &mut Reporter| state.scope.expand(self.lexer, entry, word, reporter);
        match &entry.instr.kind {
            Kind::Env(pairs) => {
                // Keys expand too, all with the environment before this ENV.
                let expanded: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (expand(&k.text, reporter), expand(&v.text, reporter)))
                    .collect();
                commands::legacy_key_value(entry, reporter);
                for (key, value) in expanded {
                    commands::secret_name(entry, &key, reporter);
                    state.scope.set(&key, &value);
                }
            }
            Kind::Label(pairs) => {
                for (key, value) in pairs {
                    expand(&key.text, reporter);
                    expand(&value.text, reporter);
                }
                commands::legacy_key_value(entry, reporter);
            }
            Kind::Arg(decls) => {
                for (name, default) in decls {
                    commands::secret_name(entry, &name.text, reporter);
                    let value = match (self.input.build_args.get(&name.text), default) {
                        (Some(given), _) => Some(given.clone()),
                        (None, Some(default)) => {
                            Some(state.scope.expand(self.lexer, entry, &default.text, reporter))
                        }
                        (None, None) => self.globals.values.lookup(&name.text).map(str::to_string),
                    };
                    if let Some(value) = value
                        && !NON_ENV_ARGS.contains(&name.text.as_str())
                    {
                        state.scope.set(&name.text, &value);
                    }
                    state.scope.declared.insert(name.text.clone());
                }
            }
            Kind::Expose(ports) => {
                // BuildKit splits EXPOSE words after expansion and does not
                // report undefined variables in them.
                let ports: Vec<String> = ports
                    .iter()
                    .flat_map(|p| match self.lexer.process_words(&p.text, &state.scope.env) {
                        Ok(expansion) => expansion.words,
                        Err(_) => vec![p.text.clone()],
                    })
                    .collect();
                expose::check(entry, &ports, reporter);
            }
            Kind::Workdir(path) => {
                let path = expand(&path.text, reporter);
                commands::workdir(entry, &path, state.workdir_set, reporter);
                state.workdir_set = true;
            }
            Kind::User(word) | Kind::StopSignal(word) => {
                expand(&word.text, reporter);
            }
            Kind::Volume(words) => {
                for word in words {
                    expand(&word.text, reporter);
                }
            }
            Kind::Copy(args) | Kind::Add(args) => self.copy(entry, args, state, reporter),
            Kind::Run { mounts, .. } => {
                for mount in mounts {
                    expand(&mount.text, reporter);
                }
            }
            Kind::Cmd(_) | Kind::Entrypoint(_) => {
                used_once.see(entry, reporter);
                commands::json_args(entry, state.has_shell, reporter);
            }
            Kind::Healthcheck(_) => used_once.see(entry, reporter),
            Kind::Shell(_) => state.has_shell = true,
            Kind::From { .. } | Kind::Onbuild(_) | Kind::Maintainer(_) => {}
        }
    }

    /// COPY and ADD: their paths and flags expand; sources from the build
    /// context go to CopyIgnoredFile.
    fn copy(&self, entry: &Entry<'_>, args: &CopyArgs, state: &StageEnd, reporter: &mut Reporter) {
        let expand =
            |word: &str, reporter: &mut Reporter| state.scope.expand(self.lexer, entry, word, reporter);
        let sources: Vec<String> = args.sources.iter().map(|s| expand(&s.text, reporter)).collect();
        expand(&args.dest.text, reporter);
        for flag in [&args.chown, &args.chmod, &args.checksum].into_iter().flatten() {
            expand(&flag.text, reporter);
        }
        // Unquoted heredoc bodies expand raw: quotes are text, `\\` escapes.
        let raw = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
        for heredoc in args.heredocs.iter().filter(|h| h.expand) {
            state.scope.expand(&raw, entry, &heredoc.content, reporter);
        }
        let Some(ignore) = self.input.ignore else { return };
        if args.from.is_some() {
            return;
        }
        let from_context: Vec<String> =
            sources.into_iter().filter(|s| !s.contains("://") && !s.starts_with("git@")).collect();
        ignored::check(entry, &from_context, ignore, reporter);
    }
}
