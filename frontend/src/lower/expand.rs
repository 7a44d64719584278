//! Word expansion for lowering: the shell lexer's `ProcessWord` and
//! `ProcessWords` with their errors turned into frontend errors at the
//! word's span.

use crate::error::FrontendError;
use crate::instructions::Word;
use crate::shell::{Env, Lexer, ShellError};
use crate::span::Span;

/// One word in, one word out (quotes removed, variables expanded).
pub(super) fn expand(lexer: &Lexer, word: &Word, env: &dyn Env) -> Result<String, FrontendError> {
    expand_text(lexer, &word.text, word.span, env)
}

/// [`expand`] for text that is not a [`Word`] of its own (a mount field, a
/// heredoc body), reported at `span`.
pub(super) fn expand_text(
    lexer: &Lexer,
    text: &str,
    span: Span,
    env: &dyn Env,
) -> Result<String, FrontendError> {
    lexer.process_word(text, env).map(|e| e.value).map_err(|e| cannot_expand(text, span, &e))
}

/// A word split into words after expansion, joined by single spaces
/// (EXPOSE: a variable may hold several ports).
pub(super) fn expand_words(lexer: &Lexer, word: &Word, env: &dyn Env) -> Result<String, FrontendError> {
    lexer
        .process_words(&word.text, env)
        .map(|e| e.value)
        .map_err(|e| cannot_expand(&word.text, word.span, &e))
}

fn cannot_expand(text: &str, span: Span, error: &ShellError) -> FrontendError {
    FrontendError::new(format!("cannot expand {text:?}: {}", error.message), span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;
    use crate::vars::Vars;

    fn word(text: &str) -> Word {
        Word { text: text.into(), span: Span::new(Pos::new(5, 9), Pos::new(5, 30)) }
    }

    fn env() -> Vars {
        Vars::from(vec![("P".to_string(), "80  443/udp".to_string()), ("Q".to_string(), "a b".to_string())])
    }

    #[test]
    fn a_word_stays_one_word() {
        let lexer = Lexer::new('\\');
        assert_eq!(expand(&lexer, &word("\"$Q\"-${P%% *}"), &env()).unwrap(), "a b-80");
        assert_eq!(expand_text(&lexer, "x$Q", Span::default(), &env()).unwrap(), "xa b");
    }

    #[test]
    fn words_split_after_expansion() {
        let lexer = Lexer::new('\\');
        assert_eq!(expand_words(&lexer, &word("$P 8080"), &env()).unwrap(), "80 443/udp 8080");
        assert_eq!(expand_words(&lexer, &word("\"$Q\""), &env()).unwrap(), "a b", "quotes keep one word");
    }

    #[test]
    fn errors_name_the_text_and_point_at_the_word() {
        let lexer = Lexer::new('\\');
        for result in
            [expand(&lexer, &word("${X:?unset}"), &env()), expand_words(&lexer, &word("${X:?unset}"), &env())]
        {
            let e = result.unwrap_err();
            assert_eq!(e.message, "cannot expand \"${X:?unset}\": X: unset");
            assert_eq!(e.span, word("").span);
        }
    }
}
