//! `.dockerignore` parsing and matching with Docker's semantics.
//!
//! This module owns everything about which files of a build context are left
//! out: reading the ignore file (including BuildKit's per-Dockerfile
//! `<name>.dockerignore`), turning each line into a pattern, and deciding for
//! a context-relative path whether it is excluded. The walker that builds the
//! context asks [`DockerIgnore::is_excluded`] per entry and
//! [`DockerIgnore::can_skip_dir`] to avoid descending into excluded trees.
//!
//! # Semantics (those of Docker's `ignorefile.ReadAll` and `patternmatcher`)
//!
//! * A UTF-8 byte order mark on the first line is dropped. A line whose very
//!   first character is `#` is a comment (`  #x` is *not*: the comment test
//!   happens before trimming, as in Docker). Lines are trimmed of surrounding
//!   whitespace and blank lines are skipped.
//! * A leading `!` makes the line an exception (re-include); whitespace after
//!   the `!` is trimmed too, so `! foo` is `!foo`.
//! * The pattern is cleaned like Go's `filepath.Clean` and one leading `/` is
//!   dropped, so `/foo`, `./foo`, `foo/` and `foo` are the same pattern.
//! * Patterns use Go's `filepath.Match` syntax: `*` is any run of characters
//!   except `/`, `?` one character except `/`, `[...]` a class (`[^...]`
//!   negates, ranges `a-z`, `\` escapes inside), `\x` a literal `x`.
//!   On top of that `**` matches any number of directories, including none:
//!   `**/foo` is `foo` at any depth, `dir/**` everything below `dir`, and a
//!   trailing `**` anything at all.
//! * A path is excluded when it, or one of its parent directories, matches a
//!   pattern (Docker's `MatchesOrParentMatches`), and the last pattern that
//!   matches decides: an exception re-includes what earlier lines excluded,
//!   and a later plain pattern excludes again.
//!
//! # Where this deliberately differs from Docker
//!
//! Docker translates patterns to Go regular expressions and some characters
//! leak regex meaning through that translation. Here the documented
//! `filepath.Match` meaning wins: `\d` is a literal `d` (Docker: a digit
//! class, and `\q` is an error at match time), `^` outside a class is a
//! literal (Docker: an anchor once the pattern contains a wildcard), `*` and
//! `?` inside a class are literals, `[[:alpha:]]` is a plain class of those
//! characters, and `**` also matches newlines in file names. `[!...]` is *not*
//! a negation, exactly as in Docker and Go (only `[^...]` is). An out-of-order
//! range such as `[z-a]` is rejected when the file is parsed; Docker fails
//! later, when the first path is matched.
//!
//! One quirk is kept on purpose because it changes which files are sent: when
//! a pattern starts with `**` directly followed by literal text (`**.log`,
//! `**foo`), Docker tests "the path ends with that text", so `**.log`
//! excludes `a/b/x.log`. That is reproduced.
//!
//! # Matching cost
//!
//! Patterns are compiled to a small automaton that is simulated over the path
//! with a set of live states (Thompson style), never by backtracking, so a
//! match costs O(path length × pattern length) however many `*` and `**` a
//! pattern has. Parent directories are checked in the same pass: the path is
//! read once and the automaton is asked whether it accepts at each `/`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A line of a `.dockerignore` file that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: invalid pattern {pattern:?}: {message}")]
pub struct IgnoreError {
    /// 1-based line number in the ignore file.
    pub line: usize,
    /// The line as written, trimmed.
    pub pattern: String,
    pub message: String,
}

/// The parsed contents of a `.dockerignore` file.
///
/// A pattern may well match the `Dockerfile` or the `.dockerignore` itself,
/// and [`DockerIgnore::is_excluded`] reports that faithfully. Docker still
/// reads both files in that case (the builder needs them to do its job); the
/// exclusion only means `COPY`/`ADD` must not see them. Callers reading the
/// Dockerfile and ignore file must therefore not consult this matcher.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// One compiled pattern line.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exception: bool,
    line: usize,
    tokens: Vec<Token>,
    shape: Shape,
}

