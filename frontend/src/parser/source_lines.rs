//! Physical lines of the Dockerfile: the byte-order mark is dropped, the text
//! is cut at every `\n`, and line terminators (`\n`, `\r\n`, stray trailing
//! `\r`s) are removed so the rest of the parser sees bare line text.

/// One physical line, numbered from 1, without its terminator.
#[derive(Debug, Clone, Copy)]
pub(super) struct SourceLine<'a> {
    pub number: usize,
    pub text: &'a str,
}

impl SourceLine<'_> {
    /// The column one past the last character, where a span covering the
    /// whole line ends.
    pub fn end_col(&self) -> usize {
        self.text.chars().count() + 1
    }
}

/// Splits `src` into lines. A final `\n` does not start an extra empty line,
/// matching how BuildKit's scanner counts lines.
pub(super) fn split_lines(src: &str) -> Vec<SourceLine<'_>> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    src.split_inclusive('\n')
        .enumerate()
        .map(|(index, raw)| SourceLine { number: index + 1, text: strip_line_terminator(raw) })
        .collect()
}

/// BuildKit trims every trailing `\r` and `\n`, so `a\r\r\n` is the line `a`.
fn strip_line_terminator(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        split_lines(src).iter().map(|line| line.text).collect()
    }

    #[test]
    fn crlf_bom_and_missing_final_newline() {
        assert_eq!(texts("\u{feff}FROM a\r\nRUN b\r\n"), ["FROM a", "RUN b"]);
        assert_eq!(texts("a\n\nb"), ["a", "", "b"]);
        assert!(texts("").is_empty());
        assert_eq!(split_lines("x\ny")[1].number, 2);
    }

    #[test]
    fn end_col_counts_characters() {
        assert_eq!(split_lines("héllo")[0].end_col(), 6);
    }
}
