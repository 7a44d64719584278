//! Description comments: the comment lines right above `FROM … AS name`
//! or `ARG name` describe it when one starts with the name
//! (`# name what it is`); `--call=outline|targets` show them, and the
//! experimental InvalidDefinitionDescription rule flags a comment in that
//! place that does not start with the name.

use super::config::CheckConfig;
use super::{Reporter, rules};
use crate::instructions::{Instruction, Kind};
use crate::parser::Node;

/// The description of `name` among the comments above its definition: the
/// rest of the first comment line that starts with `name `.
pub fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    comments.iter().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
}

/// InvalidDefinitionDescription for a FROM with a name or an ARG: the last
/// comment line above must start with one of the defined names.
pub(super) fn check(node: &Node, instr: &Instruction, config: &CheckConfig, reporter: &mut Reporter) {
    let (keyword, names): (&str, Vec<String>) = match &instr.kind {
        Kind::From { name: Some(name), .. } => ("FROM", vec![name.text.to_ascii_lowercase()]),
        Kind::Arg(decls) => ("ARG", decls.iter().map(|(name, _)| name.text.clone()).collect()),
        _ => return,
    };
    let Some(last) = node.comments.last() else { return };
    let first_word = last.split(' ').next().unwrap_or_default();
    if names.is_empty() || names.iter().any(|n| n == first_word) {
        return;
    }
    let example = if names.len() > 1 { "<arg_key>" } else { names[0].as_str() };
    reporter.report(
        config,
        &rules::INVALID_DEFINITION_DESCRIPTION,
        instr.span,
        format!("Comment for {keyword} should follow the format: `# {example} <description>`"),
    );
}
