//! Per-instruction argument shapes, following BuildKit's dispatch table:
//! which keyword takes JSON-or-shell text, which splits on blanks, which
//! reads `key value` pairs, and so on. Everything here works on the
//! argument text after the keyword and flags, and reports byte ranges
//! relative to it so the caller can turn them into spans.

use super::json_array::{JsonArray, parse_json_array};
use super::words::{is_ascii_space, split_first_blank_run, split_on_blanks, split_quote_aware};

/// The instructions BuildKit's parser knows. Other keywords still parse,
/// keeping their text, and are rejected by the later `instructions` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    /// Looks up a lower-cased keyword.
    pub fn from_lowercase(keyword: &str) -> Option<Keyword> {
        Some(match keyword {
            "add" => Keyword::Add,
            "arg" => Keyword::Arg,
            "cmd" => Keyword::Cmd,
            "copy" => Keyword::Copy,
            "entrypoint" => Keyword::Entrypoint,
            "env" => Keyword::Env,
            "expose" => Keyword::Expose,
            "from" => Keyword::From,
            "healthcheck" => Keyword::Healthcheck,
            "label" => Keyword::Label,
            "maintainer" => Keyword::Maintainer,
            "onbuild" => Keyword::Onbuild,
            "run" => Keyword::Run,
            "shell" => Keyword::Shell,
            "stopsignal" => Keyword::Stopsignal,
            "user" => Keyword::User,
            "volume" => Keyword::Volume,
            "workdir" => Keyword::Workdir,
            _ => return None,
        })
    }

    /// The instructions whose shell form may introduce heredocs.
    pub fn takes_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }
}

/// One argument and the byte range it came from (relative to the argument
/// text). Empty ranges mark arguments with no text of their own, such as
/// the empty separator of `ENV key value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShapedArg {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Shaped {
    pub args: Vec<ShapedArg>,
    pub json: bool,
    /// For `ONBUILD`: the range of the trigger instruction to parse.
    pub nested: Option<(usize, usize)>,
}

/// A malformed argument list, with the range to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShapeError {
    pub message: String,
    pub hint: Option<String>,
    pub start: usize,
    pub end: usize,
}

/// Shapes the (already trimmed) argument text of an instruction.
pub(super) fn shape_arguments(
    keyword: Option<Keyword>,
    rest: &str,
    escape: char,
) -> Result<Shaped, ShapeError> {
    let Some(keyword) = keyword else {
        return Ok(whole_rest(rest));
    };
    match keyword {
        Keyword::Run | Keyword::Cmd | Keyword::Entrypoint | Keyword::Shell => json_or_whole_rest(rest, 0),
        Keyword::Add | Keyword::Copy | Keyword::Volume => json_or_blank_split(rest),
        Keyword::From | Keyword::Expose => Ok(blank_split(rest)),
        Keyword::Env => key_value_pairs(rest, "ENV", escape),
        Keyword::Label => key_value_pairs(rest, "LABEL", escape),
        Keyword::Arg => Ok(quote_aware_words(rest, escape)),
        Keyword::Maintainer | Keyword::User | Keyword::Workdir | Keyword::Stopsignal => Ok(whole_rest(rest)),
        Keyword::Healthcheck => healthcheck(rest),
        Keyword::Onbuild => {
            Ok(Shaped { nested: (!rest.is_empty()).then_some((0, rest.len())), ..Shaped::default() })
        }
    }
}

fn arg(text: &str, start: usize, end: usize) -> ShapedArg {
    ShapedArg { text: text.to_string(), start, end }
}

/// The whole text as one argument (none when empty).
fn whole_rest(rest: &str) -> Shaped {
    let args = if rest.is_empty() { Vec::new() } else { vec![arg(rest, 0, rest.len())] };
    Shaped { args, ..Shaped::default() }
}

/// Parses the JSON form if the text is a valid JSON array. `Ok(None)` means
/// it is not JSON and the caller should use its shell-form shape.
fn try_json(rest: &str, base: usize) -> Result<Option<Shaped>, ShapeError> {
    let json_text = rest.trim_start();
    if !json_text.starts_with('[') {
        return Ok(None);
    }
    let offset = base + rest.len() - json_text.len();
    match parse_json_array(json_text) {
        JsonArray::NotJson => Ok(None),
        JsonArray::Strings(strings) => {
            let args = strings
                .into_iter()
                .map(|string| ShapedArg {
                    text: string.value,
                    start: offset + string.start,
                    end: offset + string.end,
                })
                .collect();
            Ok(Some(Shaped { args, json: true, nested: None }))
        }
        JsonArray::NonStringElement { start, end } => Err(ShapeError {
            message: "when using JSON array syntax, arrays must be comprised of strings only".to_string(),
            hint: Some(
                "quote every element, e.g. [\"echo\", \"hello\"], or drop the brackets to use the shell form"
                    .to_string(),
            ),
            start: offset + start,
            end: offset + end,
        }),
    }
}

