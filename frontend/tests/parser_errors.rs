//! Every syntax error the parser reports, with its span and hint.

use rbuild_frontend::parser::{ParseError, parse};
use rbuild_frontend::span::{Pos, Span};

fn parse_err(src: &str) -> ParseError {
    match parse(src) {
        Ok(ast) => panic!("expected an error, parsed {:?}", ast.dump()),
        Err(error) => error,
    }
}

fn span(start_line: usize, start_col: usize, end_line: usize, end_col: usize) -> Span {
    Span::new(Pos::new(start_line, start_col), Pos::new(end_line, end_col))
}

#[test]
fn file_without_instructions() {
    for src in ["", "\n\n", "   \n\t\n", "# Hello\n# only comments\n", "# syntax=x\n", "\u{feff}"] {
        let error = parse_err(src);
        assert_eq!(error.message, "file with no instructions", "{src:?}");
        assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("FROM")), "{src:?}");
        assert_eq!(error.span.start, Pos::new(1, 1));
    }
    assert_eq!(parse_err("# a\n# bc\n").span, span(1, 1, 2, 5));
}

#[test]
fn env_or_label_without_value() {
    let error = parse_err("FROM busybox\n\nENV PATH\n");
    assert!(error.message.contains("ENV PATH has no value"), "{}", error.message);
    assert_eq!(error.span, span(3, 5, 3, 9));
    assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("ENV PATH=")));

    let error = parse_err("FROM a\nLABEL   version\n");
    assert!(error.message.contains("LABEL version has no value"), "{}", error.message);
    assert_eq!(error.span, span(2, 9, 2, 16));
}

#[test]
fn env_pair_without_equals() {
    let error = parse_err("FROM a\nENV a=1 \\\n    b\n");
    assert!(error.message.contains("can't find = in \"b\""), "{}", error.message);
    assert_eq!(error.span, span(3, 5, 3, 6));
    assert!(error.hint.is_some());
}

#[test]
fn json_array_with_other_than_strings() {
    let error = parse_err("CMD [ \"echo\", [ \"nested json\" ] ]\n");
    assert!(error.message.contains("arrays must be comprised of strings only"), "{}", error.message);
    assert_eq!(error.span, span(1, 15, 1, 32));
    assert!(error.hint.is_some());

    for (src, col) in
        [("RUN [\"a\", 1]", 11), ("COPY [null, \"/d\"]", 7), ("ENTRYPOINT [{\"a\": \"b\"}]", 13)]
    {
        let error = parse_err(src);
        assert!(error.message.contains("strings only"), "{src}: {}", error.message);
        assert_eq!(error.span.start, Pos::new(1, col), "{src}");
    }
    let error = parse_err("HEALTHCHECK CMD [true]");
    assert_eq!(error.span, span(1, 18, 1, 22));
}

#[test]
fn invalid_json_is_shell_form_not_an_error() {
    for src in ["CMD ['a']", "CMD [\"a\"", "CMD [\"a]", "RUN [1, \"a\""] {
        assert!(parse(src).is_ok(), "{src}");
    }
}

#[test]
fn directive_errors() {
    let error = parse_err("# escape=`\n# escape=`\nFROM a\n");
    assert!(error.message.contains("only one escape"), "{}", error.message);
    assert_eq!(error.span.start, Pos::new(2, 1));

    let error = parse_err("# escape=!\nFROM a\n");
    assert!(error.message.contains("invalid escape token '!'"), "{}", error.message);
    assert_eq!(error.span, span(1, 10, 1, 11));
}

#[test]
fn unterminated_heredoc() {
    let error = parse_err("FROM a\n\nCOPY <<-'CONF' /etc/app.conf\n\tkey=value\n");
    assert_eq!(error.message, "unterminated heredoc \"CONF\" started on line 3");
    assert_eq!(error.span, span(3, 6, 3, 15));
    assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("CONF") && hint.contains("tabs")));
}

#[test]
fn onbuild_nested_too_deeply() {
    let error = parse_err(&format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(20)));
    assert!(error.message.contains("ONBUILD"), "{}", error.message);
    assert_eq!(error.span.start.line, 2);
}

#[test]
fn errors_display_their_message() {
    let error = parse_err("");
    assert_eq!(error.to_string(), "file with no instructions");
}
