//! Shell patterns for `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and
//! `${v//p/r}`, matched exactly as BuildKit's regular-expression translation
//! matches them.
//!
//! BuildKit turns a pattern into a Go regular expression: `*` becomes `.*`
//! (or the lazy `.*?` for the shortest-match forms), `?` becomes `.`, a
//! backslash makes `*`, `?` or `\` literal, a backslash before `}` or `/`
//! is dropped (it only kept the delimiter from ending the pattern), any other
//! backslash is an error, and everything else, `[` included, is literal. So
//! there are no bracket expressions, and `?`/`*` never match a newline
//! because Go's `.` does not. Matching follows the regexp engine's
//! leftmost-first rule: the earliest start wins, then the alternative the
//! stars prefer (longest for greedy, shortest for lazy).
//!
//! Rather than build a regex engine, we run those few atoms through a small
//! Pike-style simulation, which keeps the regexp priority order and takes
//! time proportional to text length times pattern length whatever the input.

use super::unicode_class::is_go_word_char;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Literal(char),
    /// `?`: one character other than a newline.
    AnyChar,
    /// `*`: any run of characters other than newlines.
    AnyRun,
}

/// A compiled pattern.
#[derive(Debug)]
struct Pattern {
    atoms: Vec<Atom>,
    /// Whether `*` prefers the longest run (`##`, `%%`, `/`) or the shortest.
    prefer_longest: bool,
}

/// `${value#pattern}` / `${value##pattern}`: drops the shortest (or longest)
/// leading part of `value` the pattern matches. `Err` holds BuildKit's full
/// message for a malformed pattern.
pub(super) fn remove_prefix(pattern: &str, value: &str, longest: bool) -> Result<String, String> {
    let pattern_chars: Vec<char> = pattern.chars().collect();
    let value_chars: Vec<char> = value.chars().collect();
    let compiled = Pattern::compile(&pattern_chars, longest).map_err(|reason| invalid(pattern, &reason))?;
    Ok(match compiled.find(&value_chars, 0, true) {
        Some((_, end)) => value_chars[end..].iter().collect(),
        None => value.to_owned(),
    })
}

/// `${value%pattern}` / `${value%%pattern}`: drops the shortest (or longest)
/// trailing part of `value` the pattern matches.
///
/// A leftmost-first matcher cannot look for the shortest match that ends at
/// the right, so, like BuildKit, we reverse both the pattern (keeping each
/// `\x` escape pair in order) and the value and remove a prefix instead.
/// Errors therefore show the reversed pattern, as BuildKit's do.
pub(super) fn remove_suffix(pattern: &str, value: &str, longest: bool) -> Result<String, String> {
    let reversed_pattern: String = reverse_keeping_escapes(pattern);
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = remove_prefix(&reversed_pattern, &reversed_value, longest)?;
    Ok(trimmed.chars().rev().collect())
}

/// `${value/pattern/replacement}`: replaces the leftmost longest match, with
/// `replacement` taken literally.
pub(super) fn replace_first(pattern: &str, value: &str, replacement: &str) -> Result<String, String> {
    let pattern_chars: Vec<char> = pattern.chars().collect();
    let value_chars: Vec<char> = value.chars().collect();
    let compiled = Pattern::compile(&pattern_chars, true).map_err(|reason| invalid(pattern, &reason))?;
    Ok(match compiled.find(&value_chars, 0, false) {
        Some((start, end)) => {
            let mut replaced: String = value_chars[..start].iter().collect();
            replaced.push_str(replacement);
            replaced.extend(&value_chars[end..]);
            replaced
        }
        None => value.to_owned(),
    })
}