/// The common pattern forms, recognised once so that matching them is a
/// string comparison instead of an automaton run: a context walk asks every
/// pattern about every entry, so this is on the no-op rebuild's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcard at all (`target`, `docs/build`): the path is it or lies below it.
    Exact(String),
    /// Plain text then a trailing `**` (`dir/**`): the path starts with the text.
    Prefix(String),
    /// `**/name` with a plain name: some component of the path is `name`.
    AnyComponent(String),
    /// `*text` with plain text and no `/` (`*.log`): the first component ends with it.
    TopLevelSuffix(String),
    /// Anything else: run the automaton.
    General,
}

impl Shape {
    fn of(tokens: &[Token]) -> Shape {
        let literal = |tokens: &[Token]| -> Option<String> {
            tokens.iter().map(|t| if let Token::Literal(c) = t { Some(*c) } else { None }).collect()
        };
        match tokens {
            [] => Shape::General,
            [Token::AnyDirs, rest @ ..] => match literal(rest) {
                Some(name) if !name.is_empty() && !name.contains('/') => Shape::AnyComponent(name),
                _ => Shape::General,
            },
            [Token::Star, rest @ ..] => match literal(rest) {
                Some(text) if !text.is_empty() && !text.contains('/') => Shape::TopLevelSuffix(text),
                _ => Shape::General,
            },
            [init @ .., Token::AnyRest] => match literal(init) {
                Some(text) if !text.is_empty() => Shape::Prefix(text),
                _ => Shape::General,
            },
            _ => literal(tokens).map_or(Shape::General, Shape::Exact),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `[...]`: one character (which may be `/`, as in Go) in or out of a set.
    Class(CharClass),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` with more pattern after it: nothing, or anything ending in `/`.
    AnyDirs,
    /// A trailing `**` (and Docker's leading `**text` form): anything at all.
    AnyRest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        inside != self.negated
    }
}

impl DockerIgnore {
    /// An ignore file that excludes nothing.
    pub fn empty() -> DockerIgnore {
        DockerIgnore::default()
    }

    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let mut patterns = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line =
                if index == 0 { raw_line.strip_prefix('\u{feff}').unwrap_or(raw_line) } else { raw_line };
            if let Some(pattern) = Pattern::from_line(line, line_number)? {
                patterns.push(pattern);
            }
        }
        Ok(DockerIgnore { patterns })
    }

    /// The patterns in file order (comments and blank lines dropped).
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether the context entry at `rel_path` (`/`-separated, relative to
    /// the context root) is left out of the context.
    ///
    /// The path is cleaned first, so `./a//b/` is `a/b`. The context root
    /// itself (`""` or `.`) is never excluded, as in Docker.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = normalize_rel_path(rel_path);
        self.is_excluded_clean(&path)
    }

    /// [`DockerIgnore::is_excluded`] for a path the caller knows is clean
    /// (`a/b`, no `.`, empty or trailing components), as a context walker's
    /// paths are: skips the cleaning and its allocation.
    pub fn is_excluded_clean(&self, path: &str) -> bool {
        if path == "." || path.is_empty() || self.patterns.is_empty() {
            return false;
        }
        self.deciding_pattern(path).is_some_and(|index| !self.patterns[index].exception)
    }

    /// Whether a walker may skip the whole directory `rel_dir` without
    /// looking inside: true only when the directory is excluded and no
    /// exception that could win over its exclusion can match anything below
    /// it. The answer is conservative: `false` means "look inside", not "some
    /// file inside is included".
    ///
    /// Docker's own walker only takes this shortcut when every exception is
    /// a plain path; here wildcard exceptions are analysed too (an exception
    /// is live below `dir` when its automaton survives reading `dir/`).
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = normalize_rel_path(rel_dir);
        if dir == "." {
            return false;
        }
        let Some(deciding) = self.deciding_pattern(&dir) else {
            return false;
        };
        if self.patterns[deciding].exception {
            return false;
        }
        // Patterns up to `deciding` cannot change the verdict below `dir`:
        // `deciding` matches `dir`, hence every path below it, and comes
        // later. Only later exceptions can re-include something inside.
        let dir_with_slash = format!("{dir}/");
        !self.patterns[deciding + 1..]
            .iter()
            .any(|pattern| pattern.exception && pattern.could_match_with_prefix(&dir_with_slash))
    }

