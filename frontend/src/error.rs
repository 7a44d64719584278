//! Frontend errors: a message, the span it is about, and a hint, rendered
//! like a compiler diagnostic with the source line and a caret.

use crate::span::Span;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrontendError {
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

impl FrontendError {
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        FrontendError { message: message.into(), span, hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col: message`, the source line with a caret under the
    /// span, then the hint.
    pub fn render(&self, file: &str, source: &str) -> String {
        let Span { start, end } = self.span;
        let mut out = if start.line > 0 {
            format!("{file}:{}:{}: {}\n", start.line, start.col.max(1), self.message)
        } else {
            format!("{file}: {}\n", self.message)
        };
        if let Some(text) = source.lines().nth(start.line.wrapping_sub(1)) {
            let gutter = start.line.to_string();
            let text = text.trim_end_matches('\r');
            out.push_str(&format!(" {gutter} | {text}\n"));
            let col = start.col.max(1);
            let width = if end.line == start.line && end.col > col {
                end.col - col
            } else {
                text.chars().count().saturating_sub(col - 1).max(1)
            };
            let pad: String =
                text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            out.push_str(&format!(" {} | {pad}{}\n", " ".repeat(gutter.len()), "^".repeat(width)));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be
/// a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    #[test]
    fn renders_line_and_caret() {
        let src = "FROM busybox\nCOPY ../x /\n";
        let err = FrontendError::new(
            "source is outside the build context",
            Span::new(Pos::new(2, 6), Pos::new(2, 10)),
        )
        .with_hint("copy files that are inside the context directory");
        let text = err.render("Dockerfile", src);
        assert_eq!(
            text,
            "Dockerfile:2:6: source is outside the build context\n 2 | COPY ../x /\n   |      ^^^^\nhint: copy files that are inside the context directory\n"
        );
    }

    #[test]
    fn suggests_near_misses_only() {
        let kws = ["from", "run", "copy", "workdir", "entrypoint"];
        assert_eq!(suggest("RUUN", kws), Some("run"));
        assert_eq!(suggest("workdri", kws), Some("workdir"));
        assert_eq!(suggest("xyzzy", kws), None);
    }
}
