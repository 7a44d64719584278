//! From parsed nodes to stage sources: each node becomes a typed
//! instruction, in order; ARGs before the first FROM go into the global
//! scope, and each FROM starts a stage that collects the instructions up to
//! the next one.

use std::collections::{BTreeMap, BTreeSet};

use super::build_args::declare_globals;
use super::options::{LowerOptions, NamedContext};
use super::platform::platform_args;
use crate::error::FrontendError;
use crate::instructions::{self, Instruction, Kind};
use crate::parser::Ast;
use crate::shell::Lexer;
use crate::vars::Vars;

/// One stage as written: its FROM and the instructions after it.
pub(super) struct StageSource {
    pub(super) from: Instruction,
    pub(super) body: Vec<Instruction>,
}

/// The global scope and the stages of a Dockerfile.
pub(super) struct Sources {
    /// Platform args and the ARGs before the first FROM, with their values.
    pub(super) globals: Vars,
    /// At least one.
    pub(super) stages: Vec<StageSource>,
}

/// Splits a Dockerfile into its global scope and its stages. Nodes are
/// converted and global ARGs evaluated in one pass, so the first error in
/// the file is the one reported.
pub(super) fn read_sources(
    ast: &Ast,
    opts: &LowerOptions,
    lexer: &Lexer,
    used_build_args: &mut BTreeSet<String>,
) -> Result<Sources, FrontendError> {
    // The platform args and TARGETSTAGE are in the global scope without
    // being declared.
    let mut globals = Vars::from(platform_args(&opts.build_platform, &opts.platform));
    globals.set("TARGETSTAGE", &target_stage_name(ast, opts));
    let mut stages: Vec<StageSource> = Vec::new();
    for node in &ast.nodes {
        let instr = instructions::from_node(node)?;
        match (&instr.kind, stages.last_mut()) {
            (Kind::From { .. }, _) => stages.push(StageSource { from: instr, body: Vec::new() }),
            (_, Some(stage)) => stage.body.push(instr),
            (Kind::Arg(decls), None) => {
                declare_globals(decls, &opts.build_args, lexer, &mut globals, used_build_args)?
            }
            (_, None) => return Err(before_first_from(&instr)),
        }
    }
    if stages.is_empty() {
        return Err(FrontendError::new("the Dockerfile has no FROM instruction", ast.span)
            .with_hint("start the build stage with FROM <image>"));
    }
    Ok(Sources { globals, stages })
}

/// The predefined `TARGETSTAGE`: the `--target` as given, else the name of
/// the last stage, else `default` (BuildKit's rule). Read from the FROM
/// nodes before anything is lowered, since global ARGs may use it.
fn target_stage_name(ast: &Ast, opts: &LowerOptions) -> String {
    if let Some(target) = &opts.target {
        return target.clone();
    }
    let last_from = ast.nodes.iter().rev().find(|n| n.keyword == "from");
    match last_from.map(|n| n.args.as_slice()) {
        Some([_, as_word, name]) if as_word.eq_ignore_ascii_case("as") => name.to_ascii_lowercase(),
        _ => "default".to_string(),
    }
}

fn before_first_from(instr: &Instruction) -> FrontendError {
    FrontendError::new(format!("{} before the first FROM", instr.keyword), instr.span)
        .with_hint("only ARG may come before the first FROM; start each stage with FROM <image>")
}

