//! The ONBUILD triggers a base image carries: each is parsed as one
//! instruction and run at the start of the stage built on it, reported at
//! that stage's FROM line (the trigger's own text is in another image).

use crate::error::FrontendError;
use crate::instructions::{self, Instruction, Kind};
use crate::parser;
use crate::span::Span;

/// The base image's triggers as instructions placed at `from` (the FROM
/// line of the stage that runs them).
pub(super) fn trigger_instructions(
    triggers: &[String],
    from: Span,
) -> Result<Vec<Instruction>, FrontendError> {
    triggers.iter().map(|trigger| trigger_instruction(trigger, from)).collect()
}

fn trigger_instruction(trigger: &str, from: Span) -> Result<Instruction, FrontendError> {
    let ast = parser::parse(trigger).map_err(|e| {
        FrontendError::new(
            format!("invalid ONBUILD trigger {trigger:?} in the base image: {}", e.message),
            from,
        )
    })?;
    let [node] = ast.nodes.as_slice() else {
        return Err(FrontendError::new(
            format!("ONBUILD trigger {trigger:?} of the base image is not a single instruction"),
            from,
        ));
    };
    let mut instr = instructions::from_node(node).map_err(|e| {
        FrontendError::new(format!("invalid ONBUILD trigger {trigger:?}: {}", e.message), from)
    })?;
    if matches!(instr.kind, Kind::Onbuild(_) | Kind::From { .. }) {
        return Err(FrontendError::new(
            format!("{} isn't allowed as an ONBUILD trigger", instr.keyword),
            from,
        ));
    }
    instr.span = from;
    Ok(instr)
}
