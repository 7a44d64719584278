//! From parsed nodes to stage sources: each node becomes a typed
//! instruction, in order; ARGs before the first FROM go into the global
//! scope, and each FROM starts a stage that collects the instructions up to
//! the next one.

use std::collections::BTreeSet;

use super::build_args::declare_globals;
use super::options::LowerOptions;
use crate::error::FrontendError;
use crate::instructions::{self, Instruction, Kind};
use crate::parser::Ast;
use crate::shell::Lexer;
use crate::vars::Vars;

/// One stage as written: its FROM and the instructions after it.
pub(super) struct StageSource {
    pub(super) from: Instruction,
    pub(super) body: Vec<Instruction>,
}

/// The global scope and the stages of a Dockerfile.
pub(super) struct Sources {
    /// Platform args and the ARGs before the first FROM, with their values.
    pub(super) globals: Vars,
    /// At least one.
    pub(super) stages: Vec<StageSource>,
}

/// Splits a Dockerfile into its global scope and its stages. Nodes are
/// converted and global ARGs evaluated in one pass, so the first error in
/// the file is the one reported.
pub(super) fn read_sources(
    ast: &Ast,
    opts: &LowerOptions,
    lexer: &Lexer,
    used_build_args: &mut BTreeSet<String>,
) -> Result<Sources, FrontendError> {
    // The platform args are in the global scope without being declared.
    let mut globals = Vars::from(opts.platform.args());
    let mut stages: Vec<StageSource> = Vec::new();
    for node in &ast.nodes {
        let instr = instructions::from_node(node)?;
        match (&instr.kind, stages.last_mut()) {
            (Kind::From { .. }, _) => stages.push(StageSource { from: instr, body: Vec::new() }),
            (_, Some(stage)) => stage.body.push(instr),
            (Kind::Arg(decls), None) => {
                declare_globals(decls, &opts.build_args, lexer, &mut globals, used_build_args)?
            }
            (_, None) => return Err(before_first_from(&instr)),
        }
    }
    if stages.is_empty() {
        return Err(FrontendError::new("the Dockerfile has no FROM instruction", ast.span)
            .with_hint("start the build stage with FROM <image>"));
    }
    Ok(Sources { globals, stages })
}

fn before_first_from(instr: &Instruction) -> FrontendError {
    FrontendError::new(format!("{} before the first FROM", instr.keyword), instr.span)
        .with_hint("only ARG may come before the first FROM; start each stage with FROM <image>")
}