/// `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`: JSON elements, else the whole text.
/// `base` is where `rest` starts in the argument text.
fn json_or_whole_rest(rest: &str, base: usize) -> Result<Shaped, ShapeError> {
    if rest.is_empty() {
        return Ok(Shaped::default());
    }
    if let Some(shaped) = try_json(rest, base)? {
        return Ok(shaped);
    }
    Ok(Shaped { args: vec![arg(rest, base, base + rest.len())], ..Shaped::default() })
}

/// `ADD`, `COPY`, `VOLUME`: JSON elements, else blank-separated words.
fn json_or_blank_split(rest: &str) -> Result<Shaped, ShapeError> {
    if let Some(shaped) = try_json(rest, 0)? {
        return Ok(shaped);
    }
    Ok(blank_split(rest))
}

/// Words separated by runs of ASCII blanks; quotes mean nothing here.
fn blank_split(rest: &str) -> Shaped {
    if rest.is_empty() {
        return Shaped::default();
    }
    let args = split_on_blanks(rest)
        .into_iter()
        .map(|(start, end)| arg(rest.get(start..end).unwrap_or(""), start, end))
        .collect();
    Shaped { args, ..Shaped::default() }
}

/// `ARG`: quote-aware words, quotes kept.
fn quote_aware_words(rest: &str, escape: char) -> Shaped {
    let args = split_quote_aware(rest, escape)
        .into_iter()
        .map(|word| ShapedArg { text: word.text, start: word.start, end: word.end })
        .collect();
    Shaped { args, ..Shaped::default() }
}

/// `ENV` and `LABEL`: `key value sep` triples. If the first word has no
/// `=`, the legacy form applies: one pair, the value being everything after
/// the first run of blanks, with an empty separator. Otherwise every word
/// must be `key=value`. Values stay raw (quotes and escapes kept).
fn key_value_pairs(rest: &str, instruction: &str, escape: char) -> Result<Shaped, ShapeError> {
    let words = split_quote_aware(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Shaped::default());
    };

    if !first.text.contains('=') {
        let (key_end, value_start) = split_first_blank_run(rest);
        let key = rest.get(..key_end).unwrap_or("");
        let Some(value_start) = value_start else {
            return Err(ShapeError {
                message: format!("{instruction} {key} has no value: {instruction} needs a name and a value"),
                hint: Some(format!("write `{instruction} {key}=<value>` (or `{instruction} {key} <value>`)")),
                start: 0,
                end: rest.len(),
            });
        };
        let value = rest.get(value_start..).unwrap_or("");
        let args = vec![arg(key, 0, key_end), arg(value, value_start, rest.len()), arg("", key_end, key_end)];
        return Ok(Shaped { args, ..Shaped::default() });
    }

    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some(equals) = word.text.find('=') else {
            let mut quoted = String::new();
            super::go_quote::push_go_quoted(&mut quoted, &word.text);
            return Err(ShapeError {
                message: format!("Syntax error - can't find = in {quoted}. Must be of the form: name=value"),
                hint: Some(format!(
                    "once one {instruction} pair uses `name=value`, every word on the line must; quote values with spaces"
                )),
                start: word.start,
                end: word.end,
            });
        };
        let equals_at = word.start + equals;
        args.push(arg(word.text.get(..equals).unwrap_or(""), word.start, equals_at));
        args.push(arg(word.text.get(equals + 1..).unwrap_or(""), equals_at + 1, word.end.max(equals_at + 1)));
        args.push(arg("=", equals_at, equals_at + 1));
    }
    Ok(Shaped { args, ..Shaped::default() })
}