    /// The index of the last pattern matching `path` or one of its parents.
    fn deciding_pattern(&self, path: &str) -> Option<usize> {
        self.patterns.iter().rposition(|pattern| pattern.matches_path_or_parent(path))
    }
}

impl Pattern {
    /// Turns one line of the ignore file into a pattern, or `None` for
    /// comments and blank lines. Mirrors `ignorefile.ReadAll` followed by
    /// `patternmatcher.New`.
    fn from_line(line: &str, line_number: usize) -> Result<Option<Pattern>, IgnoreError> {
        if line.starts_with('#') {
            return Ok(None);
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let error = |message: &str| IgnoreError {
            line: line_number,
            pattern: trimmed.to_string(),
            message: message.into(),
        };

        let (exception, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        let mut text = String::new();
        if !body.is_empty() {
            text = go_clean(body);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
        }
        // Docker's matcher cleans the line once more with the `!` still
        // attached; that only matters for `!/`, which collapses to a bare
        // `!`. Reproduced so both reject the same lines.
        if exception && (text.is_empty() || text == "/") {
            return Err(error("an exception (\"!\") needs a pattern after it"));
        }
        let tokens = compile(&text).map_err(|message| error(&message))?;
        let shape = Shape::of(&tokens);
        Ok(Some(Pattern { text, exception, line: line_number, tokens, shape }))
    }

    /// The cleaned pattern, without the leading `!` of an exception.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this line starts with `!` and so re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// The 1-based line of the ignore file this pattern came from.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether the pattern matches `path` itself or any of its parent
    /// directories. `path` must already be clean (no `.`/empty components,
    /// no trailing `/`).
    fn matches_path_or_parent(&self, path: &str) -> bool {
        match &self.shape {
            Shape::Exact(text) => {
                return path
                    .strip_prefix(text.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            }
            Shape::Prefix(text) => return path.starts_with(text.as_str()),
            Shape::AnyComponent(name) => return path.split('/').any(|component| component == name),
            Shape::TopLevelSuffix(text) => {
                return path.split('/').next().is_some_and(|first| first.ends_with(text.as_str()));
            }
            Shape::General => {}
        }
        let mut automaton = Automaton::start(&self.tokens);
        for c in path.chars() {
            // Everything before a `/` is a parent directory of `path`.
            if c == '/' && automaton.accepts() {
                return true;
            }
            automaton.step(c);
            if automaton.is_dead() {
                return false;
            }
        }
        automaton.accepts()
    }

    /// Whether some string starting with `prefix` could still be matched.
    fn could_match_with_prefix(&self, prefix: &str) -> bool {
        let mut automaton = Automaton::start(&self.tokens);
        for c in prefix.chars() {
            automaton.step(c);
            if automaton.is_dead() {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exception {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// Finds the ignore file Docker would use for a build: BuildKit prefers
/// `<Dockerfile path>.dockerignore` next to the Dockerfile (for
/// `build/app.Dockerfile`, `build/app.Dockerfile.dockerignore`) and falls back
/// to `.dockerignore` at the context root.
///
/// `dockerfile` is the path of the Dockerfile as the caller resolved it (as
/// with `docker build -f`, a relative path is relative to the current
/// directory, not to the context). Returns the file used and its text
/// (invalid UTF-8 replaced), or `None` when neither file exists.
pub fn read_for_dockerfile(context: &Path, dockerfile: &Path) -> io::Result<Option<(PathBuf, String)>> {
    let mut candidates = Vec::with_capacity(2);
    if dockerfile.file_name().is_some() {
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        candidates.push(PathBuf::from(specific));
    }
    candidates.push(context.join(".dockerignore"));

    for candidate in candidates {
        match fs::read(&candidate) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                return Ok(Some((candidate, text)));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// Go's `filepath.Clean` for `/`-separated paths: collapses repeated
/// slashes, drops `.` components, resolves `..` against the preceding
/// component (or drops it at the root), removes a trailing slash, and turns
/// an empty result into `.`.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Cleans a path handed to the matcher: relative to the context root, so a
/// leading `/` or `./` carries no meaning.
fn normalize_rel_path(rel_path: &str) -> String {
    let cleaned = go_clean(rel_path);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_string(),
        Some(rest) => rest.to_string(),
        None => cleaned,
    }
}

/// Compiles a cleaned pattern to tokens, reporting the `filepath.Match`
/// syntax errors Docker reports (`ErrBadPattern`) in words.
fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();

    // Docker's quirk: `**` at the start followed by plain text is a suffix
    // test on the whole path (`**.log` matches `a/b/x.log`), not `(.*/)?`.
    if let Some(rest) = pattern.strip_prefix("**")
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !rest.contains(['*', '?', '[', ']', '\\'])
    {
        let mut tokens = vec![Token::AnyRest];
        tokens.extend(rest.chars().map(Token::Literal));
        return Ok(tokens);
    }

    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                // `**/` behaves as `**`: the slash is part of "any directories".
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i == chars.len() { Token::AnyRest } else { Token::AnyDirs });
            }
            '*' => {
                tokens.push(Token::Star);
                i += 1;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                i += 1;
            }
            '[' => {
                let (class, next) = parse_class(&chars, i + 1)?;
                tokens.push(Token::Class(class));
                i = next;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err("a trailing backslash escapes nothing".into());
                };
                tokens.push(Token::Literal(escaped));
                i += 2;
            }
            other => {
                tokens.push(Token::Literal(other));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// Parses a character class whose body starts at `chars[start]` (just after
/// the `[`), following `filepath.Match`: an optional `^`, then at least one
/// character or range before the closing `]`; `-` and `]` must be escaped
/// where they would be ambiguous. Returns the class and the index after `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(CharClass, usize), String> {
    const UNTERMINATED: &str = "unterminated character class (missing \"]\")";
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(UNTERMINATED.into()),
            Some(']') if !ranges.is_empty() => return Ok((CharClass { negated, ranges }, i + 1)),
            _ => {}
        }
        let (lo, after_lo) = class_char(chars, i)?;
        i = after_lo;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (end, after_hi) = class_char(chars, i + 1)?;
            hi = end;
            i = after_hi;
        }
        if lo > hi {
            return Err(format!("character range {lo}-{hi} is out of order"));
        }
        ranges.push((lo, hi));
        if i >= chars.len() {
            return Err(UNTERMINATED.into());
        }
    }
}

/// One (possibly escaped) character inside a class, as Go's `getEsc`.
fn class_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    match chars.get(i) {
        None => Err("unterminated character class (missing \"]\")".into()),
        Some('-') => Err("unescaped \"-\" where a class character is expected".into()),
        Some(']') => Err("empty character class or range (use \"\\]\" for a literal \"]\")".into()),
        Some('\\') => match chars.get(i + 1) {
            Some(&escaped) => Ok((escaped, i + 2)),
            None => Err("a trailing backslash escapes nothing".into()),
        },
        Some(&c) => Ok((c, i + 1)),
    }
}

/// A set of live states while reading a path, one Thompson-NFA step per
/// character. State `i < n` means "about to match token `i`", state `n`
/// means "whole pattern matched", and state `n + 1 + i` means "inside the
/// directories consumed by the `**` at token `i`, waiting for a `/`".
struct Automaton<'a> {
    tokens: &'a [Token],
    live: StateSet,
    scratch: StateSet,
}

impl<'a> Automaton<'a> {
    fn start(tokens: &'a [Token]) -> Automaton<'a> {
        let state_count = 2 * tokens.len() + 1;
        let mut live = StateSet::new(state_count);
        add_with_closure(tokens, &mut live, 0);
        Automaton { tokens, live, scratch: StateSet::new(state_count) }
    }

    fn accept_state(&self) -> usize {
        self.tokens.len()
    }

    fn accepts(&self) -> bool {
        self.live.contains(self.accept_state())
    }

    fn is_dead(&self) -> bool {
        self.live.is_empty()
    }

    fn step(&mut self, c: char) {
        let mut next = std::mem::replace(&mut self.scratch, StateSet::new(0));
        next.clear();
        let token_count = self.tokens.len();
        for &state in &self.live.members {
            if state < token_count {
                let advance = match &self.tokens[state] {
                    Token::Literal(expected) => (*expected == c).then_some(state + 1),
                    Token::AnyChar => (c != '/').then_some(state + 1),
                    Token::Class(class) => class.matches(c).then_some(state + 1),
                    Token::Star => (c != '/').then_some(state),
                    Token::AnyRest => Some(state),
                    // The entry state of `**` reads nothing itself; its
                    // "inside" state does.
                    Token::AnyDirs => None,
                };
                if let Some(target) = advance {
                    add_with_closure(self.tokens, &mut next, target);
                }
            } else if state > token_count {
                let token = state - token_count - 1;
                next.insert(state);
                if c == '/' {
                    add_with_closure(self.tokens, &mut next, token + 1);
                }
            }
        }
        self.scratch = std::mem::replace(&mut self.live, next);
    }
}

/// Adds `state` and every state reachable from it without reading a
/// character (a `*` or `**` matching nothing).
fn add_with_closure(tokens: &[Token], set: &mut StateSet, state: usize) {
    let mut pending = vec![state];
    while let Some(state) = pending.pop() {
        if !set.insert(state) {
            continue;
        }
        if state >= tokens.len() {
            continue;
        }
        match tokens[state] {
            Token::Star | Token::AnyRest => pending.push(state + 1),
            Token::AnyDirs => {
                pending.push(state + 1);
                pending.push(tokens.len() + 1 + state);
            }
            Token::Literal(_) | Token::AnyChar | Token::Class(_) => {}
        }
    }
}

/// A set of small integers with O(1) insert and ordered iteration over the
/// members actually present.
struct StateSet {
    present: Vec<bool>,
    members: Vec<usize>,
}

impl StateSet {
    fn new(size: usize) -> StateSet {
        StateSet { present: vec![false; size], members: Vec::new() }
    }

