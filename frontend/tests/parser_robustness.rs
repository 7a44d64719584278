//! The parser never panics and stays roughly linear: huge lines, many
//! lines, deep nesting, and pseudo-random text built from the characters
//! that matter to it.

use std::time::{Duration, Instant};

use rbuild_frontend::parser::parse;

/// Generous enough for a slow debug build; a quadratic algorithm on these
/// inputs would take hours, not seconds.
const TIME_LIMIT: Duration = Duration::from_secs(60);

const TEN_MB: usize = 10 * 1024 * 1024;

fn parses_in_time(name: &str, src: &str) -> bool {
    let started = Instant::now();
    let ok = parse(src).is_ok();
    let elapsed = started.elapsed();
    assert!(elapsed < TIME_LIMIT, "{name} took {elapsed:?}");
    ok
}

#[test]
fn ten_megabyte_lines() {
    assert!(parses_in_time("long RUN", &format!("FROM a\nRUN {}\n", "x".repeat(TEN_MB))));
    assert!(parses_in_time("many COPY words", &format!("FROM a\nCOPY {}/d\n", "ab ".repeat(TEN_MB / 3))));
    assert!(parses_in_time("many ENV pairs", &format!("FROM a\nENV {}\n", "k=v ".repeat(TEN_MB / 4))));
    assert!(parses_in_time("long JSON", &format!("FROM a\nCMD [{}\"x\"]\n", "\"a\", ".repeat(TEN_MB / 5))));
    assert!(parses_in_time("many flags", &format!("FROM a\nCOPY {} a b\n", "--x=y ".repeat(TEN_MB / 6))));
    assert!(parses_in_time("long keyword", &"K".repeat(TEN_MB)));
}

#[test]
fn hundred_thousand_lines() {
    let many = "RUN echo hello world\n".repeat(100_000);
    let started = Instant::now();
    let ast = parse(&many).expect("parses");
    assert!(started.elapsed() < TIME_LIMIT);
    assert_eq!(ast.nodes.len(), 100_000);
    assert_eq!(ast.span.end.line, 100_000);

    assert!(parses_in_time("long continuation", &format!("RUN a \\\n{}b\n", "  c \\\n".repeat(100_000))));
    assert!(parses_in_time("long heredoc", &format!("RUN <<EOF\n{}EOF\n", "line\n".repeat(100_000))));
}

#[test]
fn deep_nesting_is_refused_or_bounded_not_overflowing() {
    assert!(parses_in_time("nested JSON", &format!("CMD {}", "[".repeat(TEN_MB))));
    // Too deep for JSON (as for Go's decoder): the shell form.
    assert!(parses_in_time("deep JSON", &format!("CMD [{}{}]", "[".repeat(100_000), "]".repeat(100_000))));
    // Valid JSON with an array element: an error.
    assert!(!parses_in_time("nested JSON array", &format!("CMD [{}{}]", "[".repeat(100), "]".repeat(100))));
    assert!(!parses_in_time("ONBUILD chain", &"ONBUILD ".repeat(TEN_MB / 8)));
    assert!(parses_in_time("nested substitutions", &format!("RUN <<A {}\nA\n", "${a:-".repeat(TEN_MB / 5))));
    assert!(!parses_in_time("many heredoc markers", &format!("RUN {}\n", "<<A ".repeat(TEN_MB / 4))));
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound as u64).unwrap_or(0)
    }
}

#[test]
fn pseudo_random_text_never_panics() {
    const PIECES: &[&str] = &[
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ENV",
        "LABEL",
        "ARG",
        "ONBUILD",
        "HEALTHCHECK",
        "CMD",
        "SHELL",
        "VOLUME",
        "\n",
        "\r\n",
        "\r",
        " ",
        "\t",
        "\\",
        "`",
        "#",
        "# escape=`",
        "# syntax=x",
        "--",
        "--f=",
        "\"",
        "'",
        "[",
        "]",
        ",",
        "{",
        "}",
        ":",
        "=",
        "$",
        "${",
        "<<",
        "<<-",
        "3<<",
        "EOF",
        "-",
        "é",
        "日本",
        "\u{a0}",
        "\u{feff}",
        "\0",
        "\u{1F600}",
        "\u{85}",
        "\u{2028}",
        "[\"a\"]",
        "[1]",
        "\\u0000",
        "\\ud800",
    ];
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut src = String::new();
        for _ in 0..random.below(40) {
            src.push_str(PIECES[random.below(PIECES.len())]);
        }
        // Only the absence of panics matters here; both outcomes are fine.
        if let Ok(ast) = parse(&src) {
            let _ = ast.dump();
            for node in &ast.nodes {
                assert_eq!(node.args.len(), node.arg_spans.len(), "{src:?}");
                assert_eq!(node.flags.len(), node.flag_spans.len(), "{src:?}");
                assert!(node.span.start <= node.span.end, "{src:?}");
            }
        }
    }
}
