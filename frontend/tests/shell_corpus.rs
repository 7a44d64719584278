//! Runs BuildKit's own word-expansion test data (`shell/envVarTest` and
//! `shell/wordsTest`) against `rbuild_frontend::shell`.
//!
//! The data is read where it lies (never copied into this repository): the
//! directory named by `RBUILD_BUILDKIT_CORPUS`, else `shared/corpus/buildkit-parser`
//! next to the repository. Without it the tests are skipped with the reason
//! (and fail in strict mode, `RBUILD_TEST_STRICT=1`). Every failing line is
//! reported, not just the first.

use rbuild_frontend::shell::Lexer;
use rbuild_test_support::prereq::buildkit_corpus;
use rbuild_test_support::require;

fn read_corpus_file(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join("shell").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Lines of `text` with their 1-based numbers, split the way Go's
/// `bufio.Scanner` does (a `\r` before `\n` is dropped).
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(index, line)| (index + 1, line))
}

fn finish(file: &str, passed: usize, skipped: usize, failures: &[String]) {
    let checked = passed + failures.len();
    let skipped_note =
        if skipped > 0 { format!(" ({skipped} Windows-only lines skipped)") } else { String::new() };
    println!("{file}: {passed} of {checked} checked lines pass{skipped_note}");
    if !failures.is_empty() {
        panic!("{file}: {} failing lines:\n{}", failures.len(), failures.join("\n"));
    }
}

#[test]
fn env_var_test() {
    let dir = require!(buildkit_corpus());
    let text = read_corpus_file(&dir, "envVarTest");
    let env: Vec<(String, String)> =
        [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")]
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
    let lexer = Lexer::new('\\');
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());

    for (number, raw_line) in numbered_lines(&text) {
        if raw_line.starts_with('#') {
            continue;
        }
        let line = raw_line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [platform, input, expected] = fields.as_slice() else {
            failures.push(format!("line {number}: malformed (need 3 fields): {line:?}"));
            continue;
        };
        let (platform, input, expected) = (platform.trim(), input.trim(), expected.trim());
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped += 1;
                continue;
            }
            other => {
                failures.push(format!("line {number}: unknown platform {other:?}"));
                continue;
            }
        }
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(expansion), expected) => expected != "error" && expansion.value == expected,
            (Err(_), _) => false,
        };
        if ok {
            passed += 1;
        } else {
            let got = match got {
                Ok(expansion) => format!("{:?}", expansion.value),
                Err(error) => format!("error: {error}"),
            };
            failures.push(format!("line {number}: input {input:?}: expected {expected:?}, got {got}"));
        }
    }
    finish("envVarTest", passed, skipped, &failures);
}

#[test]
fn words_test() {
    let dir = require!(buildkit_corpus());
    let text = read_corpus_file(&dir, "wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut passed, mut failures) = (0, Vec::new());

    for (number, line) in numbered_lines(&text) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            // As written after `ENV `; a missing `=` means an empty value.
            let assignment = assignment.trim_start_matches(' ');
            let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.push((name.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [input, expected] = fields.as_slice() else {
            failures.push(format!("line {number}: malformed (need exactly one |): {line:?}"));
            continue;
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let got: Vec<String> = match lexer.process_words(input, &env) {
            Ok(expansion) => expansion.words,
            Err(_) => vec!["error".to_string()],
        };
        if got == expected {
            passed += 1;
        } else {
            failures.push(format!("line {number}: input {input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    finish("wordsTest", passed, 0, &failures);
}
