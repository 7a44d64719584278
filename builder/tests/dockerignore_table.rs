//! Behaviour of `.dockerignore` matching, written from Docker's documentation
//! and from how `docker build` treats each case. Each row is: the ignore file
//! (lines joined with `\n`), a context-relative path, and whether Docker
//! leaves that path out of the build context.

use std::fs;
use std::time::{Duration, Instant};

use rbuild_builder::dockerignore::{self, DockerIgnore};

const EXCLUDED: bool = true;
const KEPT: bool = false;

const CASES: &[(&str, &str, bool)] = &[
    // A bare name excludes that entry and, being a directory, all below it.
    ("node_modules", "node_modules", EXCLUDED),
    ("node_modules", "node_modules/left-pad/index.js", EXCLUDED),
    ("node_modules", "web/node_modules", KEPT),
    ("node_modules", "node_modules_backup", KEPT),
    // Patterns are anchored at the context root; `/` and `./` change nothing.
    ("/abs", "abs", EXCLUDED),
    ("/abs", "abs/inner/file", EXCLUDED),
    ("/abs", "sub/abs", KEPT),
    ("./rel", "rel", EXCLUDED),
    ("./rel", "rel/x", EXCLUDED),
    ("./rel/../other", "other", EXCLUDED),
    ("rel/", "rel/x", EXCLUDED),
    ("a//b", "a/b", EXCLUDED),
    // `*` does not cross `/`.
    ("*.log", "debug.log", EXCLUDED),
    ("*.log", "logs/debug.log", KEPT),
    ("*", "anything", EXCLUDED),
    ("*", "dir/file", EXCLUDED), // via the parent `dir`
    ("a*b", "a/b", KEPT),
    // Exceptions: last match wins, in both directions.
    ("*.log\n!keep.log", "keep.log", KEPT),
    ("*.log\n!keep.log", "drop.log", EXCLUDED),
    ("!keep.log\n*.log", "keep.log", EXCLUDED),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", EXCLUDED),
    ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", KEPT),
    ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", KEPT),
    ("*.md\n!README.md", "docs.md", EXCLUDED),
    // `**` spans any number of directories, including none.
    ("**/*.go", "main.go", EXCLUDED),
    ("**/*.go", "cmd/tool/main.go", EXCLUDED),
    ("**/*.go", "cmd/tool/main.go.txt", KEPT),
    ("**", "x", EXCLUDED),
    ("**", "deep/down/x", EXCLUDED),
    ("**/", "deep/x", EXCLUDED),
    ("**/**", "deep/x", EXCLUDED),
    ("dir/**", "dir/x", EXCLUDED),
    ("dir/**", "dir/a/b/c", EXCLUDED),
    ("dir/**", "dir", KEPT), // the directory itself is kept, its contents are not
    ("**/dir", "dir", EXCLUDED),
    ("**/dir", "a/b/dir/file", EXCLUDED),
    ("**/dir2/*", "dir/dir2/file", EXCLUDED),
    ("a/**/b", "a/b", EXCLUDED),
    ("a/**/b", "a/x/y/b", EXCLUDED),
    ("a/**/b", "a/xb", KEPT),
    ("**/.git", ".git/config", EXCLUDED),
    ("**/.git", "vendor/lib/.git/HEAD", EXCLUDED),
    ("**/.git", "x.git", KEPT),
    // Docker's leading `**` followed by plain text tests the path's ending.
    ("**.log", "a/b/x.log", EXCLUDED),
    ("**file", "dir/myfile", EXCLUDED),
    // Exceptions inside an excluded directory.
    ("dir\n!dir/keep", "dir/keep", KEPT),
    ("dir\n!dir/keep", "dir/keep/inner.txt", KEPT),
    ("dir\n!dir/keep", "dir/other", EXCLUDED),
    ("dir/*\n!dir/keep", "dir/keep", KEPT),
    ("**\n!src", "src/main.rs", KEPT),
    ("**\n!src", "target/debug/rbuild", EXCLUDED),
    ("**\n!util/docker/web", "util/docker/web/foo", KEPT),
    ("**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", EXCLUDED),
    ("**\n!dist/*.whl", "dist/pkg-1.0+local-py3-none-any.whl", KEPT),
    // The documented examples: `*/temp*`, `*/*/temp*`, `temp?`.
    ("*/temp*", "somedir/temporary.txt", EXCLUDED),
    ("*/temp*", "somedir/temp", EXCLUDED),
    ("*/temp*", "temporary.txt", KEPT),
    ("*/temp*", "a/b/temp", KEPT),
    ("*/*/temp*", "somedir/subdir/temporary.txt", EXCLUDED),
    ("*/*/temp*", "somedir/temporary.txt", KEPT),
    ("temp?", "tempa", EXCLUDED),
    ("temp?", "temp", KEPT),
    ("temp?", "tempab", KEPT),
    ("temp?", "sub/tempa", KEPT),
    ("a?b", "a/b", KEPT),
    ("a?b", "a\u{263a}b", EXCLUDED), // `?` is one character, not one byte
    // Character classes follow `filepath.Match`.
    ("file[0-9].txt", "file7.txt", EXCLUDED),
    ("file[0-9].txt", "filex.txt", KEPT),
    ("file[^0-9].txt", "filex.txt", EXCLUDED),
    ("file[^0-9].txt", "file7.txt", KEPT),
    ("file[!0-9].txt", "file!.txt", EXCLUDED), // `!` is a member, not negation
    ("file[!0-9].txt", "filex.txt", KEPT),
    ("[abc]", "b", EXCLUDED),
    ("[a-c][x-z]", "cy", EXCLUDED),
    ("[\\]a]", "]", EXCLUDED),
    ("[x\\-]", "-", EXCLUDED),
    ("[a-\u{3b6}]*", "\u{3b1}lpha", EXCLUDED),
    // Escapes make metacharacters literal.
    ("a\\*b", "a*b", EXCLUDED),
    ("a\\*b", "axb", KEPT),
    ("\\[x\\]", "[x]", EXCLUDED),
    ("a\\\\", "a\\", EXCLUDED),
    ("x\\?", "x?", EXCLUDED),
    // Characters special to regular expressions are plain here.
    ("a(b)c/def", "a(b)c/def", EXCLUDED),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", EXCLUDED),
    (".*", ".env", EXCLUDED),
    (".*", "env", KEPT),
    ("abc.def", "abcxdef", KEPT),
    // Whitespace, comments and blank lines.
    ("  secret.txt   ", "secret.txt", EXCLUDED),
    ("secret.txt\t", "secret.txt", EXCLUDED),
    ("# secret.txt", "secret.txt", KEPT),
    ("# comment\n\n\nsecret.txt\n", "secret.txt", EXCLUDED),
    ("  # not a comment", "# not a comment", EXCLUDED),
    ("*\n! keep", "keep", KEPT),
    ("*\r\n!keep\r\n", "keep", KEPT),
    ("\u{feff}secret.txt", "secret.txt", EXCLUDED),
    // The Dockerfile and the ignore file can be matched like any file.
    ("Dockerfile\n.dockerignore", "Dockerfile", EXCLUDED),
    ("Dockerfile\n.dockerignore", ".dockerignore", EXCLUDED),
    ("*\n!Dockerfile", ".dockerignore", EXCLUDED),
    // Paths handed in are cleaned; the context root is never excluded.
    ("secret", "./secret", EXCLUDED),
    ("secret", "/secret/x", EXCLUDED),
    ("secret", "secret/", EXCLUDED),
    ("*", ".", KEPT),
    ("**", "", KEPT),
    ("", "anything", KEPT),
];