/// `HEALTHCHECK`: the first word (`CMD`, `NONE`, …), then the rest shaped
/// like `CMD`. Only ASCII whitespace ends the word, as in BuildKit.
fn healthcheck(rest: &str) -> Result<Shaped, ShapeError> {
    let type_end = rest.find(is_ascii_space).unwrap_or(rest.len());
    if type_end == 0 {
        return Ok(Shaped::default());
    }
    let command_start = rest
        .get(type_end..)
        .and_then(|tail| tail.find(|c: char| !is_ascii_space(c)))
        .map_or(rest.len(), |offset| type_end + offset);
    let mut command = json_or_whole_rest(rest.get(command_start..).unwrap_or(""), command_start)?;
    command.args.insert(0, arg(rest.get(..type_end).unwrap_or(""), 0, type_end));
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(keyword: Keyword, rest: &str) -> Vec<String> {
        shape_arguments(Some(keyword), rest, '\\').expect("valid").args.into_iter().map(|a| a.text).collect()
    }

    fn ranges(keyword: Keyword, rest: &str) -> Vec<(usize, usize)> {
        shape_arguments(Some(keyword), rest, '\\')
            .expect("valid")
            .args
            .into_iter()
            .map(|a| (a.start, a.end))
            .collect()
    }

    #[test]
    fn json_or_shell_form() {
        assert_eq!(texts(Keyword::Run, r#"[ "echo", "hi" ]"#), ["echo", "hi"]);
        assert_eq!(texts(Keyword::Run, "echo [ hi"), ["echo [ hi"]);
        assert_eq!(texts(Keyword::Cmd, "['a']"), ["['a']"]);
        assert!(texts(Keyword::Cmd, "[]").is_empty());
        assert!(shape_arguments(Some(Keyword::Cmd), "[]", '\\').expect("valid").json);
        assert!(texts(Keyword::Run, "").is_empty());
    }

    #[test]
    fn list_forms() {
        assert_eq!(texts(Keyword::Copy, "a  b\tc"), ["a", "b", "c"]);
        assert_eq!(texts(Keyword::Copy, r#"[ "test file", "/tmp" ]"#), ["test file", "/tmp"]);
        assert_eq!(texts(Keyword::Volume, r#""/a b""#), ["\"/a", "b\""]);
        assert_eq!(ranges(Keyword::From, "image AS  x"), [(0, 5), (6, 8), (10, 11)]);
        assert_eq!(ranges(Keyword::Copy, r#"[ "a", "b" ]"#), [(2, 5), (7, 10)]);
    }

    #[test]
    fn env_forms() {
        assert_eq!(texts(Keyword::Env, "name value  more"), ["name", "value  more", ""]);
        assert_eq!(texts(Keyword::Env, r#"a=1 b="x y""#), ["a", "1", "=", "b", r#""x y""#, "="]);
        assert_eq!(texts(Keyword::Label, "=v"), ["", "v", "="]);
        assert!(texts(Keyword::Env, "").is_empty());
        assert_eq!(ranges(Keyword::Env, "a=1 bb=22"), [(0, 1), (2, 3), (1, 2), (4, 6), (7, 9), (6, 7)]);
        assert_eq!(ranges(Keyword::Env, "k v"), [(0, 1), (2, 3), (1, 1)]);
    }

    #[test]
    fn healthcheck_and_others() {
        assert_eq!(texts(Keyword::Healthcheck, "CMD   a b"), ["CMD", "a b"]);
        assert_eq!(texts(Keyword::Healthcheck, r#"CMD ["foo"]"#), ["CMD", "foo"]);
        assert_eq!(texts(Keyword::Healthcheck, "NONE"), ["NONE"]);
        assert_eq!(ranges(Keyword::Healthcheck, r#"CMD ["foo"]"#), [(0, 3), (5, 10)]);
        assert_eq!(texts(Keyword::Arg, r#"abc="123 456" def"#), [r#"abc="123 456""#, "def"]);
        assert_eq!(texts(Keyword::User, "a b"), ["a b"]);
        assert_eq!(shape_arguments(None, "x y", '\\').expect("valid").args.len(), 1);
        assert_eq!(
            shape_arguments(Some(Keyword::Onbuild), "RUN x", '\\').expect("valid").nested,
            Some((0, 5))
        );
    }

    #[test]
    fn malformed_arguments() {
        let error = shape_arguments(Some(Keyword::Env), "PATH", '\\').expect_err("no value");
        assert!(error.message.contains("ENV PATH has no value"));
        assert_eq!((error.start, error.end), (0, 4));
        let error = shape_arguments(Some(Keyword::Env), "a=b c", '\\').expect_err("no =");
        assert!(error.message.contains(r#"can't find = in "c""#));
        assert_eq!((error.start, error.end), (4, 5));
        let error = shape_arguments(Some(Keyword::Cmd), r#"[ "echo", [ "x" ] ]"#, '\\').expect_err("nested");
        assert!(error.message.contains("strings only"));
        assert_eq!((error.start, error.end), (10, 17));
    }
}
