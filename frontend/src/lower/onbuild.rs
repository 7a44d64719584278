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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    fn from_line() -> Span {
        Span::new(Pos::new(3, 1), Pos::new(3, 22))
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn triggers_become_instructions_at_the_from_line() {
        let got =
            trigger_instructions(&strings(&["COPY app.txt /app/", "RUN echo $HOME"]), from_line()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].keyword, "COPY");
        assert_eq!(got[1].original, "RUN echo $HOME");
        assert!(matches!(&got[1].kind, Kind::Run { .. }));
        assert!(
            got.iter().all(|i| i.span == from_line()),
            "{:?}",
            got.iter().map(|i| i.span).collect::<Vec<_>>()
        );
        assert!(trigger_instructions(&[], from_line()).unwrap().is_empty());
    }

    #[test]
    fn bad_triggers_are_errors_at_the_from_line() {
        let error =
            |trigger: &str| trigger_instructions(&strings(&["RUN ok", trigger]), from_line()).unwrap_err();
        let e = error("FROM alpine");
        assert_eq!((e.message.as_str(), e.span), ("FROM isn't allowed as an ONBUILD trigger", from_line()));
        let e = error("ONBUILD RUN x");
        assert_eq!(e.message, "ONBUILD isn't allowed as an ONBUILD trigger");
        let e = error("RUN a\nRUN b");
        assert_eq!(
            e.message,
            "ONBUILD trigger \"RUN a\\nRUN b\" of the base image is not a single instruction"
        );
        let e = error("# only a comment");
        assert_eq!(
            e.message,
            "invalid ONBUILD trigger \"# only a comment\" in the base image: file with no instructions"
        );
        let e = error("FETCH x");
        assert_eq!(e.message, "invalid ONBUILD trigger \"FETCH x\": unknown instruction: FETCH");
        assert_eq!(e.span, from_line());
    }
}
