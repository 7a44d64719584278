//! `--format` templates: Go templates run by the `gtmpl` crate, with the
//! functions the docker CLI adds (`json`, `split`, `join`, `title`, `lower`,
//! `upper`, `pad`, `truncate`) next to Go's own (`index`, `len`, `println`,
//! `printf`, `eq`, …), and values printed as Go prints them.
//!
//! Two things gtmpl does differently from Go are bridged here:
//!
//! * gtmpl prints lists and maps in Rust's debug form. Every printing action
//!   (`{{.RepoTags}}`) is rewritten to pipe its value through a function
//!   that prints Go's way (`[a b]`, `map[k:v]`, `{…}` for structs), and a
//!   nil list or map as Go prints it (`[]`, `map[]`), which it can tell from
//!   the field's name.
//! * gtmpl's objects are hash maps, but `{{json .Config}}` must list a
//!   struct's fields in their declared order, as Go's encoder does. Struct
//!   values carry their field order under a hidden key that field lookups
//!   never ask for; Go maps (Labels, Volumes, …) have none and print sorted,
//!   as Go does.

use std::collections::HashMap;

use gtmpl::{Context, FuncError, Template, Value};

use crate::report::Failure;

/// Hidden key of a struct value: its field names in order.
const FIELD_ORDER: &str = "\u{0}fields";
/// Hidden key of a struct whose `json` output escapes `<`, `>` and `&`
/// (rows of `docker images`, which Docker marshals with `json.Marshal`).
const ESCAPE_HTML: &str = "\u{0}escape-html";
/// Hidden key of a struct whose fields are all `omitempty` for `json`.
const OMIT_EMPTY: &str = "\u{0}omitempty";
/// The function every printing action is piped through.
const PRINT_FUNC: &str = "rbuildGoPrint";

/// Fields that are Go maps in Docker's types (nil prints `map[]`).
const MAP_FIELDS: &[&str] = &["Labels", "Volumes", "ExposedPorts", "Data"];
/// Fields that are Go slices (nil prints `[]`).
const SLICE_FIELDS: &[&str] =
    &["RepoTags", "RepoDigests", "Env", "Cmd", "Entrypoint", "OnBuild", "Shell", "Layers", "Test"];

/// A parsed `--format` template.
pub struct GoTemplate {
    template: Template,
}

impl GoTemplate {
    pub fn parse(text: &str) -> Result<GoTemplate, Failure> {
        let mut template = Template::default();
        template.add_funcs(&[
            ("json", json as gtmpl::Func),
            ("split", split as gtmpl::Func),
            ("join", join as gtmpl::Func),
            ("title", title as gtmpl::Func),
            ("lower", lower as gtmpl::Func),
            ("upper", upper as gtmpl::Func),
            ("pad", pad as gtmpl::Func),
            ("truncate", truncate as gtmpl::Func),
            (PRINT_FUNC, go_print_func as gtmpl::Func),
        ]);
        let rewritten = rewrite_print_actions(text);
        template.parse(rewritten).map_err(|e| {
            Failure::new(format!("template parsing error: {e}"))
                .hint("--format takes a Go template, e.g. '{{.ID}}' or 'table {{.Repository}}\\t{{.Tag}}'")
        })?;
        Ok(GoTemplate { template })
    }

