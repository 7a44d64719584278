//! COPY/ADD source wildcards with Go's `filepath.Match` rules, which is
//! what Docker and BuildKit use: `*` matches any run of characters but `/`,
//! `?` one character but `/`, `[...]` a class (`[^...]` negates, `a-z`
//! ranges, `\` escapes), `\x` a literal `x`. There is no `{a,b}`
//! alternation and no `**`: a pattern is matched one path component at a
//! time, so `src/*/main.go` looks one directory deep.

/// A malformed pattern (an unclosed `[`, a dangling `\`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {0:?}")]
pub struct BadPattern(pub String);

/// True when `p` holds a wildcard (an escaped one does not count).
pub fn has_wildcards(p: &str) -> bool {
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => return true,
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    false
}

/// Removes the escapes of a pattern without wildcards (`a\*b` → `a*b`).
pub fn unescape(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Matches one path component `name` against one pattern component.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n).map_err(|()| BadPattern(pattern.to_string()))
}

/// Iterative matcher with single-star backtracking, as Go's.
fn match_from(p: &[char], n: &[char]) -> Result<bool, ()> {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    let (hit, next) = class(p, pi, n[ni])?;
                    if hit {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' => {
                    let Some(&lit) = p.get(pi + 1) else { return Err(()) };
                    if ni < n.len() && n[ni] == lit {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c if c != '?' && c != '[' && ni < n.len() && n[ni] == c => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Ok(true);
        }
        // Mismatch: let the last star swallow one more character (never a `/`).
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => {
                // Go reports a malformed rest of the pattern even on a mismatch.
                validate(&p[pi.min(p.len())..])?;
                return Ok(false);
            }
        }
    }
}

/// Matches `c` against the class starting at `p[start]` (`[`); returns the
/// result and the index after the closing `]`.
fn class(p: &[char], start: usize, c: char) -> Result<(bool, usize), ()> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let Some(&ch) = p.get(i) else { return Err(()) };
        if ch == ']' && !first {
            return Ok((hit != negated, i + 1));
        }
        first = false;
        let lo = read_class_char(p, &mut i)?;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            read_class_char(p, &mut i)?
        } else {
            lo
        };
        if lo > hi {
            return Err(());
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
}

fn read_class_char(p: &[char], i: &mut usize) -> Result<char, ()> {
    let c = *p.get(*i).ok_or(())?;
    if c == '\\' {
        let e = *p.get(*i + 1).ok_or(())?;
        *i += 2;
        return Ok(e);
    }
    // As in Go, an unescaped `-` or `]` cannot stand for itself here.
    if c == '-' || c == ']' {
        return Err(());
    }
    *i += 1;
    Ok(c)
}

fn validate(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class(p, i, '\0')?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_cases() {
        // From Go's path/filepath match tests.
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("{a,b}", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(matches(pattern, name), Ok(*want), "{pattern} vs {name}");
        }
        for bad in ["[]a]", "[-]", "[x-]", "[a-b-c]", "[", "[^", "[^bc", "a[", "\\"] {
            assert!(matches(bad, "a").is_err() || matches(bad, "x").is_err(), "{bad} is malformed");
        }
    }

    #[test]
    fn wildcard_detection_and_unescaping() {
        assert!(has_wildcards("src/*.go"));
        assert!(has_wildcards("a[bc]"));
        assert!(!has_wildcards("a\\*b"));
        assert_eq!(unescape("a\\*b"), "a*b");
    }
}
