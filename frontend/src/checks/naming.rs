//! How things are written: stage names in lower case and unique and not
//! reserved (StageNameCasing, DuplicateStageName, ReservedStageName), `AS`
//! in the case of its `FROM` (FromAsCasing), and instruction keywords all
//! in one case (ConsistentInstructionCasing).

use std::collections::BTreeSet;

use super::config::CheckConfig;
use super::entries::{Entry, File};
use super::{Reporter, rules};
use crate::parser::Node;

/// Names FROM and `--from` already give a meaning to.
const RESERVED_STAGE_NAMES: &[&str] = &["context", "scratch"];

/// StageNameCasing and FromAsCasing, on a FROM node before it is typed.
pub(super) fn from_casing(node: &Node, config: &CheckConfig, reporter: &mut Reporter) {
    let [_, as_word, name] = node.args.as_slice() else { return };
    if *name != name.to_lowercase() {
        reporter.report(
            config,
            &rules::STAGE_NAME_CASING,
            node.span,
            format!("Stage name '{name}' should be lowercase"),
        );
    }
    let from_word = node.original.split_whitespace().next().unwrap_or_default();
    // A FROM in mixed case is ConsistentInstructionCasing's business.
    let as_matches = if from_word == from_word.to_lowercase() {
        *as_word == as_word.to_lowercase()
    } else if from_word == from_word.to_uppercase() {
        *as_word == as_word.to_uppercase()
    } else {
        true
    };
    if !as_matches {
        reporter.report(
            config,
            &rules::FROM_AS_CASING,
            node.span,
            format!("'{as_word}' and '{from_word}' keywords' casing do not match"),
        );
    }
}

/// DuplicateStageName and ReservedStageName over all stages.
pub(super) fn stage_names(file: &File<'_>, config: &CheckConfig, reporter: &mut Reporter) {
    let mut seen = BTreeSet::new();
    for stage in &file.stages {
        let Some(name) = &stage.name else { continue };
        let span = stage.from.instr.span;
        if RESERVED_STAGE_NAMES.contains(&name.as_str()) {
            reporter.report(
                config,
                &rules::RESERVED_STAGE_NAME,
                span,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
            );
        }
        if !seen.insert(name.as_str()) {
            reporter.report(
                config,
                &rules::DUPLICATE_STAGE_NAME,
                span,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
            );
        }
    }
}

/// ConsistentInstructionCasing: the keywords of the stages (global ARGs
/// are not counted, as in BuildKit) written in one case each, and in the
/// case most of them use; a tie counts as upper case.
pub(super) fn instruction_casing(file: &File<'_>, config: &CheckConfig, reporter: &mut Reporter) {
    let entries = || file.stages.iter().flat_map(|s| std::iter::once(&s.from).chain(&s.body));
    let (mut lower, mut upper) = (0usize, 0usize);
    for entry in entries() {
        let word = entry.written_keyword();
        if word == word.to_lowercase() {
            lower += 1;
        } else if word == word.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for entry in entries() {
        casing_matches(entry, majority_lower, config, reporter);
    }
}

fn casing_matches(entry: &Entry<'_>, majority_lower: bool, config: &CheckConfig, reporter: &mut Reporter) {
    let word = entry.written_keyword();
    let expected = if majority_lower && word != word.to_lowercase() {
        "lowercase"
    } else if !majority_lower && word != word.to_uppercase() {
        "uppercase"
    } else {
        return;
    };
    reporter.report(
        config,
        &rules::CONSISTENT_INSTRUCTION_CASING,
        entry.instr.span,
        format!("Command '{word}' should match the case of the command majority ({expected})"),
    );
}
