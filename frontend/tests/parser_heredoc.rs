//! Heredoc behaviour of the parser (`RUN <<EOF`, `COPY <<A <<B /dir/`, …),
//! covering the cases BuildKit's own heredoc tests exercise: which lines
//! introduce heredocs, how delimiters are read, what the bodies contain, and
//! what happens when a body never ends.

use rbuild_frontend::parser::{Ast, Heredoc, Node, parse};
use rbuild_frontend::span::{Pos, Span};

fn parse_ok(src: &str) -> Ast {
    match parse(src) {
        Ok(ast) => ast,
        Err(error) => panic!("unexpected error at {}: {}\n{src}", error.span.start, error.message),
    }
}

/// The instruction whose original text is `original`.
fn node<'a>(ast: &'a Ast, original: &str) -> &'a Node {
    match ast.nodes.iter().find(|node| node.original == original) {
        Some(node) => node,
        None => panic!(
            "no instruction {original:?} in {:?}",
            ast.nodes.iter().map(|n| &n.original).collect::<Vec<_>>()
        ),
    }
}

fn heredoc(name: &str, content: &str, expand: bool, chomp: bool, file_descriptor: u32) -> Heredoc {
    Heredoc { name: name.into(), content: content.into(), expand, chomp, file_descriptor }
}

#[test]
fn simple_heredoc_body_and_shape() {
    let ast = parse_ok("FROM alpine\nRUN <<EOF\necho hello\necho world\nEOF\nRUN true\n");
    let run = node(&ast, "RUN <<EOF");
    assert_eq!(run.heredocs, [heredoc("EOF", "echo hello\necho world\n", true, false, 0)]);
    // As in BuildKit, the marker stays in the command string.
    assert_eq!(run.args, ["<<EOF"]);
    assert_eq!(ast.dump(), "(from \"alpine\")\n(run \"<<EOF\")\n(run \"true\")");
    // The instruction spans its body and delimiter line.
    assert_eq!(run.span, Span::new(Pos::new(2, 1), Pos::new(5, 4)));
    assert_eq!(ast.nodes.len(), 3);
}

#[test]
fn empty_bodies_and_file_descriptors() {
    let ast = parse_ok("FROM a\nRUN <<EMPTY\nEMPTY\nRUN 3<<EMPTY2\nEMPTY2\n");
    assert_eq!(node(&ast, "RUN <<EMPTY").heredocs, [heredoc("EMPTY", "", true, false, 0)]);
    assert_eq!(node(&ast, "RUN 3<<EMPTY2").heredocs, [heredoc("EMPTY2", "", true, false, 3)]);
}

#[test]
fn only_run_copy_and_add_take_heredocs() {
    let ast = parse_ok("FROM a\nUSER <<INVALID\nINVALID\nCMD <<X\nX\n");
    assert!(ast.nodes.iter().all(|node| node.heredocs.is_empty()));
    // The would-be body lines are instructions of their own.
    assert_eq!(ast.dump(), "(from \"a\")\n(user \"<<INVALID\")\n(invalid \"\")\n(cmd \"<<X\")\n(x \"\")");
}

#[test]
fn quoted_markers_and_json_form_are_not_heredocs() {
    let ast = parse_ok(
        "FROM a\nRUN \"<<NOHEREDOC\"\nRUN '<<EOF'\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\nCOPY [\"<<A\", \"/x\"]\n",
    );
    assert!(ast.nodes.iter().all(|node| node.heredocs.is_empty()));
    assert_eq!(ast.nodes.len(), 6);
}

#[test]
fn plain_heredoc_keeps_leading_tabs() {
    let ast = parse_ok("FROM a\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\n");
    assert_eq!(node(&ast, "RUN <<INDENT").heredocs, [heredoc("INDENT", "\tfoo\n\tbar\n", true, false, 0)]);
}

