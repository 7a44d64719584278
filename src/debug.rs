//! `rbuild debug …`: the parse tree in BuildKit's dump format.

use crate::cli::DebugCommand;
use crate::report::Failure;

pub fn run(what: DebugCommand) -> Result<(), Failure> {
    match what {
        DebugCommand::Ast { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
            let ast = rbuild_frontend::parser::parse(&text).map_err(|e| {
                let fe = rbuild_frontend::error::FrontendError {
                    message: e.message.clone(),
                    span: e.span,
                    hint: e.hint.clone(),
                };
                Failure::new("the Dockerfile does not parse")
                    .detail(fe.render(&file.display().to_string(), &text))
            })?;
            println!("{}", ast.dump());
            Ok(())
        }
    }
}
