//! Typed instructions: each parser [`Node`] checked for its argument count,
//! its flags and its form, with spans kept for later errors. Nothing is
//! expanded here; variables depend on the stage state that `lower` tracks.

use crate::error::{FrontendError, suggest};
use crate::flags::{FlagKind, FlagSpec, Flags, flag};
use crate::parser::{Heredoc, Node};
use crate::span::Span;

/// A word as written, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// Exec form (`["a", "b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    pub sources: Vec<Word>,
    pub dest: Word,
    pub from: Option<Word>,
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<Word>,
    /// ADD `--unpack[=bool]`: None when not given.
    pub unpack: Option<bool>,
    /// ADD `--keep-git-dir[=bool]`.
    pub keep_git_dir: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthArgs {
    /// None for `HEALTHCHECK NONE`.
    pub command: Option<Command>,
    pub interval: Option<Word>,
    pub timeout: Option<Word>,
    pub start_period: Option<Word>,
    pub start_interval: Option<Word>,
    pub retries: Option<Word>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: Word,
        name: Option<Word>,
        platform: Option<Word>,
    },
    Run {
        command: Command,
        mounts: Vec<Word>,
        network: Option<Word>,
        security: Option<Word>,
        heredocs: Vec<Heredoc>,
    },
    Copy(CopyArgs),
    Add(CopyArgs),
    Env(Vec<(Word, Word)>),
    Label(Vec<(Word, Word)>),
    Arg(Vec<(Word, Option<Word>)>),
    Expose(Vec<Word>),
    Workdir(Word),
    User(Word),
    Volume(Vec<Word>),
    StopSignal(Word),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Healthcheck(HealthArgs),
    Onbuild(Box<Instruction>),
    Maintainer(Word),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub kind: Kind,
    /// The whole instruction.
    pub span: Span,
    /// The keyword in upper case, as shown to users.
    pub keyword: String,
    /// The instruction text as written (continuations joined).
    pub original: String,
}

impl Instruction {
    /// The heredocs the instruction introduced (RUN, COPY and ADD only).
    pub fn heredocs(&self) -> &[Heredoc] {
        match &self.kind {
            Kind::Run { heredocs, .. } => heredocs,
            Kind::Copy(c) | Kind::Add(c) => &c.heredocs,
            _ => &[],
        }
    }
}

/// Every keyword rbuild knows, for suggestions.
pub const KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

const COPY_FLAGS: &[FlagSpec] = &[
    flag("from", FlagKind::Value),
    flag("chown", FlagKind::Value),
    flag("chmod", FlagKind::Value),
    flag("link", FlagKind::Bool),
    flag("parents", FlagKind::Bool),
    flag("exclude", FlagKind::List),
];

const ADD_FLAGS: &[FlagSpec] = &[
    flag("chown", FlagKind::Value),
    flag("chmod", FlagKind::Value),
    flag("link", FlagKind::Bool),
    flag("checksum", FlagKind::Value),
    flag("keep-git-dir", FlagKind::Bool),
    flag("unpack", FlagKind::Bool),
    flag("exclude", FlagKind::List),
];

const RUN_FLAGS: &[FlagSpec] =
    &[flag("mount", FlagKind::List), flag("network", FlagKind::Value), flag("security", FlagKind::Value)];

const HEALTH_FLAGS: &[FlagSpec] = &[
    flag("interval", FlagKind::Value),
    flag("timeout", FlagKind::Value),
    flag("start-period", FlagKind::Value),
    flag("start-interval", FlagKind::Value),
    flag("retries", FlagKind::Value),
];

fn words(node: &Node) -> Vec<Word> {
    node.args
        .iter()
        .enumerate()
        .map(|(i, a)| Word { text: a.clone(), span: node.arg_spans.get(i).copied().unwrap_or(node.span) })
        .collect()
}

fn word_of(node: &Node, i: usize) -> Word {
    Word { text: node.args[i].clone(), span: node.arg_spans.get(i).copied().unwrap_or(node.span) }
}

fn rest_span(node: &Node) -> Span {
    match (node.arg_spans.first(), node.arg_spans.last()) {
        (Some(a), Some(b)) => Span::new(a.start, b.end),
        _ => node.span,
    }
}

fn err(node: &Node, message: impl Into<String>) -> FrontendError {
    FrontendError::new(message, node.span)
}

fn command(node: &Node) -> Command {
    if node.json { Command::Exec(node.args.clone()) } else { Command::Shell(node.args.join(" ")) }
}

fn value_flag(flags: &Flags, name: &str, node: &Node) -> Option<Word> {
    flags.value(name).map(|v| Word { text: v.to_string(), span: flags.span(name).unwrap_or(node.span) })
}