#[test]
fn dash_heredoc_strips_leading_tabs_from_body_and_delimiter() {
    let ast = parse_ok(
        "FROM a\nRUN <<-UNINDENT\n\tbaz\n\t\tquux\nUNINDENT\nRUN <<-UNINDENT2\n\tbaz\n\tUNINDENT2\n",
    );
    assert_eq!(node(&ast, "RUN <<-UNINDENT").heredocs, [heredoc("UNINDENT", "baz\nquux\n", true, true, 0)]);
    assert_eq!(node(&ast, "RUN <<-UNINDENT2").heredocs, [heredoc("UNINDENT2", "baz\n", true, true, 0)]);
}

#[test]
fn without_dash_an_indented_delimiter_does_not_end_the_body() {
    let ast = parse_ok("FROM a\nRUN <<EOF\n\tEOF\n EOF\nEOF\n");
    assert_eq!(node(&ast, "RUN <<EOF").heredocs[0].content, "\tEOF\n EOF\n");
}

#[test]
fn quoting_the_delimiter_turns_expansion_off() {
    let src = "FROM a\nRUN <<-EXPAND\n\texpand $NAME\nEXPAND\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\
               RUN <<\"DQ\"\n$X\nDQ\nRUN <<eo'f'\necho foo\neof\nRUN <<eo\\'f\necho foo\neo'f\n\
               RUN <<'e'o\\'f\necho foo\neo'f\nRUN <<'one two'\necho bar\none two\n";
    let ast = parse_ok(src);
    assert_eq!(node(&ast, "RUN <<-EXPAND").heredocs, [heredoc("EXPAND", "expand $NAME\n", true, true, 0)]);
    assert_eq!(
        node(&ast, "RUN <<-'NOEXPAND'").heredocs,
        [heredoc("NOEXPAND", "don't expand $NAME\n", false, true, 0)]
    );
    assert_eq!(node(&ast, "RUN <<\"DQ\"").heredocs, [heredoc("DQ", "$X\n", false, false, 0)]);
    assert_eq!(node(&ast, "RUN <<eo'f'").heredocs, [heredoc("eof", "echo foo\n", false, false, 0)]);
    // An escaped quote is part of the name and does not count as quoting.
    assert_eq!(node(&ast, "RUN <<eo\\'f").heredocs, [heredoc("eo'f", "echo foo\n", true, false, 0)]);
    assert_eq!(node(&ast, "RUN <<'e'o\\'f").heredocs, [heredoc("eo'f", "echo foo\n", false, false, 0)]);
    assert_eq!(node(&ast, "RUN <<'one two'").heredocs, [heredoc("one two", "echo bar\n", false, false, 0)]);
}

#[test]
fn body_lines_are_verbatim() {
    let ast = parse_ok(
        "FROM a\nRUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\n\nCOMMENT\n\
         COPY <<EOF /quotes\n\"foo\"\n'bar'\nline \\\nEOF\n",
    );
    assert_eq!(
        node(&ast, "RUN <<COMMENT").heredocs[0].content,
        "# internal comment\necho hello world\necho foo bar # trailing comment\n\n"
    );
    assert_eq!(node(&ast, "COPY <<EOF /quotes").heredocs[0].content, "\"foo\"\n'bar'\nline \\\n");
}

#[test]
fn flags_before_a_heredoc() {
    let ast = parse_ok("FROM a\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n");
    let run = node(&ast, "RUN --mount=type=cache,target=/foo <<MOUNT");
    assert_eq!(run.flags, ["--mount=type=cache,target=/foo"]);
    assert_eq!(run.heredocs, [heredoc("MOUNT", "echo hello\n", true, false, 0)]);
}

#[test]
fn several_heredocs_on_one_line_are_read_in_order() {
    let ast = parse_ok(
        "FROM a\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n",
    );
    let first = node(&ast, "COPY <<FILE1 <<FILE2 /dest");
    assert_eq!(
        first.heredocs,
        [heredoc("FILE1", "content 1\n", true, false, 0), heredoc("FILE2", "content 2\n", true, false, 0)]
    );
    assert_eq!(first.args, ["<<FILE1", "<<FILE2", "/dest"]);
    assert_eq!(first.span.end.line, 6);
    // Each body ends at its own delimiter, even if it names the other heredoc.
    let second = node(&ast, "COPY <<X <<Y /dest");
    assert_eq!(second.heredocs, [heredoc("X", "Y\n", true, false, 0), heredoc("Y", "X\n", true, false, 0)]);
}