    pub fn render(&self, data: &Value) -> Result<String, Failure> {
        let mut out = Vec::new();
        self.template
            .execute(&mut out, &Context::from(data.clone()))
            .map_err(|e| Failure::new(format!("template: {e}")))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Docker's `table` prefix: `Some(rest)` when the format is a table.
pub fn strip_table_prefix(format: &str) -> Option<&str> {
    let rest = format.strip_prefix("table")?;
    if rest.is_empty() || rest.starts_with([' ', '\t', '\n']) {
        Some(rest.trim_start_matches(' '))
    } else {
        None
    }
}

/// Docker reads `\t` and `\n` written literally in a table format as tab and newline.
pub fn unescape_table(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}

// ---- values ----

/// A struct value with fields in this order.
pub fn object(fields: Vec<(&str, Value)>) -> Value {
    let order: Vec<Value> = fields.iter().map(|(k, _)| Value::from(*k)).collect();
    let mut map: HashMap<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    map.insert(FIELD_ORDER.to_string(), Value::Array(order));
    Value::Object(map)
}

/// A struct value whose `json` escapes HTML characters, like Docker's
/// formatter contexts (`{{json .}}` of an images row).
pub fn html_escaped_object(fields: Vec<(&str, Value)>) -> Value {
    let mut value = object(fields);
    if let Value::Object(map) = &mut value {
        map.insert(ESCAPE_HTML.to_string(), Value::Bool(true));
    }
    value
}

/// A struct value whose empty fields `json` leaves out (Go's `omitempty`
/// on every field), while templates still see every field.
pub fn omitempty_object(fields: Vec<(&str, Value)>) -> Value {
    let mut value = object(fields);
    if let Value::Object(map) = &mut value {
        map.insert(OMIT_EMPTY.to_string(), Value::Bool(true));
    }
    value
}

/// Converts the JSON value of the field `key` (a Go map when the field is
/// one of Docker's map fields).
pub fn from_json_field(key: &str, json: &serde_json::Value) -> Value {
    convert(json, MAP_FIELDS.contains(&key))
}

/// Converts JSON (with its keys in order) to a template value: objects
/// become structs, except those under a Go map field name.
pub fn from_json(json: &serde_json::Value) -> Value {
    convert(json, false)
}

fn convert(json: &serde_json::Value, is_go_map: bool) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(|v| convert(v, false)).collect()),
        serde_json::Value::Object(map) if is_go_map => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), convert(v, false))).collect())
        }
        serde_json::Value::Object(map) => object(
            map.iter().map(|(k, v)| (k.as_str(), convert(v, MAP_FIELDS.contains(&k.as_str())))).collect(),
        ),
    }
}

// ---- printing ----

/// Prints a value as Go's `fmt.Print` would; `field` is the name of the
/// field it came from, if known, to print nils of the right type.
fn go_print(value: &Value, field: &str, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::NoValue => out.push_str("<no value>"),
        Value::Nil => out.push_str(if SLICE_FIELDS.contains(&field) {
            "[]"
        } else if MAP_FIELDS.contains(&field) {
            "map[]"
        } else {
            "<nil>"
        }),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print(item, "", out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                go_print(&map[key], "", out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, key) in field_order(map).iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print(&map[key.as_str()], key, out);
            }
            out.push('}');
        }
        Value::Function(_) => out.push_str("<func>"),
    }
}

/// A struct's field names in declared order (a plain map's sorted keys).
fn field_order(map: &HashMap<String, Value>) -> Vec<String> {
    match map.get(FIELD_ORDER) {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| if let Value::String(s) = n { Some(s.clone()) } else { None })
            .filter(|n| map.contains_key(n))
            .collect(),
        _ => {
            let mut keys: Vec<String> = map.keys().filter(|k| !k.starts_with('\u{0}')).cloned().collect();
            keys.sort();
            keys
        }
    }
}

fn go_print_func(args: &[Value]) -> Result<Value, FuncError> {
    let (field, value) = match args {
        [Value::String(field), value] => (field.as_str(), value),
        [value] => ("", value),
        _ => return Err(FuncError::ExactlyXArgs(PRINT_FUNC.into(), 2)),
    };
    let mut out = String::new();
    go_print(value, field, &mut out);
    Ok(Value::String(out))
}

