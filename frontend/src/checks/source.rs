//! Reads the file for the checks: every node typed into an instruction,
//! with the `# check=` settings in force for it, split into the global
//! ARGs and the stages. The per-instruction rules BuildKit applies while it
//! types instructions run here, in file order, so findings before an
//! instruction that cannot be read are still reported.

use super::config::CheckConfig;
use super::entries::{Entry, File, StageSource};
use super::{Reporter, commands, descriptions, naming};
use crate::error::FrontendError;
use crate::instructions::{self, Kind};
use crate::parser::Ast;

pub(super) fn read<'a>(
    ast: &'a Ast,
    config: &CheckConfig,
    reporter: &mut Reporter,
) -> Result<File<'a>, FrontendError> {
    let mut file = File { globals: Vec::new(), stages: Vec::new() };
    for node in &ast.nodes {
        let config = config.with_comments(&node.comments);
        match node.keyword.as_str() {
            "maintainer" => commands::maintainer(node, &config, reporter),
            "from" => naming::from_casing(node, &config, reporter),
            _ => {}
        }
        let instr = instructions::from_node(node)?;
        descriptions::check(node, &instr, &config, reporter);
        let entry = Entry { node, instr, config };
        match (&entry.instr.kind, file.stages.last_mut()) {
            (Kind::From { name, .. }, _) => {
                let name = name.as_ref().map(|n| n.text.to_ascii_lowercase());
                file.stages.push(StageSource { from: entry, name, body: Vec::new() });
            }
            (_, Some(stage)) => stage.body.push(entry),
            (Kind::Arg(_), None) => file.globals.push(entry),
            (_, None) => {
                return Err(FrontendError::new(
                    format!("{} before the first FROM", entry.instr.keyword),
                    entry.instr.span,
                )
                .with_hint("only ARG may come before the first FROM; start each stage with FROM <image>"));
            }
        }
    }
    if file.stages.is_empty() {
        return Err(FrontendError::new("the Dockerfile has no FROM instruction", ast.span)
            .with_hint("start the build stage with FROM <image>"));
    }
    Ok(file)
}