#[test]
fn table_of_docker_behaviour() {
    let mut failures = Vec::new();
    for &(patterns, path, expected) in CASES {
        let ignore = DockerIgnore::parse(patterns).unwrap_or_else(|err| panic!("{patterns:?}: {err}"));
        if ignore.is_excluded(path) != expected {
            failures.push(format!("patterns {patterns:?}, path {path:?}: expected excluded={expected}"));
        }
    }
    assert!(CASES.len() >= 60);
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// (patterns, directory, may the walker skip it?)
const SKIP_CASES: &[(&str, &str, bool)] = &[
    ("node_modules", "node_modules", true),
    ("node_modules", "node_modules/pkg", true),
    ("node_modules", "src", false),
    ("dir/**", "dir", false), // `dir` itself is not excluded
    ("dir/**", "dir/sub", true),
    ("dir\n!dir/keep", "dir", false),
    ("dir\n!dir/keep", "dir/other", true),
    ("dir\n!dir/keep", "dir/keep", false),
    ("dir\n!*/keep", "dir", false), // a wildcard exception may reach inside
    ("dir\n!other/keep", "dir", true),
    ("dir\n!**/*.go", "dir", false),
    ("!dir/keep\ndir", "dir", true), // the exception comes first and loses
    ("*\n!src", "docs", true),
    ("*\n!src", "src", false),
    ("*\n!src/**/*.rs", "src", false),
    ("*\n!src/**/*.rs", "target", true),
    ("*\n!*.md", "docs", true), // `*` in `*.md` cannot reach below `docs/`
    ("", "anything", false),
    ("*", ".", false),
];

#[test]
fn skipping_excluded_directories_is_safe() {
    let mut failures = Vec::new();
    for &(patterns, dir, expected) in SKIP_CASES {
        let ignore = DockerIgnore::parse(patterns).unwrap();
        if ignore.can_skip_dir(dir) != expected {
            failures.push(format!("patterns {patterns:?}, dir {dir:?}: expected can_skip_dir={expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_skippable_directory_has_nothing_included_below_it() {
    let files =
        ["dir/a", "dir/keep", "dir/keep/x.go", "dir/sub/y.go", "src/lib.rs", "src/deep/mod.rs", "z.md"];
    for patterns in
        ["dir\n!dir/keep", "dir\n!**/*.go", "*\n!src", "**\n!*/keep", "dir\n!dir/sub/*.go\ndir/sub"]
    {
        let ignore = DockerIgnore::parse(patterns).unwrap();
        for file in files {
            let mut parent = file;
            while let Some((dir, _)) = parent.rsplit_once('/') {
                if ignore.can_skip_dir(dir) {
                    assert!(ignore.is_excluded(file), "{patterns:?}: skipped {dir:?} hides kept {file:?}");
                }
                parent = dir;
            }
        }
    }
}

#[test]
fn invalid_patterns_name_their_line() {
    for (text, line) in [
        ("ok\n[abc", 2),
        ("[", 1),
        ("a\n\n# c\nfoo\\", 4),
        ("[]a]", 1),
        ("[-x]", 1),
        ("[x-]", 1),
        ("[a-b-c]", 1),
        ("[^]", 1),
        ("[z-a]", 1),
        ("ok\n!", 2),
        ("ok\n! ", 2),
    ] {
        let err = DockerIgnore::parse(text).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
        assert!(!err.message.is_empty());
    }
    let err = DockerIgnore::parse("fine\n  bad[  \n").unwrap_err();
    assert_eq!(err.pattern, "bad[");
}

#[test]
fn patterns_are_reported_cleaned() {
    let ignore = DockerIgnore::parse("/a/b/../c/\n! ./keep//me\n# x\n").unwrap();
    let shown: Vec<String> = ignore.patterns().iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["a/c", "!keep/me"]);
    assert_eq!(ignore.patterns()[1].text(), "keep/me");
    assert!(ignore.patterns()[1].is_exception());
    assert_eq!(ignore.patterns()[1].line(), 2);
    assert!(DockerIgnore::empty().patterns().is_empty());
    assert!(!DockerIgnore::empty().is_excluded("x"));
}

#[test]
fn pathological_patterns_do_not_explode() {
    // Naive backtracking needs ~n^8 steps for the first and ~depth^9 for the
    // second; an automaton needs a few milliseconds.
    let long_name = "a".repeat(30_000);
    let deep_path = vec!["d"; 2_000].join("/") + "/b";
    let ignore = DockerIgnore::parse("*a*a*a*a*a*a*a*b\n**/**/**/**/**/**/**/**/**/a\n").unwrap();
    let started = Instant::now();
    assert!(!ignore.is_excluded(&long_name));
    assert!(ignore.is_excluded(&format!("{long_name}b")));
    assert!(!ignore.is_excluded(&deep_path));
    assert!(ignore.is_excluded(&format!("{deep_path}/a")));
    assert!(!ignore.can_skip_dir(&deep_path));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let context = tempfile::tempdir().unwrap();
    let build = context.path().join("build");
    fs::create_dir(&build).unwrap();
    let dockerfile = build.join("app.Dockerfile");
    fs::write(&dockerfile, "FROM scratch\n").unwrap();

    assert_eq!(dockerignore::read_for_dockerfile(context.path(), &dockerfile).unwrap(), None);

    fs::write(context.path().join(".dockerignore"), "root\n").unwrap();
    let (path, text) = dockerignore::read_for_dockerfile(context.path(), &dockerfile).unwrap().unwrap();
    assert_eq!(path, context.path().join(".dockerignore"));
    assert_eq!(text, "root\n");

    fs::write(build.join("app.Dockerfile.dockerignore"), "specific\n").unwrap();
    let (path, text) = dockerignore::read_for_dockerfile(context.path(), &dockerfile).unwrap().unwrap();
    assert_eq!(path, build.join("app.Dockerfile.dockerignore"));
    assert_eq!(text, "specific\n");

    // Another Dockerfile in the same directory does not pick it up.
    let other = build.join("Dockerfile");
    let (path, _) = dockerignore::read_for_dockerfile(context.path(), &other).unwrap().unwrap();
    assert_eq!(path, context.path().join(".dockerignore"));
}