#[test]
fn heredoc_after_the_command_and_odd_delimiters() {
    let ast = parse_ok(
        "FROM a\nRUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\nRUN python3 <<EOF\nprint(1)\nEOF\n\
         COPY <<file.txt /dest\nhello world\nfile.txt\nRUN <<$EOF\n$EOF\nRUN <<  EOF\nEOF\nRUN <<  EOF  > foo\nEOF\n",
    );
    assert_eq!(
        node(&ast, "RUN <<COMPLEX python3").heredocs,
        [heredoc("COMPLEX", "print('hello world')\n", true, false, 0)]
    );
    assert_eq!(node(&ast, "RUN python3 <<EOF").heredocs, [heredoc("EOF", "print(1)\n", true, false, 0)]);
    assert_eq!(
        node(&ast, "COPY <<file.txt /dest").heredocs,
        [heredoc("file.txt", "hello world\n", true, false, 0)]
    );
    assert_eq!(node(&ast, "RUN <<$EOF").heredocs, [heredoc("$EOF", "", true, false, 0)]);
    // Blanks between `<<` and the delimiter are allowed.
    assert_eq!(node(&ast, "RUN <<  EOF").heredocs, [heredoc("EOF", "", true, false, 0)]);
    assert_eq!(node(&ast, "RUN <<  EOF  > foo").heredocs, [heredoc("EOF", "", true, false, 0)]);
}

#[test]
fn onbuild_triggers_take_heredocs() {
    let ast = parse_ok("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nONBUILD RUN [\"<<EOF\"]\n");
    let onbuild = node(&ast, "ONBUILD RUN <<EOF");
    let expected = [heredoc("EOF", "echo hi\n", true, false, 0)];
    assert_eq!(onbuild.heredocs, expected);
    let trigger = onbuild.next.as_deref().expect("trigger");
    assert_eq!(trigger.heredocs, expected);
    assert_eq!(trigger.span.end, Pos::new(4, 4));
    assert!(node(&ast, "ONBUILD RUN [\"<<EOF\"]").heredocs.is_empty());
    assert_eq!(ast.dump(), "(from \"a\")\n(onbuild (run \"<<EOF\"))\n(onbuild (run \"<<EOF\"))");
}

#[test]
fn heredoc_marker_on_a_continuation_line() {
    let ast = parse_ok("FROM a\nRUN cat \\\n  <<EOF\nbody\nEOF\n");
    let run = &ast.nodes[1];
    assert_eq!(run.heredocs, [heredoc("EOF", "body\n", true, false, 0)]);
    assert_eq!((run.span.start.line, run.span.end.line), (2, 5));
}

#[test]
fn crlf_bodies_end_lines_with_newline_only() {
    let ast = parse_ok("FROM a\r\nRUN <<EOF\r\none\r\ntwo\r\nEOF\r\nRUN x\r\n");
    assert_eq!(ast.nodes[1].heredocs[0].content, "one\ntwo\n");
    assert_eq!(ast.nodes[2].original, "RUN x");
}

#[test]
fn missing_delimiter_is_an_error_naming_the_heredoc_and_its_line() {
    let error = parse("FROM a\nRUN echo <<EOF\nbody\n").expect_err("unterminated");
    assert!(error.message.contains("EOF"), "{}", error.message);
    assert!(error.message.contains("line 2"), "{}", error.message);
    assert_eq!(error.span, Span::new(Pos::new(2, 10), Pos::new(2, 15)));
    assert!(error.hint.as_deref().is_some_and(|hint| hint.contains("EOF")));

    // The second of two heredocs runs out of lines.
    let error = parse("FROM a\nCOPY <<A <<B /d\na\nA\nb\n").expect_err("unterminated");
    assert!(error.message.contains("\"B\""), "{}", error.message);
    assert_eq!(error.span.start, Pos::new(2, 10));
}