/// Stages whose name has a `--build-context` are replaced by it, as in
/// BuildKit: their FROM reads the context and their instructions are
/// dropped.
pub(super) fn replace_named_stages(stages: &mut [StageSource], contexts: &BTreeMap<String, NamedContext>) {
    for stage in stages {
        let Kind::From { image, name: Some(name), .. } = &mut stage.from.kind else { continue };
        let replacement = match contexts.get(&name.text.to_ascii_lowercase()) {
            Some(NamedContext::Image(reference)) => reference,
            Some(NamedContext::Stage(other)) if !other.eq_ignore_ascii_case(&name.text) => other,
            _ => continue,
        };
        image.text = replacement.clone();
        stage.body.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::testing::linux_amd64;
    use crate::parser::parse;
    use crate::shell::Env;
    use crate::span::Pos;

    fn read(src: &str, build_args: &[(&str, &str)]) -> (Result<Sources, FrontendError>, BTreeSet<String>) {
        let opts = LowerOptions {
            build_args: build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            target: None,
            platform: linux_amd64(),
            build_platform: linux_amd64(),
            allow_insecure: false,
            allow_network_host: false,
            default_network: crate::graph::Network::Default,
            named_contexts: Default::default(),
        };
        let mut used = BTreeSet::new();
        let sources = read_sources(&parse(src).unwrap(), &opts, &Lexer::new('\\'), &mut used);
        (sources, used)
    }

    #[test]
    fn args_before_the_first_from_make_the_global_scope() {
        let (sources, used) = read("ARG A=1 B=$A-x\nARG C\nARG TARGETOS\nARG D=$TARGETARCH\nFROM img\n", &[]);
        let globals = sources.unwrap().globals;
        assert_eq!(globals.lookup("A"), Some("1"));
        assert_eq!(globals.lookup("B"), Some("1-x"), "a default sees the ARGs before it");
        assert_eq!(globals.lookup("C"), Some(""), "a global ARG without a value is set, and empty");
        assert_eq!(globals.lookup("TARGETOS"), Some("linux"), "declaring a platform arg keeps its value");
        assert_eq!(globals.lookup("D"), Some("amd64"));
        assert_eq!(globals.lookup("BUILDPLATFORM"), Some("linux/amd64"), "platform args need no ARG");
        assert!(used.is_empty());
    }

    #[test]
    fn targetstage_names_the_target_or_the_last_stage() {
        let stage = |src: &str, target: Option<&str>| {
            let opts = LowerOptions {
                build_args: Default::default(),
                target: target.map(str::to_string),
                platform: linux_amd64(),
                build_platform: linux_amd64(),
                ..LowerOptions::default()
            };
            let sources = read_sources(&parse(src).unwrap(), &opts, &Lexer::new('\\'), &mut BTreeSet::new());
            sources.unwrap().globals.lookup("TARGETSTAGE").map(str::to_string)
        };
        let two = "ARG TARGETSTAGE\nFROM a AS base\nFROM b AS Final\n";
        assert_eq!(stage(two, None).as_deref(), Some("final"), "the last stage, named in lower case");
        assert_eq!(stage(two, Some("base")).as_deref(), Some("base"));
        assert_eq!(
            stage("FROM a AS base\nFROM b\n", None).as_deref(),
            Some("default"),
            "an unnamed last stage"
        );
    }

    #[test]
    fn build_args_override_global_defaults_and_count_as_used() {
        let (sources, used) = read("ARG A=1 B=$A\nFROM img\n", &[("A", "9"), ("OTHER", "x")]);
        let globals = sources.unwrap().globals;
        assert_eq!((globals.lookup("A"), globals.lookup("B")), (Some("9"), Some("9")));
        assert_eq!(globals.lookup("OTHER"), None, "an undeclared build arg is not in scope");
        assert_eq!(used, BTreeSet::from(["A".to_string()]));
    }

    #[test]
    fn each_from_starts_a_stage_with_the_instructions_after_it() {
        let stages = read("ARG V\nFROM a\nRUN one\nFROM b\nRUN two\nENV x=y\n", &[]).0.unwrap().stages;
        let bodies: Vec<Vec<&str>> =
            stages.iter().map(|s| s.body.iter().map(|i| i.original.as_str()).collect()).collect();
        assert_eq!(bodies, [vec!["RUN one"], vec!["RUN two", "ENV x=y"]]);
        assert_eq!(stages[1].from.original, "FROM b");
    }

    #[test]
    fn only_arg_may_come_before_the_first_from() {
        let e = read("ARG V\nRUN make\nFROM img\n", &[]).0.err().unwrap();
        assert_eq!(e.message, "RUN before the first FROM");
        assert_eq!(e.span.start, Pos::new(2, 1));
        assert_eq!(
            e.hint.as_deref(),
            Some("only ARG may come before the first FROM; start each stage with FROM <image>")
        );
    }

    #[test]
    fn a_dockerfile_needs_a_from() {
        let e = read("ARG V=1\n", &[]).0.err().unwrap();
        assert_eq!(e.message, "the Dockerfile has no FROM instruction");
        assert_eq!(e.hint.as_deref(), Some("start the build stage with FROM <image>"));
    }

    #[test]
    fn the_first_error_in_the_file_wins() {
        let e = read("ARG A=${B:?unset}\nBOGUS x\nFROM img\n", &[]).0.err().unwrap();
        assert_eq!(
            e.span.start.line, 1,
            "the global ARG fails before the unknown instruction: {}",
            e.message
        );
        assert!(e.message.starts_with("cannot expand \"${B:?unset}\""), "{}", e.message);
    }
}
