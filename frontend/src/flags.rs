//! Instruction flags (`COPY --from=build --chown=app`): each instruction
//! declares the flags it takes; anything else is an error that suggests the
//! nearest valid flag, never silently ignored.

use std::collections::BTreeMap;

use crate::error::{FrontendError, suggest};
use crate::parser::Node;
use crate::span::{Pos, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, given at most once.
    Value,
    /// `--mount=…`, may repeat.
    List,
}

#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    pub name: &'static str,
    pub kind: FlagKind,
}

pub const fn flag(name: &'static str, kind: FlagKind) -> FlagSpec {
    FlagSpec { name, kind }
}

/// The flags given to one instruction, checked against its specs.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
    spans: BTreeMap<&'static str, Span>,
    /// Where each value of a repeatable flag was written, in order.
    list_spans: BTreeMap<&'static str, Vec<Span>>,
}

impl Flags {
    pub fn parse(node: &Node, allowed: &[FlagSpec]) -> Result<Flags, FrontendError> {
        let mut out = Flags::default();
        for (index, raw) in node.flags.iter().enumerate() {
            let body = raw.strip_prefix("--").unwrap_or(raw);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            // The parser records where each flag was written; fall back to a
            // search of the first line only for nodes built without spans.
            let span = node.flag_spans.get(index).copied().unwrap_or_else(|| locate(node, raw));
            let Some(spec) = allowed.iter().find(|s| s.name == name) else {
                let keyword = node.keyword.to_uppercase();
                let mut err = FrontendError::new(format!("unknown flag --{name} for {keyword}"), span);
                err = match suggest(name, allowed.iter().map(|s| s.name)) {
                    Some(near) => err.with_hint(format!("did you mean --{near}?")),
                    None if allowed.is_empty() => err.with_hint(format!("{keyword} takes no flags")),
                    None => err.with_hint(format!(
                        "{keyword} takes {}",
                        allowed.iter().map(|s| format!("--{}", s.name)).collect::<Vec<_>>().join(", ")
                    )),
                };
                return Err(err);
            };
            let value = match (spec.kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" => v.to_ascii_lowercase(),
                    _ => {
                        return Err(FrontendError::new(
                            format!("--{name} expects true or false, got {v:?}"),
                            span,
                        ));
                    }
                },
                (_, None) => {
                    return Err(FrontendError::new(format!("--{name} needs a value"), span)
                        .with_hint(format!("write --{name}=<value>")));
                }
                (_, Some(v)) => v.to_string(),
            };
            let slot = out.values.entry(spec.name).or_default();
            if spec.kind != FlagKind::List && !slot.is_empty() {
                return Err(FrontendError::new(format!("--{name} is given more than once"), span));
            }
            slot.push(value);
            out.spans.entry(spec.name).or_insert(span);
            out.list_spans.entry(spec.name).or_default().push(span);
        }
        Ok(out)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn list(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn bool(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }

    pub fn span(&self, name: &str) -> Option<Span> {
        self.spans.get(name).copied()
    }

    /// Every value of a repeatable flag with where it was written.
    pub fn list_with_spans(&self, name: &str) -> Vec<(String, Span)> {
        let spans = self.list_spans.get(name);
        self.list(name)
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), spans.and_then(|s| s.get(i)).copied().unwrap_or_default()))
            .collect()
    }

    /// True when the flag was given at all (`--unpack=false` included).
    pub fn given(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Best-effort span of `needle` in the instruction's first line.
pub fn locate(node: &Node, needle: &str) -> Span {
    let first_line = node.original.split('\n').next().unwrap_or("");
    match first_line.find(needle) {
        Some(offset) => {
            let col = node.span.start.col + first_line[..offset].chars().count();
            Span::new(
                Pos::new(node.span.start.line, col),
                Pos::new(node.span.start.line, col + needle.chars().count()),
            )
        }
        None => node.keyword_span,
    }
}
