//! How steps describe themselves: the instruction as written for progress
//! lines, and the texts Docker puts in an image's history (`created_by`).

use crate::instructions::Instruction;

/// The instruction as written, continuations joined, for progress lines.
pub(super) fn display(instr: &Instruction) -> String {
    let flat: String = instr.original.split_whitespace().collect::<Vec<_>>().join(" ");
    let (kw, rest) = flat.split_once(' ').unwrap_or((&flat, ""));
    if rest.is_empty() { kw.to_uppercase() } else { format!("{} {rest}", kw.to_uppercase()) }
}

/// The history text of a step that changes only the image config, as
/// Docker writes it.
pub(super) fn nop_created_by(text: &str) -> String {
    format!("/bin/sh -c #(nop) {text}")
}

/// Go's `%q` of a string slice: `["a" "b"]`, as Docker's history shows.
pub(super) fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| serde_json::to_string(s).unwrap_or_default()).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::testing::instruction;

    #[test]
    fn display_upper_cases_the_keyword_and_joins_whitespace() {
        assert_eq!(display(&instruction("copy  --from=a \\\n\t x   /y")), "COPY --from=a x /y");
        assert_eq!(display(&instruction("workdir\t/app")), "WORKDIR /app");
        assert_eq!(display(&instruction("cmd")), "CMD");
    }

    #[test]
    fn nop_history_text_is_dockers() {
        assert_eq!(nop_created_by("ENV A=1"), "/bin/sh -c #(nop) ENV A=1");
    }

    #[test]
    fn go_list_quotes_like_go() {
        let items = ["/bin/sh".to_string(), "-c".to_string(), "echo \"hi\"\n".to_string()];
        assert_eq!(go_list(&items), r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#);
        assert_eq!(go_list(&[]), "[]");
    }
}