/// `${value//pattern/replacement}`: replaces every match.
///
/// BuildKit hands the replacement to Go's `Regexp.ReplaceAllString`, so it
/// is a template there: `$$` is a dollar, `$0`/`${0}` the matched text, any
/// other `$name`/`${name}` nothing, and a `$` starting no valid reference
/// stays literal. An empty match right after a previous match is not
/// replaced, and the search always moves on by at least one character.
///
/// The result can be as long as the value times the replacement (an empty
/// pattern matches between every two characters), so it stops once the
/// result is longer than `max_len` bytes and returns `Ok(None)`.
pub(super) fn replace_all(
    pattern: &str,
    value: &str,
    replacement: &str,
    max_len: usize,
) -> Result<Option<String>, String> {
    let pattern_chars: Vec<char> = pattern.chars().collect();
    let value_chars: Vec<char> = value.chars().collect();
    let compiled = Pattern::compile(&pattern_chars, true).map_err(|reason| invalid(pattern, &reason))?;

    let mut replaced = String::with_capacity(value.len().min(max_len));
    let mut copied_up_to = 0;
    let mut search_from = 0;
    while search_from <= value_chars.len() {
        let Some((start, end)) = compiled.find(&value_chars, search_from, false) else {
            break;
        };
        replaced.extend(&value_chars[copied_up_to..start]);
        if end > copied_up_to || start == 0 {
            expand_replacement_template(&mut replaced, replacement, &value_chars[start..end], max_len);
        }
        if replaced.len() > max_len {
            return Ok(None);
        }
        copied_up_to = end;
        search_from = (search_from + 1).max(end);
    }
    replaced.extend(&value_chars[copied_up_to..]);
    Ok((replaced.len() <= max_len).then_some(replaced))
}

fn invalid(pattern: &str, reason: &str) -> String {
    format!("invalid pattern ({pattern}) in substitution: {reason}")
}

