//! The file as the checks see it: every node typed into an instruction,
//! with the `# check=` settings in force for it, split into the global
//! ARGs and the stages. The per-instruction rules BuildKit applies while it
//! types instructions run here, in file order, so findings before an
//! instruction that cannot be read are still reported.

use super::config::CheckConfig;
use super::{Reporter, commands, descriptions, naming};
use crate::error::FrontendError;
use crate::instructions::{self, Instruction, Kind};
use crate::parser::{Ast, Node};

/// One instruction with its node and its settings.
pub(super) struct Entry<'a> {
    pub node: &'a Node,
    pub instr: Instruction,
    /// The file's settings plus a `# check=` comment right above.
    pub config: CheckConfig,
}

impl Entry<'_> {
    /// The keyword as written (`From`, `copy`).
    pub fn written_keyword(&self) -> &str {
        self.node.original.split_whitespace().next().unwrap_or_default()
    }
}

pub(super) struct StageSource<'a> {
    pub from: Entry<'a>,
    /// `AS name`, lower-cased as stage names are matched.
    pub name: Option<String>,
    pub body: Vec<Entry<'a>>,
}

pub(super) struct File<'a> {
    /// The ARGs before the first FROM.
    pub globals: Vec<Entry<'a>>,
    /// At least one.
    pub stages: Vec<StageSource<'a>>,
}

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
