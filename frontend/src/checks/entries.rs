//! The file as the checks hold it: each instruction with its node and the
//! `# check=` settings in force for it, the global ARGs and the stages.
//! Made by `source::read`, read by the rules.

use super::config::CheckConfig;
use crate::instructions::Instruction;
use crate::parser::Node;

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
