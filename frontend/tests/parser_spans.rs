//! Spans, comments and warnings: every node, keyword, flag and argument
//! points at the right line and column (1-based, counted in characters),
//! across continuations, tabs, CRLF, a BOM and non-ASCII text.

use rbuild_frontend::parser::{Ast, Node, parse};
use rbuild_frontend::span::{Pos, Span};

fn parse_ok(src: &str) -> Ast {
    match parse(src) {
        Ok(ast) => ast,
        Err(error) => panic!("unexpected error at {}: {}\n{src}", error.span.start, error.message),
    }
}

fn span(start_line: usize, start_col: usize, end_line: usize, end_col: usize) -> Span {
    Span::new(Pos::new(start_line, start_col), Pos::new(end_line, end_col))
}

/// The source text under a single-line span.
fn text_at(src: &str, span: Span) -> &str {
    assert_eq!(span.start.line, span.end.line, "multi-line span {span:?}");
    let line = src.lines().nth(span.start.line - 1).unwrap_or("");
    let start = line.char_indices().nth(span.start.col - 1).map_or(line.len(), |(i, _)| i);
    let end = line.char_indices().nth(span.end.col - 1).map_or(line.len(), |(i, _)| i);
    &line[start..end]
}

fn arg_texts<'a>(src: &'a str, node: &Node) -> Vec<&'a str> {
    node.arg_spans.iter().map(|&span| text_at(src, span)).collect()
}

#[test]
fn node_and_keyword_spans() {
    let src = "FROM alpine AS build\n\n  RUN echo hi\n";
    let ast = parse_ok(src);
    assert_eq!(ast.nodes[0].span, span(1, 1, 1, 21));
    assert_eq!(ast.nodes[0].keyword_span, span(1, 1, 1, 5));
    assert_eq!(ast.nodes[1].span, span(3, 3, 3, 14));
    assert_eq!(ast.nodes[1].keyword_span, span(3, 3, 3, 6));
    assert_eq!(ast.span, span(1, 1, 3, 14));
}

#[test]
fn whitespace_split_arguments() {
    let src = "FROM\timage:1  AS  name\nEXPOSE 80 443/tcp\nCOPY --chown=1:1 a\tb  /dst/\n";
    let ast = parse_ok(src);
    assert_eq!(arg_texts(src, &ast.nodes[0]), ["image:1", "AS", "name"]);
    assert_eq!(ast.nodes[0].arg_spans[2], span(1, 19, 1, 23));
    assert_eq!(arg_texts(src, &ast.nodes[1]), ["80", "443/tcp"]);
    assert_eq!(arg_texts(src, &ast.nodes[2]), ["a", "b", "/dst/"]);
    assert_eq!(ast.nodes[2].flag_spans, [span(3, 6, 3, 17)]);
}

#[test]
fn json_arguments_point_at_each_element() {
    let src = "CMD [ \"echo\", \"a b\" ]\nCOPY [\"x y\", \"/d\"]\n";
    let ast = parse_ok(src);
    assert!(ast.nodes[0].json);
    assert_eq!(arg_texts(src, &ast.nodes[0]), ["\"echo\"", "\"a b\""]);
    assert_eq!(ast.nodes[0].arg_spans[1], span(1, 15, 1, 20));
    assert_eq!(arg_texts(src, &ast.nodes[1]), ["\"x y\"", "\"/d\""]);
}

#[test]
fn shell_form_argument_spans_the_rest() {
    let src = "RUN   apt-get update &&  true  \n";
    let ast = parse_ok(src);
    assert_eq!(ast.nodes[0].args, ["apt-get update &&  true"]);
    assert_eq!(ast.nodes[0].arg_spans, [span(1, 7, 1, 30)]);
}

#[test]
fn env_label_and_arg_spans() {
    let src = "ENV a=1 b=\"x y\"\nLABEL key some value\nARG one two=2\n";
    let ast = parse_ok(src);
    assert_eq!(arg_texts(src, &ast.nodes[0]), ["a", "1", "=", "b", "\"x y\"", "="]);
    assert_eq!(arg_texts(src, &ast.nodes[1]), ["key", "some value", ""]);
    assert_eq!(ast.nodes[1].arg_spans[2], span(2, 10, 2, 10));
    assert_eq!(arg_texts(src, &ast.nodes[2]), ["one", "two=2"]);
}

#[test]
fn healthcheck_spans() {
    let src = "HEALTHCHECK --interval=5s CMD [\"curl\", \"-f\"]\n";
    let ast = parse_ok(src);
    assert_eq!(arg_texts(src, &ast.nodes[0]), ["CMD", "\"curl\"", "\"-f\""]);
    assert_eq!(ast.nodes[0].flag_spans, [span(1, 13, 1, 26)]);
}