/// Converts one parsed node into a typed instruction.
pub fn from_node(node: &Node) -> Result<Instruction, FrontendError> {
    let keyword = node.keyword.to_uppercase();
    let kind = match node.keyword.as_str() {
        "from" => from_kind(node)?,
        "run" => run_kind(node)?,
        "copy" | "add" => copy_kind(node, &keyword)?,
        "env" | "label" => pairs_kind(node, &keyword)?,
        "arg" => arg_kind(node)?,
        "expose" => {
            no_flags(node)?;
            Kind::Expose(at_least_one(node, "EXPOSE requires at least one port")?)
        }
        "workdir" | "user" | "stopsignal" | "maintainer" => one_argument_kind(node, &keyword)?,
        "volume" => {
            no_flags(node)?;
            Kind::Volume(at_least_one(node, "VOLUME requires at least one path")?)
        }
        "cmd" => {
            no_flags(node)?;
            Kind::Cmd(command(node))
        }
        "entrypoint" => {
            no_flags(node)?;
            Kind::Entrypoint(command(node))
        }
        "shell" => shell_kind(node)?,
        "healthcheck" => healthcheck(node)?,
        "onbuild" => onbuild_kind(node)?,
        other => return Err(unknown_instruction(node, other)),
    };
    Ok(Instruction { kind, span: node.span, keyword, original: node.original.clone() })
}

fn no_flags(node: &Node) -> Result<Flags, FrontendError> {
    Flags::parse(node, &[])
}

/// The arguments as words; none is the error `message`.
fn at_least_one(node: &Node, message: &str) -> Result<Vec<Word>, FrontendError> {
    if node.args.is_empty() {
        return Err(err(node, message));
    }
    Ok(words(node))
}

/// `FROM [--platform=…] <image> [AS <name>]`.
fn from_kind(node: &Node) -> Result<Kind, FrontendError> {
    let flags = Flags::parse(node, &[flag("platform", FlagKind::Value)])?;
    let platform = value_flag(&flags, "platform", node);
    let w = words(node);
    match w.len() {
        1 => Ok(Kind::From { image: w[0].clone(), name: None, platform }),
        3 if w[1].text.eq_ignore_ascii_case("as") => {
            validate_stage_name(&w[2])?;
            Ok(Kind::From { image: w[0].clone(), name: Some(w[2].clone()), platform })
        }
        0 => Err(err(node, "FROM requires an image").with_hint("write FROM <image> [AS <name>]")),
        _ => Err(FrontendError::new("FROM takes an image and optionally AS <name>", rest_span(node))
            .with_hint("write FROM <image> [AS <name>]")),
    }
}

fn run_kind(node: &Node) -> Result<Kind, FrontendError> {
    let flags = Flags::parse(node, RUN_FLAGS)?;
    if node.args.is_empty() && node.heredocs.is_empty() {
        return Err(err(node, "RUN requires a command"));
    }
    // A mount written where no span was recorded is reported at the instruction.
    let mounts = flags
        .list_with_spans("mount")
        .into_iter()
        .map(|(text, span)| Word { text, span: if span == Span::default() { node.span } else { span } })
        .collect();
    Ok(Kind::Run {
        command: command(node),
        mounts,
        network: value_flag(&flags, "network", node),
        security: value_flag(&flags, "security", node),
        heredocs: node.heredocs.clone(),
    })
}

/// COPY and ADD: sources (heredoc markers left out: their bodies are in
/// `heredocs`), the destination last, and the flags each one takes.
fn copy_kind(node: &Node, keyword: &str) -> Result<Kind, FrontendError> {
    let is_add = node.keyword == "add";
    let flags = Flags::parse(node, if is_add { ADD_FLAGS } else { COPY_FLAGS })?;
    let mut sources = words(node);
    let needed = if node.heredocs.is_empty() { 2 } else { 1 };
    if sources.len() < needed {
        return Err(err(node, format!("{keyword} requires at least one source and a destination"))
            .with_hint(format!("write {keyword} <src>... <dest>")));
    }
    let dest = sources.pop().expect("checked length");
    let heredoc_names: Vec<String> = node.heredocs.iter().map(|h| h.name.clone()).collect();
    sources.retain(|s| !is_heredoc_marker(&s.text, &heredoc_names));
    let from = value_flag(&flags, "from", node);
    if let Some(f) = &from
        && f.text.contains('$')
    {
        // BuildKit refuses this too: stage dependencies must be known
        // before any variable is expanded.
        return Err(FrontendError::new("variable expansion is not supported for --from", f.span).with_hint(
            "define a stage with FROM ${VAR} AS name (using an ARG from before the first FROM) and copy --from=name",
        ));
    }
    let args = CopyArgs {
        sources,
        dest,
        from,
        chown: value_flag(&flags, "chown", node),
        chmod: value_flag(&flags, "chmod", node),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.list("exclude").to_vec(),
        checksum: value_flag(&flags, "checksum", node),
        unpack: flags.given("unpack").then(|| flags.bool("unpack")),
        keep_git_dir: flags.bool("keep-git-dir"),
        heredocs: node.heredocs.clone(),
    };
    Ok(if is_add { Kind::Add(args) } else { Kind::Copy(args) })
}

