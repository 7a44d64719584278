//! Parser directives at the top of a Dockerfile (`# syntax=`, `# escape=`,
//! `# check=`): where they are recognised, what `escape` changes, and the
//! errors for repeated or invalid directives.

use rbuild_frontend::parser::{Ast, parse};
use rbuild_frontend::span::{Pos, Span};

fn parse_ok(src: &str) -> Ast {
    match parse(src) {
        Ok(ast) => ast,
        Err(error) => panic!("unexpected error at {}: {}\n{src}", error.span.start, error.message),
    }
}

#[test]
fn backtick_escape_changes_line_continuation() {
    let ast = parse_ok("# escape=`\nFROM image\nRUN echo a `\n  b\nRUN dir C:\\\n");
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(ast.dump(), "(from \"image\")\n(run \"echo a   b\")\n(run \"dir C:\\\\\")");
    assert_eq!((ast.nodes[1].span.start.line, ast.nodes[1].span.end.line), (3, 4));
}

#[test]
fn backtick_escape_applies_to_words_too() {
    // The escaped quote does not open a quoted section, so the space splits.
    let ast = parse_ok("# escape=`\nFROM a\nENV k=a`\"b c=d\n");
    assert_eq!(ast.nodes[1].args, ["k", "a`\"b", "=", "c", "d", "="]);
}

#[test]
fn default_escape_is_backslash() {
    let ast = parse_ok("FROM a\nRUN echo a \\\n  b\n");
    assert_eq!(ast.directives.escape, '\\');
    assert_eq!(ast.nodes[1].args, ["echo a   b"]);
}

#[test]
fn directive_after_an_instruction_is_a_comment() {
    let ast = parse_ok("FROM a\n# escape=`\nRUN echo a \\\n  b\n");
    assert_eq!(ast.directives.escape, '\\');
    assert_eq!(ast.nodes[1].args, ["echo a   b"]);
    assert_eq!(ast.nodes[1].comments, ["escape=`"]);
}

#[test]
fn directive_after_a_comment_or_blank_line_is_a_comment() {
    let ast = parse_ok("# a comment\n# escape=`\nFROM a\n");
    assert_eq!(ast.directives.escape, '\\');
    let ast = parse_ok("\n# escape=`\nFROM a\n");
    assert_eq!(ast.directives.escape, '\\');
    // An unknown directive also ends the directive block.
    let ast = parse_ok("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(ast.directives.escape, '\\');
}

#[test]
fn names_are_case_insensitive_and_spaces_around_equals_allowed() {
    let ast =
        parse_ok("# SYNTAX = docker/dockerfile:1.7\n#Escape=`\n#  check =skip=all;error=true  \nFROM a\n");
    let syntax = ast.directives.syntax.expect("syntax");
    assert_eq!(syntax.value, "docker/dockerfile:1.7");
    assert_eq!(syntax.span, Span::new(Pos::new(1, 12), Pos::new(1, 33)));
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(ast.directives.check.expect("check").value, "skip=all;error=true");
}

#[test]
fn directives_are_not_comments_of_the_first_instruction() {
    let ast = parse_ok("\u{feff}# syntax=x\n# about FROM\nFROM a\n");
    assert_eq!(ast.directives.syntax.map(|d| d.value), Some("x".to_string()));
    assert_eq!(ast.nodes[0].comments, ["about FROM"]);
}

#[test]
fn indented_directive_and_crlf() {
    let ast = parse_ok("  # escape=`\r\nFROM a `\r\n  b\r\n");
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(ast.nodes[0].args, ["a", "b"]);
}

#[test]
fn repeated_directive_is_an_error() {
    let error = parse("# escape=`\n# ESCAPE=\\\nFROM a\n").expect_err("repeated");
    assert_eq!(error.message, "only one escape parser directive can be used");
    assert_eq!(error.span, Span::new(Pos::new(2, 1), Pos::new(2, 11)));
    assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("line 1")));
}

#[test]
fn escape_other_than_backslash_or_backtick_is_an_error() {
    let error = parse("# escape=x\nFROM a\n").expect_err("invalid escape");
    assert!(error.message.contains("invalid escape token 'x'"), "{}", error.message);
    assert_eq!(error.span, Span::new(Pos::new(1, 10), Pos::new(1, 11)));
    assert!(error.hint.is_some());
    assert!(parse("# escape=\\\\\nFROM a\n").is_err());
}

#[test]
fn empty_directive_value_is_just_a_comment() {
    let ast = parse_ok("# escape=\n# escape=`\nFROM a\n");
    assert_eq!(ast.directives.escape, '\\');
}
