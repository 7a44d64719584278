//! The parser against BuildKit's own parser test corpus, read in place from
//! `$RBUILD_BUILDKIT_CORPUS` or `<workspace>/../shared/corpus/buildkit-parser`
//! (never copied into this repository): every `testfiles` case must dump
//! exactly like BuildKit's `result` file, every `testfiles-negative` case
//! must be rejected, and `testfile-line` must get BuildKit's line numbers.
//! Each test reports all failing cases by name, not just the first. Without
//! the corpus the tests are skipped with the reason (and fail in strict mode,
//! `RBUILD_TEST_STRICT=1`).

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_frontend::parser::parse;
use rbuild_test_support::prereq::buildkit_corpus;
use rbuild_test_support::require;

/// The case directories under `dir`, sorted by name.
fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => {
            entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|p| p.is_dir()).collect()
        }
        Err(error) => panic!("cannot list {}: {error}", dir.display()),
    };
    cases.sort();
    cases
}

fn case_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    String::from_utf8(bytes).map_err(|error| format!("{} is not UTF-8: {error}", path.display()))
}

/// Why `actual` differs from `expected`, pointing at the first differing line.
fn describe_difference(expected: &str, actual: &str) -> String {
    let expected_lines: Vec<&str> = expected.split('\n').collect();
    let actual_lines: Vec<&str> = actual.split('\n').collect();
    for (index, pair) in expected_lines.iter().zip(actual_lines.iter()).enumerate() {
        if pair.0 != pair.1 {
            return format!("line {}:\n    expected: {}\n    actual:   {}", index + 1, pair.0, pair.1);
        }
    }
    format!("expected {} lines, got {}", expected_lines.len(), actual_lines.len())
}

fn check_dump_case(case: &Path) -> Result<(), String> {
    let dockerfile = read_text(&case.join("Dockerfile"))?;
    let expected = read_text(&case.join("result"))?;
    let ast = parse(&dockerfile)
        .map_err(|error| format!("parse error at {}: {}", error.span.start, error.message))?;
    let actual = ast.dump() + "\n";
    if actual == expected { Ok(()) } else { Err(describe_difference(&expected, &actual)) }
}

#[test]
fn testfiles_dump_exactly_like_buildkit() {
    let corpus = require!(buildkit_corpus());
    let cases = case_dirs(&corpus.join("testfiles"));
    assert!(!cases.is_empty(), "no cases under {}", corpus.join("testfiles").display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check_dump_case(case).err().map(|why| format!("{}: {why}", case_name(case))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} testfiles cases differ from BuildKit:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} testfiles cases dump exactly like BuildKit", cases.len());
}

#[test]
fn negative_testfiles_are_rejected() {
    let corpus = require!(buildkit_corpus());
    let cases = case_dirs(&corpus.join("testfiles-negative"));
    assert!(!cases.is_empty(), "no cases under {}", corpus.join("testfiles-negative").display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let outcome = read_text(&case.join("Dockerfile")).map(|text| parse(&text));
            match outcome {
                Ok(Err(_)) => None,
                Ok(Ok(ast)) => Some(format!("{}: accepted, dumped as {:?}", case_name(case), ast.dump())),
                Err(why) => Some(format!("{}: {why}", case_name(case))),
            }
        })
        .collect();
    assert!(failures.is_empty(), "negative cases that were not rejected:\n{}", failures.join("\n"));
}

#[test]
fn negative_testfiles_give_the_expected_errors() {
    let corpus = require!(buildkit_corpus());
    let expectations = [
        ("empty_dockerfile", "file with no instructions"),
        ("only_comments", "file with no instructions"),
        ("env_no_value", "ENV PATH has no value"),
        ("shykes-nested-json", "arrays must be comprised of strings only"),
    ];
    let mut failures = Vec::new();
    for (case, expected) in expectations {
        let path = corpus.join("testfiles-negative").join(case).join("Dockerfile");
        match read_text(&path).map(|text| parse(&text)) {
            Ok(Err(error)) if error.message.contains(expected) => {}
            Ok(Err(error)) => failures.push(format!("{case}: error {:?} lacks {expected:?}", error.message)),
            Ok(Ok(_)) => failures.push(format!("{case}: accepted")),
            Err(why) => failures.push(format!("{case}: {why}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn testfile_line_numbers_match_buildkit() {
    let corpus = require!(buildkit_corpus());
    let text = match read_text(&corpus.join("testfile-line").join("Dockerfile")) {
        Ok(text) => text,
        Err(why) => panic!("{why}"),
    };
    let ast = match parse(&text) {
        Ok(ast) => ast,
        Err(error) => panic!("parse error at {}: {}", error.span.start, error.message),
    };
    let mut failures = Vec::new();
    if (ast.span.start.line, ast.span.end.line) != (5, 31) {
        failures
            .push(format!("root spans lines {}-{}, expected 5-31", ast.span.start.line, ast.span.end.line));
    }
    let children: Vec<(usize, usize)> =
        ast.nodes.iter().map(|node| (node.span.start.line, node.span.end.line)).collect();
    if children != [(5, 5), (11, 12), (17, 31)] {
        failures.push(format!("children span {children:?}, expected [(5, 5), (11, 12), (17, 31)]"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
