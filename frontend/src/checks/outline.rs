//! What `--call=outline` and `--call=targets` report, from the parsed file
//! and its lowered graph: the build args a target uses (with their defaults
//! and description comments), the secrets and SSH ids its RUN steps mount,
//! and the stages with their descriptions.

use std::collections::BTreeMap;

use super::descriptions::doc_comment;
use crate::graph::{Mount, Op, StepGraph};
use crate::parser::{Ast, Node};
use crate::shell::Lexer;
use crate::span::Span;

/// One build arg a target uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineArg {
    pub name: String,
    /// The default as written, from the stage's ARG or, failing that, the
    /// global ARG of the same name.
    pub default: Option<String>,
    pub description: Option<String>,
    /// The ARG that declares it.
    pub span: Span,
}

/// A secret or SSH id a RUN mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountUse {
    pub id: String,
    pub required: bool,
}

/// `--call=outline`: what a target takes from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// The target stage's name (`None` for an unnamed last stage).
    pub target: Option<String>,
    pub description: Option<String>,
    pub args: Vec<OutlineArg>,
    pub secrets: Vec<MountUse>,
    pub ssh: Vec<MountUse>,
}

/// One stage for `--call=targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The last stage: what a build without `--target` builds.
    pub default: bool,
    /// The image or stage after FROM, as written.
    pub base: String,
    pub platform: Option<String>,
    pub span: Span,
}

/// Every stage, in file order.
pub fn targets(ast: &Ast) -> Vec<Target> {
    let froms: Vec<&Node> = ast.nodes.iter().filter(|n| n.keyword == "from").collect();
    froms
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let name = stage_name(node);
            Target {
                description: name.as_deref().and_then(|n| doc_comment(&node.comments, n)),
                name,
                default: index + 1 == froms.len(),
                base: node.args.first().cloned().unwrap_or_default(),
                platform: platform_flag(node).map(str::to_string),
                span: node.span,
            }
        })
        .collect()
}

/// The outline of `graph`'s target. `graph` must be `ast` lowered: its
/// `needed` flags say which stages the target uses.
pub fn outline(ast: &Ast, graph: &StepGraph) -> Outline {
    let lexer = Lexer::new(ast.directives.escape);
    let mut globals: BTreeMap<String, OutlineArg> = BTreeMap::new();
    let mut args: Vec<OutlineArg> = Vec::new();
    let add = |arg: OutlineArg, args: &mut Vec<OutlineArg>| {
        if !args.iter().any(|a| a.name == arg.name) {
            args.push(arg);
        }
    };
    let mut stage: Option<usize> = None;
    for node in &ast.nodes {
        if node.keyword == "from" {
            let index = stage.map_or(0, |i| i + 1);
            stage = Some(index);
            if graph.stages.get(index).is_some_and(|s| s.needed) {
                // A global ARG the FROM line uses, and those its default
                // uses in turn.
                let mut pending = from_variables(node, &lexer);
                while let Some(name) = pending.pop() {
                    let Some(global) = globals.get(&name) else { continue };
                    if args.iter().any(|a| a.name == name) {
                        continue;
                    }
                    add(global.clone(), &mut args);
                    pending.extend(default_variables(global, &lexer));
                }
            }
            continue;
        }
        if node.keyword != "arg" {
            continue;
        }
        match stage {
            None => {
                for arg in declared_args(node) {
                    globals.insert(arg.name.clone(), arg);
                }
            }
            Some(index) if graph.stages.get(index).is_some_and(|s| s.needed) => {
                for mut arg in declared_args(node) {
                    if let Some(global) = globals.get(&arg.name) {
                        arg.default = arg.default.or_else(|| global.default.clone());
                        arg.description = arg.description.or_else(|| global.description.clone());
                    }
                    add(arg, &mut args);
                }
            }
            Some(_) => {}
        }
    }
    let (secrets, ssh) = mounted_ids(graph);
    let target = &graph.stages[graph.target];
    let from_node = ast.nodes.iter().filter(|n| n.keyword == "from").nth(graph.target);
    Outline {
        target: target.name.clone(),
        description: from_node
            .zip(target.name.as_deref())
            .and_then(|(node, name)| doc_comment(&node.comments, name)),
        args,
        secrets,
        ssh,
    }
}

/// The ARGs one node declares, with defaults and descriptions.
fn declared_args(node: &Node) -> Vec<OutlineArg> {
    node.args
        .iter()
        .zip(&node.arg_spans)
        .map(|(word, _)| {
            let (name, default) = match word.split_once('=') {
                Some((name, default)) => (name.to_string(), Some(default.to_string())),
                None => (word.clone(), None),
            };
            OutlineArg { description: doc_comment(&node.comments, &name), name, default, span: node.span }
        })
        .collect()
}

