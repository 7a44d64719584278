//! What lowering one stage works with: the read-only [`StageCtx`] (options,
//! the global scope, stage names, which stage this is), the mutable
//! [`StageState`] its instructions change, and what a finished stage hands
//! on ([`StageEnd`] to stages built `FROM` it, [`LoweredStage`] to the
//! graph).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::history::nop_created_by;
use super::options::LowerOptions;
use super::references::{Source, resolve_source};
use crate::error::FrontendError;
use crate::graph::{ImageMeta, Op, Step};
use crate::instructions::Instruction;
use crate::shell::Lexer;
use crate::span::Span;
use crate::vars::Vars;

/// What every instruction of one stage may read.
pub(super) struct StageCtx<'a> {
    pub(super) lexer: &'a Lexer,
    pub(super) opts: &'a LowerOptions,
    /// The global scope: platform args and the ARGs before the first FROM.
    pub(super) globals: &'a Vars,
    /// Stage names (lower case) to indexes.
    pub(super) names: &'a BTreeMap<String, usize>,
    /// The stage being lowered.
    pub(super) index: usize,
}

impl StageCtx<'_> {
    /// A `--from` value: an earlier stage (remembered as read), a named
    /// context, or an image.
    pub(super) fn source_of(
        &self,
        st: &mut StageState,
        value: &str,
        span: Span,
    ) -> Result<Source, FrontendError> {
        let found = resolve_source(value, self.names, &self.opts.named_contexts, self.index, span)?;
        if let Source::Stage(i) = found {
            st.referenced.insert(i);
        }
        Ok(found)
    }
}

/// What a lowered stage hands to a stage built `FROM` it.
#[derive(Debug, Clone, Default)]
pub(super) struct StageEnd {
    pub(super) build_env: Vars,
    pub(super) args: Vec<(String, Option<String>)>,
}

/// The mutable state of one stage while it is lowered.
pub(super) struct StageState {
    pub(super) meta: ImageMeta,
    /// The build environment (see the module docs of `lower`).
    pub(super) build_env: Vars,
    /// The args declared so far (inherited from a base stage first), with
    /// their values, for the history of RUN steps.
    pub(super) args: Vec<(String, Option<String>)>,
    /// The names in `args`.
    pub(super) arg_names: HashSet<String>,
    /// A CMD of this stage survives a later ENTRYPOINT; an inherited one not.
    pub(super) cmd_set_here: bool,
    pub(super) steps: Vec<Step>,
    /// Stages read by COPY --from and mounts.
    pub(super) referenced: BTreeSet<usize>,
    /// `--build-arg` names some ARG of this stage declared.
    pub(super) used_build_args: BTreeSet<String>,
}

/// A stage after its last instruction.
pub(super) struct LoweredStage {
    pub(super) steps: Vec<Step>,
    pub(super) meta: ImageMeta,
    pub(super) end: StageEnd,
    pub(super) referenced: BTreeSet<usize>,
    pub(super) used_build_args: BTreeSet<String>,
}

impl StageState {
    /// The state before a stage's first instruction: its base's config, the
    /// build environment it starts with and the args it inherits.
    pub(super) fn new(meta: ImageMeta, build_env: Vars, args: Vec<(String, Option<String>)>) -> StageState {
        StageState {
            meta,
            build_env,
            arg_names: args.iter().map(|(k, _)| k.clone()).collect(),
            args,
            cmd_set_here: false,
            steps: Vec::new(),
            referenced: BTreeSet::new(),
            used_build_args: BTreeSet::new(),
        }
    }

    /// Records a step that changes only the image config.
    pub(super) fn push_meta(&mut self, instr: &Instruction, text: String) {
        self.steps.push(Step { op: Op::Meta, span: instr.span, created_by: nop_created_by(&text), text });
    }

    pub(super) fn finish(self) -> LoweredStage {
        LoweredStage {
            steps: self.steps,
            meta: self.meta,
            end: StageEnd { build_env: self.build_env, args: self.args },
            referenced: self.referenced,
            used_build_args: self.used_build_args,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::testing::instruction;
    use crate::shell::Env;

    #[test]
    fn a_stage_starts_with_its_inherited_args_and_hands_on_its_end() {
        let args = vec![("A".to_string(), Some("1".to_string())), ("B".to_string(), None)];
        let env = Vars::from(vec![("A".to_string(), "1".to_string())]);
        let mut st = StageState::new(ImageMeta::default(), env, args.clone());
        assert_eq!(st.arg_names, HashSet::from(["A".to_string(), "B".to_string()]));
        assert!(!st.cmd_set_here);
        st.push_meta(&instruction("USER app"), "USER app".into());
        let lowered = st.finish();
        assert_eq!(lowered.steps.len(), 1);
        assert_eq!(lowered.steps[0].op, Op::Meta);
        assert_eq!(lowered.steps[0].created_by, "/bin/sh -c #(nop) USER app");
        assert_eq!(lowered.steps[0].span.start.line, 1);
        assert_eq!(lowered.end.args, args);
        assert_eq!(lowered.end.build_env.lookup("A"), Some("1"));
    }
}