/// Reverses `pattern` character by character, except that a backslash and
/// the character after it stay together in their original order, so `a\*c`
/// becomes `c\*a`. A lone trailing backslash simply moves to the front.
fn reverse_keeping_escapes(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut index = 0;
    while index < chars.len() {
        let width = if chars[index] == '\\' && index + 1 < chars.len() { 2 } else { 1 };
        units.push(&chars[index..index + width]);
        index += width;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// Appends Go's regexp template expansion of `template` for one match that
/// has no capture groups beyond the whole match. Stops early once `out` is
/// longer than `max_len` bytes (`$0$0…` repeats the match as often as the
/// template asks), overshooting by at most one piece of the template or the
/// match.
fn expand_replacement_template(out: &mut String, template: &str, whole_match: &[char], max_len: usize) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        if out.len() > max_len {
            return;
        }
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match split_template_reference(rest) {
            Some((name, after)) => {
                // Only group 0 exists; every other name or number refers to
                // nothing and expands to nothing.
                if name == "0" {
                    out.extend(whole_match);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Splits `name…` or `{name}…` (the text after a `$`) into the name and the
/// rest, where a name is a run of Go letters, digits and `_`.
fn split_template_reference(text: &str) -> Option<(&str, &str)> {
    let (body, braced) = match text.strip_prefix('{') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let name_len = body.find(|ch: char| !is_go_word_char(ch)).unwrap_or(body.len());
    if name_len == 0 {
        return None;
    }
    let (name, after) = body.split_at(name_len);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

impl Pattern {
    /// Translates pattern text into atoms; `Err` is the reason text.
    fn compile(pattern: &[char], prefer_longest: bool) -> Result<Pattern, String> {
        // BuildKit reads the pattern with Go's text/scanner too, which drops
        // a leading byte-order mark.
        let mut index = usize::from(pattern.first() == Some(&'\u{FEFF}'));
        let mut atoms = Vec::with_capacity(pattern.len());
        while let Some(&ch) = pattern.get(index) {
            index += 1;
            let atom = match ch {
                '*' => Atom::AnyRun,
                '?' => Atom::AnyChar,
                '\\' => match pattern.get(index) {
                    Some('}' | '/') => continue,
                    Some(&escaped @ ('*' | '?' | '\\')) => {
                        index += 1;
                        Atom::Literal(escaped)
                    }
                    // Go formats the end of input as U+FFFD here.
                    Some(&other) => return Err(format!("invalid escape '\\{other}'")),
                    None => return Err("invalid escape '\\\u{FFFD}'".to_owned()),
                },
                other => Atom::Literal(other),
            };
            atoms.push(atom);
        }
        Ok(Pattern { atoms, prefer_longest })
    }

    /// The leftmost-first match starting at or after `from` (exactly at
    /// `from` when `anchored`), as `(start, end)` character offsets.
    fn find(&self, text: &[char], from: usize, anchored: bool) -> Option<(usize, usize)> {
        let mut search = Search::new(self);
        let mut current: Vec<Thread> = Vec::new();
        let mut next: Vec<Thread> = Vec::new();
        let mut found = None;
        if anchored {
            search.add_thread(&mut current, from, Thread { state: 0, start: from });
        }
        for position in from..=text.len() {
            if !anchored && found.is_none() {
                // A new attempt starting here ranks below every earlier start.
                search.add_thread(&mut current, position, Thread { state: 0, start: position });
            }
            if current.is_empty() {
                break;
            }
            let ch = text.get(position).copied();
            for &thread in &current {
                if thread.state == self.atoms.len() {
                    // Threads after this one rank lower; the match stands
                    // unless a higher-ranked thread still running finds one.
                    found = Some((thread.start, position));
                    break;
                }
                let Some(ch) = ch else { continue };
                let next_state = match self.atoms[thread.state] {
                    Atom::Literal(expected) if expected == ch => thread.state + 1,
                    Atom::AnyChar if ch != '\n' => thread.state + 1,
                    Atom::AnyRun if ch != '\n' => thread.state,
                    _ => continue,
                };
                search.add_thread(&mut next, position + 1, Thread { state: next_state, start: thread.start });
            }
            std::mem::swap(&mut current, &mut next);
            next.clear();
        }
        found
    }
}

/// One live alternative: the atom it waits at (or `atoms.len()` once the
/// whole pattern matched) and where its match started.
#[derive(Debug, Clone, Copy)]
struct Thread {
    state: usize,
    start: usize,
}

/// Bookkeeping shared by the steps of one [`Pattern::find`].
struct Search<'p> {
    pattern: &'p Pattern,
    /// For each state, the text position at which it was last queued, so a
    /// state is queued once per position (by its highest-ranked thread).
    queued_at: Vec<Option<usize>>,
    /// Scratch list of `*` atoms whose "take another character" choice ranks
    /// below skipping them (lazy stars).
    deferred_runs: Vec<usize>,
}

impl<'p> Search<'p> {
    fn new(pattern: &'p Pattern) -> Search<'p> {
        Search { pattern, queued_at: vec![None; pattern.atoms.len() + 1], deferred_runs: Vec::new() }
    }

    /// Queues `thread` at `position` together with everything reachable
    /// without consuming a character, in priority order.
    ///
    /// A `*` offers two choices, "take one more character" (queued as a
    /// thread waiting at the star) and "stop here" (go on to the next atom);
    /// greedy stars rank taking first, lazy ones stopping first. Because the
    /// only non-consuming step is "move past a star", the closure is a walk
    /// forward over consecutive stars.
    fn add_thread(&mut self, list: &mut Vec<Thread>, position: usize, thread: Thread) {
        let atoms = &self.pattern.atoms;
        let mut state = thread.state;
        self.deferred_runs.clear();
        loop {
            if self.queued_at[state] == Some(position) {
                break;
            }
            self.queued_at[state] = Some(position);
            if atoms.get(state) == Some(&Atom::AnyRun) {
                if self.pattern.prefer_longest {
                    list.push(Thread { state, start: thread.start });
                } else {
                    self.deferred_runs.push(state);
                }
                state += 1;
                continue;
            }
            list.push(Thread { state, start: thread.start });
            break;
        }
        // Lazy: the deepest star's "take more" ranks right after the
        // terminal atom, the first star's last.
        while let Some(run_state) = self.deferred_runs.pop() {
            list.push(Thread { state: run_state, start: thread.start });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `replace_all` without a length limit that matters.
    fn replace_all(pattern: &str, value: &str, replacement: &str) -> Result<String, String> {
        super::replace_all(pattern, value, replacement, usize::MAX)
            .map(|replaced| replaced.expect("no limit"))
    }

    #[test]
    fn shortest_and_longest_prefix() {
        assert_eq!(remove_prefix("*x*y", "xxyy", false).unwrap(), "y");
        assert_eq!(remove_prefix("*x", "xxyy", true).unwrap(), "yy");
        assert_eq!(remove_prefix("*", "abc", false).unwrap(), "abc");
        assert_eq!(remove_prefix("*", "abc", true).unwrap(), "");
        assert_eq!(remove_prefix("b", "abc", true).unwrap(), "abc");
    }

    #[test]
    fn suffix_keeps_escape_pairs() {
        assert_eq!(reverse_keeping_escapes("a\\*c"), "c\\*a");
        assert_eq!(reverse_keeping_escapes("ab\\"), "\\ba");
        assert_eq!(remove_suffix("\\**", "xx**", true).unwrap(), "xx");
        assert_eq!(remove_suffix(".*", "file.tar.gz", false).unwrap(), "file.tar");
        assert_eq!(remove_suffix(".*", "file.tar.gz", true).unwrap(), "file");
    }

    #[test]
    fn wildcards_stop_at_newlines() {
        assert_eq!(remove_prefix("*", "ab\ncd", true).unwrap(), "\ncd");
        assert_eq!(remove_prefix("??", "a\nb", true).unwrap(), "a\nb");
    }

    #[test]
    fn brackets_are_literal() {
        assert_eq!(remove_prefix("[ab]", "[ab]c", false).unwrap(), "c");
        assert_eq!(remove_prefix("[ab]", "ac", false).unwrap(), "ac");
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_eq!(
            remove_prefix("\\x", "x", false).unwrap_err(),
            "invalid pattern (\\x) in substitution: invalid escape '\\x'"
        );
        assert!(remove_prefix("a\\", "a", false).is_err());
        // The message names the reversed pattern, as BuildKit's does.
        assert_eq!(
            remove_suffix("ab\\x", "x", false).unwrap_err(),
            "invalid pattern (\\xba) in substitution: invalid escape '\\x'"
        );
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(replace_first("/tmp", "/tmp/tmp/bar", "").unwrap(), "/tmp/bar");
        assert_eq!(replace_all("/tmp", "/tmp/tmp/bar", "").unwrap(), "/bar");
        assert_eq!(replace_first("/?/", "/a/foo/b/c", "/").unwrap(), "/foo/b/c");
        assert_eq!(replace_all("/?/", "/a/foo/b/c", "/").unwrap(), "/foo/c");
        // Greedy star, leftmost start.
        assert_eq!(replace_first("o*o", "foo boo", "X").unwrap(), "fX");
    }

    #[test]
    fn empty_matches_replace_between_characters() {
        assert_eq!(replace_all("", "abc", "-").unwrap(), "-a-b-c-");
        assert_eq!(replace_all("x*", "axbxc", "-").unwrap(), "a-");
        assert_eq!(replace_all("*", "abc", "-").unwrap(), "-");
        assert_eq!(replace_first("", "abc", "-").unwrap(), "-abc");
    }

    #[test]
    fn replace_all_uses_go_templates() {
        assert_eq!(replace_all("b", "abc", "[$0]").unwrap(), "a[b]c");
        assert_eq!(replace_all("b", "abc", "[${0}]").unwrap(), "a[b]c");
        assert_eq!(replace_all("b", "abc", "$$").unwrap(), "a$c");
        assert_eq!(replace_all("b", "abc", "$1x").unwrap(), "ac");
        assert_eq!(replace_all("b", "abc", "$-").unwrap(), "a$-c");
        assert_eq!(replace_all("b", "abc", "${0").unwrap(), "a${0c");
        // The single replacement is literal.
        assert_eq!(replace_first("b", "abc", "$0").unwrap(), "a$0c");
    }

    #[test]
    fn replace_all_stops_at_the_length_limit() {
        // Every one of the 4 characters, and the end, gets the replacement.
        assert_eq!(super::replace_all("", "abcd", "xy", 14).unwrap(), Some("xyaxybxycxydxy".to_owned()));
        assert_eq!(super::replace_all("", "abcd", "xy", 13).unwrap(), None);
        let huge = "r".repeat(1 << 20);
        assert_eq!(super::replace_all("", &"v".repeat(1 << 20), &huge, 1 << 24).unwrap(), None);
        // The limit applies to the result, not to the value.
        assert_eq!(super::replace_all("a", "aaaa", "", 0).unwrap(), Some(String::new()));
        // `$0` repeats the whole match: 4096 copies of a 1 MiB match.
        let template = "$0".repeat(4096);
        assert_eq!(super::replace_all("*", &"v".repeat(1 << 20), &template, 1 << 24).unwrap(), None);
    }

    #[test]
    fn long_inputs_stay_fast() {
        let value = "a".repeat(20_000);
        let pattern = "*a".repeat(50) + "b";
        assert_eq!(remove_prefix(&pattern, &value, true).unwrap(), value);
        assert_eq!(replace_all(&pattern, &value, "x").unwrap(), value);
    }
}