/// Rewrites each action that prints a value so that the value goes through
/// [`go_print_func`]. Control actions (`if`, `range`, `end`, …), comments
/// and variable declarations print nothing and are left alone.
fn rewrite_print_actions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after_open = &rest[open + 2..];
        let Some(close) = find_action_end(after_open) else {
            // Unterminated: let the parser report it.
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &after_open[..close];
        out.push_str("{{");
        out.push_str(&rewrite_action(inner));
        out.push_str("}}");
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The offset of the `}}` closing an action, skipping quoted text.
fn find_action_end(action: &str) -> Option<usize> {
    let bytes = action.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn rewrite_action(inner: &str) -> String {
    // Keep trim markers (`{{- ` and ` -}}`) where they are.
    let (lead, body) = match inner.strip_prefix("- ") {
        Some(b) => ("- ", b),
        None => ("", inner),
    };
    let (body, trail) = match body.strip_suffix(" -") {
        Some(b) => (b, " -"),
        None => (body, ""),
    };
    let trimmed = body.trim();
    let first_word = trimmed.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    let is_control = matches!(
        first_word,
        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block" | "break" | "continue"
    );
    if trimmed.is_empty() || trimmed.starts_with("/*") || is_control || is_declaration(trimmed) {
        return inner.to_string();
    }
    let field = last_field_of_chain(trimmed).unwrap_or("");
    format!("{lead}{body} | {PRINT_FUNC} \"{field}\"{trail}")
}

/// `$x := …`, `$x = …`: assignments print nothing.
fn is_declaration(action: &str) -> bool {
    let Some(rest) = action.strip_prefix('$') else { return false };
    let name_end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let after = rest[name_end..].trim_start();
    after.starts_with(":=") || (after.starts_with('=') && !after.starts_with("=="))
}

/// For `.Config.Cmd` or `$img.RepoTags`, the last field name.
fn last_field_of_chain(action: &str) -> Option<&str> {
    let is_chain = action.starts_with(['.', '$'])
        && action.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$');
    if !is_chain {
        return None;
    }
    action.rsplit('.').next().filter(|name| !name.is_empty() && !name.starts_with('$'))
}

// ---- functions docker adds ----

fn string_arg<'a>(args: &'a [Value], index: usize, func: &str) -> Result<&'a str, FuncError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FuncError::Generic(format!("{func}: argument {} must be a string", index + 1))),
    }
}

fn int_arg(args: &[Value], index: usize, func: &str) -> Result<usize, FuncError> {
    match args.get(index) {
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|u| u as usize)
            .ok_or_else(|| FuncError::Generic(format!("{func}: argument {} must be a count", index + 1))),
        _ => Err(FuncError::Generic(format!("{func}: argument {} must be a number", index + 1))),
    }
}

/// Docker's `json`: Go's encoder without HTML escaping and without the
/// trailing newline.
fn json(args: &[Value]) -> Result<Value, FuncError> {
    let [value] = args else { return Err(FuncError::ExactlyXArgs("json".into(), 1)) };
    let mut out = String::new();
    write_json(value, false, &mut out);
    Ok(Value::String(out))
}

fn write_json(value: &Value, escape_html: bool, out: &mut String) {
    match value {
        Value::Nil | Value::NoValue | Value::Function(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_json_string(s, escape_html, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, escape_html, out);
            }
            out.push(']');
        }
        Value::Map(map) | Value::Object(map) => {
            let escape_html = escape_html || map.contains_key(ESCAPE_HTML);
            let omit_empty = map.contains_key(OMIT_EMPTY);
            out.push('{');
            let keys = field_order(map);
            let keys = keys.iter().filter(|k| !(omit_empty && is_empty_value(&map[k.as_str()])));
            for (i, key) in keys.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, escape_html, out);
                out.push(':');
                write_json(&map[key.as_str()], escape_html, out);
            }
            out.push('}');
        }
    }
}

/// What Go's `omitempty` leaves out.
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Nil | Value::NoValue => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(items) => items.is_empty(),
        Value::Map(map) | Value::Object(map) => map.keys().all(|k| k.starts_with('\u{0}')),
        Value::Function(_) => false,
    }
}

/// A JSON string as Go's encoder writes it.
pub fn write_json_string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, 0, "split")?;
    let sep = string_arg(args, 1, "split")?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    Ok(Value::Array(parts))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = string_arg(args, 1, "join")?;
    let items = match args.first() {
        Some(Value::Array(items)) => items.as_slice(),
        Some(Value::Nil) => &[],
        _ => return Err(FuncError::Generic("join: argument 1 must be a list".into())),
    };
    let words: Vec<String> = items
        .iter()
        .map(|v| {
            let mut s = String::new();
            go_print(v, "", &mut s);
            s
        })
        .collect();
    Ok(Value::String(words.join(sep)))
}