    fn insert(&mut self, state: usize) -> bool {
        if self.present[state] {
            return false;
        }
        self.present[state] = true;
        self.members.push(state);
        true
    }

    fn contains(&self, state: usize) -> bool {
        self.present[state]
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn clear(&mut self) {
        for &state in &self.members {
            self.present[state] = false;
        }
        self.members.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn excluded(patterns: &str, path: &str) -> bool {
        DockerIgnore::parse(patterns).unwrap().is_excluded(path)
    }

    #[test]
    fn clean_follows_go_filepath_clean() {
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("./foo", "foo"),
            ("foo/", "foo"),
            ("a//b/./c", "a/b/c"),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("//", "/"),
            ("**/", "**"),
        ] {
            assert_eq!(go_clean(input), expected, "clean({input:?})");
        }
    }

    #[test]
    fn lines_are_normalised_like_read_all() {
        let ignore = DockerIgnore::parse(
            "\u{feff}test1\n/test2\n/a/file/here\n\nlastfile\n# comment\n! /inverted/abs/path\r\n  # not a comment\n",
        )
        .unwrap();
        let texts: Vec<String> = ignore.patterns().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            texts,
            ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "# not a comment"]
        );
        assert_eq!(ignore.patterns()[4].line(), 7);
        assert!(ignore.patterns()[4].is_exception());
    }