#[test]
fn spans_follow_continuation_lines() {
    let src = "RUN --mount=type=cache,target=/x \\\n    # a comment\n\n  --network=none \\\n  make all\nCOPY a \\\n  b \\\n  c\n";
    let ast = parse_ok(src);
    let run = &ast.nodes[0];
    assert_eq!(run.span, span(1, 1, 5, 11));
    assert_eq!(run.flag_spans, [span(1, 5, 1, 33), span(4, 3, 4, 17)]);
    assert_eq!(run.arg_spans, [span(5, 3, 5, 11)]);
    let copy = &ast.nodes[1];
    assert_eq!(copy.args, ["a", "b", "c"]);
    assert_eq!(copy.arg_spans, [span(6, 6, 6, 7), span(7, 3, 7, 4), span(8, 3, 8, 4)]);
    assert_eq!(copy.span, span(6, 1, 8, 4));
}

#[test]
fn columns_count_characters_and_ignore_bom_and_crlf() {
    let src = "\u{feff}FROM a\r\nLABEL é=\"日本\" x=y\r\n";
    let ast = parse_ok(src);
    assert_eq!(ast.nodes[0].span, span(1, 1, 1, 7));
    let label = &ast.nodes[1];
    assert_eq!(label.arg_spans[0], span(2, 7, 2, 8));
    assert_eq!(label.arg_spans[1], span(2, 9, 2, 13));
    assert_eq!(label.arg_spans[3], span(2, 14, 2, 15));
    assert_eq!(label.span.end, Pos::new(2, 17));
}

#[test]
fn onbuild_trigger_has_its_own_spans() {
    let src = "ONBUILD  COPY --from=x a /b\n";
    let ast = parse_ok(src);
    let trigger = ast.nodes[0].next.as_deref().expect("trigger");
    assert_eq!(trigger.keyword, "copy");
    assert_eq!(trigger.keyword_span, span(1, 10, 1, 14));
    assert_eq!(trigger.flag_spans, [span(1, 15, 1, 23)]);
    assert_eq!(arg_texts(src, trigger), ["a", "/b"]);
    assert_eq!(trigger.original, "COPY --from=x a /b");
}

#[test]
fn original_is_the_joined_text() {
    let ast = parse_ok("  RUN a \\\n  b  \\\nc\n");
    assert_eq!(ast.nodes[0].original, "RUN a   b  c");
}

#[test]
fn comments_are_kept_with_the_next_instruction() {
    let ast = parse_ok("# one\n  # two\n\nFROM a\n#\n# three\nRUN x \\\n# inside\n  y\nRUN z\n");
    assert_eq!(ast.nodes[0].comments, ["one", "two"]);
    // An empty `#` line starts the list afresh; comments inside a
    // continuation belong to nobody.
    assert_eq!(ast.nodes[1].comments, ["three"]);
    assert!(ast.nodes[2].comments.is_empty());
}

#[test]
fn empty_continuation_lines_warn() {
    let ast = parse_ok("FROM a\nRUN a \\\n\n    b \\\n  \n    c\nRUN d \\\n# comment\n  e\n");
    assert_eq!(ast.nodes[1].args, ["a     b     c"]);
    let lines: Vec<usize> = ast.warnings.iter().map(|warning| warning.span.start.line).collect();
    assert_eq!(lines, [3, 5]);
    assert!(ast.warnings.iter().all(|warning| warning.message.contains("empty continuation line")));
    assert_eq!(ast.warnings[1].span, span(5, 1, 5, 3));
}

#[test]
fn unknown_instructions_keep_their_text() {
    let src = "FROM a\nFROBNICATE  the  widget\n";
    let ast = parse_ok(src);
    let unknown = &ast.nodes[1];
    assert_eq!(unknown.keyword, "frobnicate");
    assert_eq!(unknown.args, ["the  widget"]);
    assert_eq!(arg_texts(src, unknown), ["the  widget"]);
    // BuildKit's dump prints one empty argument for unknown instructions.
    assert_eq!(ast.dump(), "(from \"a\")\n(frobnicate \"\")");
}

#[test]
fn continuation_at_end_of_file_ends_the_instruction() {
    let ast = parse_ok("FROM a\nRUN something \\");
    assert_eq!(ast.nodes[1].args, ["something"]);
    assert_eq!(ast.nodes[1].span, span(2, 1, 2, 16));
}