/// ENV and LABEL: the parser gives `key`, `value`, separator triples.
fn pairs_kind(node: &Node, keyword: &str) -> Result<Kind, FrontendError> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(err(node, format!("{keyword} requires at least one key=value pair")));
    }
    let w = words(node);
    let pairs: Vec<(Word, Word)> =
        w.chunks(3).filter(|c| c.len() >= 2).map(|c| (c[0].clone(), c[1].clone())).collect();
    Ok(if node.keyword == "env" { Kind::Env(pairs) } else { Kind::Label(pairs) })
}

/// `ARG name[=default] …`; the default keeps the word's span.
fn arg_kind(node: &Node) -> Result<Kind, FrontendError> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(err(node, "ARG requires a name").with_hint("write ARG <name>[=<default>]"));
    }
    let mut out = Vec::new();
    for w in words(node) {
        let (name, default) = match w.text.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(Word { text: v.to_string(), span: w.span })),
            None => (w.text.clone(), None),
        };
        if name.is_empty() {
            return Err(FrontendError::new("ARG name is empty", w.span));
        }
        out.push((Word { text: name, span: w.span }, default));
    }
    Ok(Kind::Arg(out))
}

/// WORKDIR, USER, STOPSIGNAL, MAINTAINER: the rest of the line is one word.
fn one_argument_kind(node: &Node, keyword: &str) -> Result<Kind, FrontendError> {
    no_flags(node)?;
    if node.args.is_empty() || node.args.iter().all(|a| a.trim().is_empty()) {
        return Err(err(node, format!("{keyword} requires exactly one argument")));
    }
    let w = Word { text: node.args.join(" "), span: rest_span(node) };
    Ok(match node.keyword.as_str() {
        "workdir" => Kind::Workdir(w),
        "user" => Kind::User(w),
        "stopsignal" => Kind::StopSignal(w),
        _ => Kind::Maintainer(w),
    })
}

fn shell_kind(node: &Node) -> Result<Kind, FrontendError> {
    no_flags(node)?;
    if !node.json || node.args.is_empty() {
        return Err(err(node, "SHELL requires the arguments to be in JSON form")
            .with_hint(r#"write SHELL ["/bin/bash", "-c"]"#));
    }
    Ok(Kind::Shell(node.args.clone()))
}

/// ONBUILD and its trigger, which may be neither ONBUILD, FROM nor MAINTAINER.
fn onbuild_kind(node: &Node) -> Result<Kind, FrontendError> {
    no_flags(node)?;
    let Some(inner) = &node.next else {
        return Err(err(node, "ONBUILD requires an instruction"));
    };
    match inner.keyword.as_str() {
        "onbuild" => return Err(err(node, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")),
        "from" | "maintainer" => {
            return Err(err(
                node,
                format!("{} isn't allowed as an ONBUILD trigger", inner.keyword.to_uppercase()),
            ));
        }
        _ => {}
    }
    Ok(Kind::Onbuild(Box::new(from_node(inner)?)))
}

fn unknown_instruction(node: &Node, keyword: &str) -> FrontendError {
    let e = FrontendError::new(format!("unknown instruction: {}", keyword.to_uppercase()), node.keyword_span);
    match suggest(keyword, KEYWORDS.iter().copied()) {
        Some(near) => e.with_hint(format!("did you mean {}?", near.to_uppercase())),
        None => e,
    }
}

fn is_heredoc_marker(word: &str, names: &[String]) -> bool {
    let Some(pos) = word.find("<<") else { return false };
    if !word[..pos].chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let name = word[pos + 2..].trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'');
    names.iter().any(|n| n == name)
}

fn validate_stage_name(w: &Word) -> Result<(), FrontendError> {
    let ok = w.text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && w.text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(FrontendError::new(format!("invalid stage name {:?}", w.text), w.span)
            .with_hint("stage names start with a letter and contain only letters, digits, '-', '_' and '.'"))
    }
}

fn healthcheck(node: &Node) -> Result<Kind, FrontendError> {
    let flags = Flags::parse(node, HEALTH_FLAGS)?;
    let Some(first) = node.args.first() else {
        return Err(err(node, "HEALTHCHECK requires CMD or NONE"));
    };
    let command = match first.to_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 {
                return Err(err(node, "HEALTHCHECK NONE takes no other arguments"));
            }
            if !node.flags.is_empty() {
                return Err(err(node, "HEALTHCHECK NONE takes no flags"));
            }
            None
        }
        "CMD" => {
            let rest = &node.args[1..];
            if rest.is_empty() {
                return Err(err(node, "HEALTHCHECK CMD requires a command"));
            }
            Some(if node.json { Command::Exec(rest.to_vec()) } else { Command::Shell(rest.join(" ")) })
        }
        other => {
            return Err(FrontendError::new(
                format!("unknown type {other:?} in HEALTHCHECK"),
                word_of(node, 0).span,
            )
            .with_hint("write HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE"));
        }
    };
    Ok(Kind::Healthcheck(HealthArgs {
        command,
        interval: value_flag(&flags, "interval", node),
        timeout: value_flag(&flags, "timeout", node),
        start_period: value_flag(&flags, "start-period", node),
        start_interval: value_flag(&flags, "start-interval", node),
        retries: value_flag(&flags, "retries", node),
    }))
}