    #[test]
    fn double_star_tokenisation() {
        assert_eq!(compile("**").unwrap(), vec![Token::AnyRest]);
        assert_eq!(compile("**/a").unwrap(), vec![Token::AnyDirs, Token::Literal('a')]);
        assert_eq!(compile("**a").unwrap(), vec![Token::AnyRest, Token::Literal('a')]);
        assert_eq!(compile("**a*").unwrap(), vec![Token::AnyDirs, Token::Literal('a'), Token::Star]);
        assert_eq!(compile("a/**").unwrap(), vec![Token::Literal('a'), Token::Literal('/'), Token::AnyRest]);
    }

    #[test]
    fn parent_directories_are_checked_in_one_pass() {
        assert!(excluded("a/b", "a/b/c/d"));
        assert!(excluded("a/*", "a/b/c"));
        assert!(!excluded("a/b", "a/bc"));
        // Only whole leading components are parents: `b` is not `a/b`.
        assert!(!excluded("b", "a/b/c"));
    }

    #[test]
    fn shape_shortcuts_agree_with_the_automaton() {
        let patterns = [
            "target",
            "docs/build",
            "a\\*b",
            "dir/**",
            "ab**",
            "**/node_modules",
            "**/x.y",
            "*.log",
            "*",
            "**",
            "**.log",
            "a/*",
            "*a*",
            "**/a/b",
            "[ab]c",
        ];
        let paths = [
            "target",
            "target/debug/x",
            "targets",
            "docs/build",
            "docs/build/a",
            "docs/buildx",
            "a*b",
            "a*b/c",
            "dir",
            "dir/x",
            "dir/x/y",
            "dirx/y",
            "ab",
            "abc/d",
            "node_modules",
            "src/node_modules/x",
            "src/node_modules",
            "x/node_modulesx",
            "x.y",
            "q/x.y",
            "a.log",
            "a.log/x",
            "b/a.log",
            "alog",
            "a/b",
            "a/b/c",
            "ac",
            "bc/d",
            ".log",
            "x/.log",
        ];
        for text in patterns {
            let pattern = DockerIgnore::parse(text).unwrap().patterns()[0].clone();
            let mut general = pattern.clone();
            general.shape = Shape::General;
            for path in paths {
                assert_eq!(
                    pattern.matches_path_or_parent(path),
                    general.matches_path_or_parent(path),
                    "pattern {text:?} ({:?}) on {path:?}",
                    pattern.shape
                );
            }
        }
        let shape = |text: &str| DockerIgnore::parse(text).unwrap().patterns()[0].shape.clone();
        assert_eq!(shape("target"), Shape::Exact("target".into()));
        assert_eq!(shape("dir/**"), Shape::Prefix("dir/".into()));
        assert_eq!(shape("**/node_modules"), Shape::AnyComponent("node_modules".into()));
        assert_eq!(shape("*.log"), Shape::TopLevelSuffix(".log".into()));
        assert_eq!(shape("a/*"), Shape::General);
    }

    #[test]
    fn pathological_patterns_run_in_linear_time() {
        let deep_path = vec!["d"; 400].join("/") + "/b";
        let long_name = "a".repeat(20_000);
        let started = Instant::now();
        assert!(!excluded("**/**/**/**/**/**/**/**/**/a", &deep_path));
        assert!(!excluded("*a*a*a*a*a*a*a*b", &long_name));
        assert!(excluded("*a*a*a*a*a*a*a*b", &(long_name.clone() + "b")));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}