/// Go's `strings.Title`: upper-cases each letter that starts a word.
fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, 0, "title")?;
    let mut out = String::with_capacity(s.len());
    let mut after_separator = true;
    for c in s.chars() {
        if after_separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        after_separator = !(c.is_alphanumeric() || c == '_');
    }
    Ok(Value::String(out))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string_arg(args, 0, "lower")?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string_arg(args, 0, "upper")?.to_uppercase()))
}

/// `pad S BEFORE AFTER`: spaces around a string.
fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, 0, "pad")?;
    let before = int_arg(args, 1, "pad")?;
    let after = int_arg(args, 2, "pad")?;
    Ok(Value::String(format!("{}{s}{}", " ".repeat(before), " ".repeat(after))))
}

/// `truncate S N`: at most N bytes (whole characters).
fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, 0, "truncate")?;
    let n = int_arg(args, 1, "truncate")?;
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::String(s[..end].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &str, data: &serde_json::Value) -> String {
        GoTemplate::parse(format).unwrap().render(&from_json(data)).unwrap()
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "Id": "sha256:abc",
            "RepoTags": ["busybox:local", "bb:1"],
            "Config": {"User": "", "Env": ["PATH=/bin", "A=<b>"], "Cmd": null, "Labels": {"z": "1", "a": "2"}},
            "Os": "linux",
            "Size": 1984277,
            "RootFS": {"Type": "layers", "Layers": ["sha256:1", "sha256:2"]}
        })
    }

    #[test]
    fn prints_like_go() {
        let data = sample();
        assert_eq!(render("{{.Os}}", &data), "linux");
        assert_eq!(render("{{.Size}}", &data), "1984277");
        assert_eq!(render("{{.RepoTags}}", &data), "[busybox:local bb:1]");
        assert_eq!(render("{{.Config.Cmd}}", &data), "[]");
        assert_eq!(render("{{.Config.Labels}}", &data), "map[a:2 z:1]");
        assert_eq!(render("{{index .RepoTags 1}}", &data), "bb:1");
        assert_eq!(render("{{len .RootFS.Layers}}", &data), "2");
        assert_eq!(render("{{range .RepoTags}}{{.}};{{end}}", &data), "busybox:local;bb:1;");
        assert_eq!(render("{{$t := .Os}}{{$t}}", &data), "linux");
        assert_eq!(render("{{if .Config.Cmd}}yes{{else}}no{{end}}", &data), "no");
        assert_eq!(render("{{- .Os -}} ", &data), "linux");
        assert_eq!(render(r#"{{println "}}" .Os}}"#, &data), "}} linux\n");
    }

    #[test]
    fn json_keeps_struct_order_and_sorts_maps() {
        let data = sample();
        assert_eq!(render("{{json .RootFS.Layers}}", &data), r#"["sha256:1","sha256:2"]"#);
        assert_eq!(
            render("{{json .Config}}", &data),
            r#"{"User":"","Env":["PATH=/bin","A=<b>"],"Cmd":null,"Labels":{"a":"2","z":"1"}}"#
        );
        assert_eq!(render("{{json .Config.Cmd}}", &data), "null");
        assert_eq!(render("{{json .Os}}", &data), r#""linux""#);
    }

    #[test]
    fn docker_string_functions() {
        let data = sample();
        assert_eq!(render(r#"{{join .RepoTags ","}}"#, &data), "busybox:local,bb:1");
        assert_eq!(render(r#"{{upper .Os}} {{title "hello world"}}"#, &data), "LINUX Hello World");
        assert_eq!(render(r#"{{index (split .Id ":") 1}}"#, &data), "abc");
        assert_eq!(render(r#"{{pad .Os 1 2}}|{{truncate .Id 6}}"#, &data), " linux  |sha256");
    }

    #[test]
    fn bad_templates_are_reported() {
        assert!(GoTemplate::parse("{{.Os").is_err());
        let t = GoTemplate::parse("{{.Nope}}").unwrap();
        assert!(t.render(&from_json(&sample())).is_err());
    }

    #[test]
    fn table_prefix() {
        assert_eq!(strip_table_prefix("table {{.ID}}"), Some("{{.ID}}"));
        assert_eq!(strip_table_prefix("table"), Some(""));
        assert_eq!(strip_table_prefix("{{.ID}}"), None);
        assert_eq!(strip_table_prefix("tablex"), None);
    }
}