/// The variables an ARG's default uses.
fn default_variables(arg: &OutlineArg, lexer: &Lexer) -> Vec<String> {
    let empty: Vec<(String, String)> = Vec::new();
    arg.default
        .as_deref()
        .and_then(|d| lexer.process_word(d, &empty).ok())
        .map(|e| e.matched.into_iter().chain(e.unmatched).collect())
        .unwrap_or_default()
}

/// The variables a FROM line's image and `--platform` use.
fn from_variables(node: &Node, lexer: &Lexer) -> Vec<String> {
    let empty: Vec<(String, String)> = Vec::new();
    let words = node.args.first().map(String::as_str).into_iter().chain(platform_flag(node));
    words
        .filter_map(|word| lexer.process_word(word, &empty).ok())
        .flat_map(|e| e.matched.into_iter().chain(e.unmatched))
        .collect()
}

fn platform_flag(node: &Node) -> Option<&str> {
    node.flags.iter().find_map(|f| f.strip_prefix("--platform="))
}

fn stage_name(node: &Node) -> Option<String> {
    match node.args.as_slice() {
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
        _ => None,
    }
}

/// The secret and SSH ids the needed stages' RUN steps mount, each once.
fn mounted_ids(graph: &StepGraph) -> (Vec<MountUse>, Vec<MountUse>) {
    let (mut secrets, mut ssh): (Vec<MountUse>, Vec<MountUse>) = (Vec::new(), Vec::new());
    let note = |list: &mut Vec<MountUse>, id: &str, required: bool| match list.iter_mut().find(|m| m.id == id)
    {
        Some(known) => known.required |= required,
        None => list.push(MountUse { id: id.to_string(), required }),
    };
    let runs =
        graph.stages.iter().filter(|s| s.needed).flat_map(|s| &s.steps).filter_map(|step| match &step.op {
            Op::Run(run) => Some(run),
            _ => None,
        });
    for run in runs {
        for mount in &run.mounts {
            match mount {
                Mount::Secret { id, required, .. } => note(&mut secrets, id, *required),
                Mount::Ssh { id, required, .. } => note(&mut ssh, id, *required),
                _ => {}
            }
        }
    }
    (secrets, ssh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ImageMeta;
    use crate::lower::{BaseResolver, LowerOptions, ResolveError, lower};
    use crate::parser::parse;

    struct AnyImage;

    impl BaseResolver for AnyImage {
        fn resolve(&mut self, _: &str, _: &crate::lower::Platform) -> Result<ImageMeta, ResolveError> {
            Ok(ImageMeta::default())
        }
    }

    const SRC: &str = "ARG SUFFIX=\n# BASE the image to build on\nARG BASE=img$SUFFIX\nARG UNUSED=1\n\n# build compiles it\nFROM $BASE AS build\n# MODE how to compile\nARG MODE=release\nARG BASE\nRUN --mount=type=secret,id=npm --mount=type=secret,id=npm,required=true --mount=type=ssh,id=git true\n\nFROM img AS lint\nARG STRICT\nRUN --mount=type=secret,id=other true\n\n# release ships it\nFROM build AS release\n";

    fn outline_of(target: &str) -> Outline {
        let ast = parse(SRC).unwrap();
        let opts = LowerOptions { target: Some(target.into()), ..LowerOptions::default() };
        outline(&ast, &lower(&ast, &opts, &mut AnyImage).unwrap())
    }

    #[test]
    fn outline_lists_what_the_target_needs_only() {
        let found = outline_of("release");
        assert_eq!(
            (found.target.as_deref(), found.description.as_deref()),
            (Some("release"), Some("ships it"))
        );
        let args: Vec<(&str, Option<&str>, Option<&str>)> = found
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.default.as_deref(), a.description.as_deref()))
            .collect();
        assert_eq!(
            args,
            [
                ("BASE", Some("img$SUFFIX"), Some("the image to build on")),
                ("SUFFIX", Some(""), None),
                ("MODE", Some("release"), Some("how to compile"))
            ],
            "SUFFIX through BASE's default; UNUSED and the lint stage's STRICT are not the target's"
        );
        assert_eq!(found.secrets, [MountUse { id: "npm".into(), required: true }]);
        assert_eq!(found.ssh, [MountUse { id: "git".into(), required: false }]);
        let lint = outline_of("lint");
        assert_eq!(lint.args.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["STRICT"]);
        assert_eq!(lint.secrets, [MountUse { id: "other".into(), required: false }]);
        assert_eq!(lint.description, None);
    }

    #[test]
    fn targets_are_every_stage_with_its_description() {
        let found = targets(&parse(SRC).unwrap());
        let rows: Vec<(Option<&str>, Option<&str>, bool)> =
            found.iter().map(|t| (t.name.as_deref(), t.description.as_deref(), t.default)).collect();
        assert_eq!(
            rows,
            [
                (Some("build"), Some("compiles it"), false),
                (Some("lint"), None, false),
                (Some("release"), Some("ships it"), true)
            ]
        );
        assert_eq!((found[0].base.as_str(), found[0].span.start.line), ("$BASE", 7));
    }
}
