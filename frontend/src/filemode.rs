//! `--chmod` values: an octal mode (`0755`) or a symbolic one in chmod(1)
//! syntax (`u+x`, `go-w`, `a=rX,u+s`), which BuildKit also accepts. Parsed
//! here so a bad value is a Dockerfile error with a span; applied per
//! copied entry by the builder through [`apply_symbolic`].

use crate::graph::FileMode;

/// Parses a `--chmod` value; `Err` carries a message for the user.
pub fn parse(value: &str) -> Result<FileMode, String> {
    // A value that starts like a number is an octal mode or an error in
    // octal's words (`64a`), as BuildKit reports it.
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return match u32::from_str_radix(value, 8) {
            Ok(m) if m <= 0o7777 => Ok(FileMode::Octal(m)),
            _ => Err(format!(
                "invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
            )),
        };
    }
    clauses(value)?;
    Ok(FileMode::Symbolic(value.to_string()))
}

/// One `who op perms` clause, e.g. `go-w` or `u=g`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    /// Bits of the classes named (all of them when none is named).
    who: u32,
    ops: Vec<(char, Perms)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// Letters from `rwxXst`.
    Letters(String),
    /// Copy another class's bits: `u`, `g` or `o`.
    Copy(char),
}

fn clauses(value: &str) -> Result<Vec<Clause>, String> {
    let bad = |why: &str| format!("invalid chmod parameter {value:?}: {why}");
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut out = Vec::new();
    for part in value.split(',') {
        let mut chars = part.chars().peekable();
        let mut who = 0;
        while let Some(&c) = chars.peek() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => break,
            };
            chars.next();
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut ops = Vec::new();
        while let Some(op) = chars.next() {
            if !matches!(op, '+' | '-' | '=') {
                return Err(bad(&format!("expected +, - or = where {op:?} is")));
            }
            let mut letters = String::new();
            while let Some(&c) = chars.peek() {
                if matches!(c, '+' | '-' | '=') {
                    break;
                }
                letters.push(c);
                chars.next();
            }
            let perms = match letters.as_str() {
                "u" | "g" | "o" => Perms::Copy(letters.chars().next().unwrap_or('u')),
                l if l.chars().all(|c| "rwxXst".contains(c)) => Perms::Letters(letters),
                _ => return Err(bad(&format!("unknown permission letters {letters:?}"))),
            };
            ops.push((op, perms));
        }
        if ops.is_empty() {
            return Err(bad(&format!("{part:?} has no +, - or =")));
        }
        out.push(Clause { who, ops });
    }
    Ok(out)
}

/// Applies a symbolic mode to `mode` (permission bits and the
/// setuid/setgid/sticky bits; the file type bits are kept).
pub fn apply_symbolic(spec: &str, mode: u32, is_dir: bool) -> u32 {
    let Ok(clauses) = clauses(spec) else { return mode };
    let file_type = mode & !0o7777;
    let mut m = mode & 0o7777;
    for clause in &clauses {
        for (op, perms) in &clause.ops {
            let bits = match perms {
                Perms::Letters(letters) => {
                    let mut b = 0;
                    for c in letters.chars() {
                        b |= match c {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || m & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        };
                    }
                    b
                }
                Perms::Copy(class) => {
                    let three = match class {
                        'u' => (m >> 6) & 7,
                        'g' => (m >> 3) & 7,
                        _ => m & 7,
                    };
                    three * 0o111
                }
            } & clause.who;
            match op {
                '+' => m |= bits,
                '-' => m &= !bits,
                _ => m = (m & !(clause.who & 0o7777)) | bits,
            }
        }
    }
    file_type | m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic_values() {
        assert_eq!(parse("0755"), Ok(FileMode::Octal(0o755)));
        assert_eq!(parse("644"), Ok(FileMode::Octal(0o644)));
        assert!(parse("99999").is_err());
        assert!(parse("0888").is_err());
        assert_eq!(parse("u+x"), Ok(FileMode::Symbolic("u+x".into())));
        assert!(parse("u+y").is_err());
        assert!(parse("u").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn symbolic_modes_apply_like_chmod() {
        assert_eq!(apply_symbolic("u+x", 0o100644, false), 0o100744);
        assert_eq!(apply_symbolic("go-rwx", 0o755, false), 0o700);
        assert_eq!(apply_symbolic("a=rX", 0o640, false), 0o444);
        assert_eq!(apply_symbolic("a=rX", 0o640, true), 0o555);
        assert_eq!(apply_symbolic("a=rX", 0o740, false), 0o555);
        assert_eq!(apply_symbolic("g=u", 0o750, false), 0o770);
        assert_eq!(apply_symbolic("u+s,+t", 0o755, false), 0o5755);
        assert_eq!(apply_symbolic("=r,u+w", 0o777, false), 0o644);
    }
}
