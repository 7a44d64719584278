//! Stage resolution, before any stage is lowered: what each FROM names
//! (scratch, an earlier stage or an image, expanded with the global args
//! only), stage names, the stages each one reads, the target stage, and
//! which stages the target needs.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::expand;
use super::options::NamedContext;
use super::platform::Platform;
use super::references::{Source, referenced_sources, resolve_source};
use super::sources::StageSource;
use crate::error::FrontendError;
use crate::graph::{Base, ImageMeta, Stage};
use crate::instructions::{Kind, Word};
use crate::shell::Lexer;
use crate::span::Span;
use crate::vars::Vars;

/// The stages of a Dockerfile, none needed yet and none lowered, and their
/// names (lower case) to indexes.
pub(super) struct Plan {
    pub(super) stages: Vec<Stage>,
    pub(super) names: BTreeMap<String, usize>,
}

/// Resolves every stage's FROM and dependencies, in order: a stage may only
/// name stages above it.
pub(super) fn plan_stages(
    sources: &[StageSource],
    lexer: &Lexer,
    globals: &Vars,
    platform: &Platform,
    contexts: &BTreeMap<String, NamedContext>,
) -> Result<Plan, FrontendError> {
    let mut plan = Plan { stages: Vec::new(), names: BTreeMap::new() };
    for (index, src) in sources.iter().enumerate() {
        let stage = plan_stage(index, src, lexer, globals, platform, contexts, &mut plan)?;
        plan.stages.push(stage);
    }
    Ok(plan)
}

/// One stage's header: its base, its name (added to the plan's names) and
/// the earlier stages it reads.
fn plan_stage(
    index: usize,
    src: &StageSource,
    lexer: &Lexer,
    globals: &Vars,
    target: &Platform,
    contexts: &BTreeMap<String, NamedContext>,
    plan: &mut Plan,
) -> Result<Stage, FrontendError> {
    let (earlier, names) = (&plan.stages, &mut plan.names);
    let Kind::From { image, name, platform: wanted } = &src.from.kind else {
        unreachable!("stages start with FROM")
    };
    let image_ref = expand(lexer, image, globals)?;
    if image_ref.is_empty() {
        return Err(FrontendError::new("FROM names an empty image", image.span)
            .with_hint("check the build args used in the image name"));
    }
    // Resolved before this stage's own name is known: `FROM x AS x` names an image.
    let base = base_of(&image_ref, names, contexts, index, image.span)?;
    let platform = match (wanted, &base) {
        (Some(p), _) => stage_platform(p, lexer, globals)?,
        (None, Base::Stage(i)) => earlier[*i].platform.clone(),
        (None, _) => target.clone(),
    };
    let stage_name = name.as_ref().map(|n| n.text.to_ascii_lowercase());
    if let Some(n) = &stage_name {
        add_name(n, name.as_ref().map_or(src.from.span, |w| w.span), index, names)?;
    }
    let deps = stage_deps(&base, src, names, contexts, index)?;
    let from_text = match &stage_name {
        Some(n) => format!("FROM {image_ref} AS {n}"),
        None => format!("FROM {image_ref}"),
    };
    Ok(Stage {
        index,
        label: stage_name.clone().unwrap_or_else(|| format!("stage-{index}")),
        name: stage_name,
        base,
        span: src.from.span,
        needed: false,
        deps,
        steps: Vec::new(),
        meta: ImageMeta::default(),
        from_text,
        platform,
    })
}

/// The platform `FROM --platform=…` names, expanded with the global args
/// (`$BUILDPLATFORM`, `$TARGETPLATFORM`, …) and normalised.
fn stage_platform(wanted: &Word, lexer: &Lexer, globals: &Vars) -> Result<Platform, FrontendError> {
    let want = expand(lexer, wanted, globals)?;
    Platform::parse(&want).map_err(|e| {
        FrontendError::new(e.to_string(), wanted.span).with_hint(
            "name a platform as os/arch[/variant] (linux/amd64, linux/arm64, linux/arm/v7) or use $BUILDPLATFORM or $TARGETPLATFORM",
        )
    })
}

/// `scratch` (in any case), an earlier stage by name, a named context, or
/// an image.
fn base_of(
    image_ref: &str,
    names: &BTreeMap<String, usize>,
    contexts: &BTreeMap<String, NamedContext>,
    index: usize,
    span: Span,
) -> Result<Base, FrontendError> {
    if image_ref.eq_ignore_ascii_case("scratch") {
        return Ok(Base::Scratch);
    }
    if let Some(&i) = names.get(&image_ref.to_ascii_lowercase()) {
        return Ok(Base::Stage(i));
    }
    // Only a name: a stage index is no base.
    if !contexts.contains_key(&image_ref.to_ascii_lowercase()) {
        return Ok(Base::Image(image_ref.to_string()));
    }
    Ok(match resolve_source(image_ref, names, contexts, index, span)? {
        Source::Stage(i) => Base::Stage(i),
        Source::Image(reference) => Base::Image(reference),
    })
}

fn add_name(
    name: &str,
    span: Span,
    index: usize,
    names: &mut BTreeMap<String, usize>,
) -> Result<(), FrontendError> {
    if names.contains_key(name) {
        return Err(FrontendError::new(format!("duplicate stage name {name:?}"), span)
            .with_hint("give each stage a different name"));
    }
    names.insert(name.to_string(), index);
    Ok(())
}

/// The earlier stages a stage reads: its base stage and every stage its
/// `COPY --from` and mounts name.
fn stage_deps(
    base: &Base,
    src: &StageSource,
    names: &BTreeMap<String, usize>,
    contexts: &BTreeMap<String, NamedContext>,
    index: usize,
) -> Result<BTreeSet<usize>, FrontendError> {
    let mut deps = BTreeSet::new();
    if let Base::Stage(i) = base {
        deps.insert(*i);
    }
    for instr in &src.body {
        for from in referenced_sources(instr)? {
            if let Source::Stage(i) = resolve_source(&from.text, names, contexts, index, from.span)? {
                deps.insert(i);
            }
        }
    }
    Ok(deps)
}

/// The stage `--target` names (without regard to case), or the last one.
pub(super) fn select_target(
    target: Option<&str>,
    names: &BTreeMap<String, usize>,
    stage_count: usize,
) -> Result<usize, FrontendError> {
    let Some(t) = target else { return Ok(stage_count - 1) };
    if let Some(&i) = names.get(&t.to_ascii_lowercase()) {
        return Ok(i);
    }
    let known: Vec<&str> = names.keys().map(String::as_str).collect();
    let lower = t.to_ascii_lowercase();
    let hint = if known.is_empty() {
        "the Dockerfile has no named stages (name one with FROM <image> AS <name>)".to_string()
    } else if let Some(near) = crate::error::suggest(&lower, known.iter().copied()) {
        format!("did you mean {near}? (stages in this Dockerfile: {})", known.join(", "))
    } else {
        format!("stages in this Dockerfile: {}", known.join(", "))
    };
    Err(FrontendError::new(format!("target stage {t:?} could not be found"), Span::default()).with_hint(hint))
}

/// Marks `target` and every stage it depends on, transitively, as needed.
pub(super) fn mark_needed(stages: &mut [Stage], target: usize) {
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if stages[i].needed {
            continue;
        }
        stages[i].needed = true;
        todo.extend(stages[i].deps.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::options::LowerOptions;
    use crate::lower::sources::read_sources;
    use crate::lower::testing::linux_amd64;
    use crate::parser::parse;
    use crate::span::Pos;

    fn plan(src: &str, build_args: &[(&str, &str)]) -> Result<Plan, FrontendError> {
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
        let lexer = Lexer::new('\\');
        let sources = read_sources(&parse(src).unwrap(), &opts, &lexer, &mut BTreeSet::new())?;
        plan_stages(&sources.stages, &lexer, &sources.globals, &opts.platform, &opts.named_contexts)
    }

    #[test]
    fn from_expands_global_args_and_names_its_base() {
        let p =
            plan("ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG:-3} AS One\nFROM one\nFROM scratch\n", &[])
                .unwrap();
        let s = &p.stages;
        assert_eq!(s[0].base, Base::Image("alpine:3".into()));
        assert_eq!(
            (s[0].name.as_deref(), s[0].label.as_str()),
            (Some("one"), "one"),
            "names are lower-cased"
        );
        assert_eq!(s[0].from_text, "FROM alpine:3 AS one");
        assert_eq!(s[1].base, Base::Stage(0), "a stage by name, without case");
        assert_eq!((s[1].label.as_str(), s[1].from_text.as_str()), ("stage-1", "FROM one"));
        assert_eq!(s[2].base, Base::Scratch);
        assert_eq!(p.names, BTreeMap::from([("one".to_string(), 0)]));
        assert!(s.iter().all(|st| !st.needed && st.steps.is_empty()), "nothing is needed or lowered yet");
        let p = plan("ARG BASE=alpine\nFROM $BASE\n", &[("BASE", "debian")]).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("debian".into()), "--build-arg reaches FROM");
    }

    #[test]
    fn from_sees_only_the_global_scope() {
        let e = plan("FROM img AS a\nARG IMG=busybox\nENV IMG2=busybox\nFROM ${IMG}${IMG2}\n", &[])
            .err()
            .unwrap();
        assert_eq!(e.message, "FROM names an empty image");
        assert_eq!(e.span, Span::new(Pos::new(4, 6), Pos::new(4, 19)));
        assert_eq!(e.hint.as_deref(), Some("check the build args used in the image name"));
    }

    #[test]
    fn a_stage_named_like_its_image_is_built_on_the_image() {
        let p = plan("FROM golang AS golang\n", &[]).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("golang".into()));
    }

    #[test]
    fn duplicate_names_are_errors_at_the_second_name() {
        let e = plan("FROM a AS x\nFROM b AS X\n", &[]).err().unwrap();
        assert_eq!(e.message, "duplicate stage name \"x\"");
        assert_eq!(e.span, Span::new(Pos::new(2, 11), Pos::new(2, 12)));
    }

    #[test]
    fn dependencies_are_the_base_copy_from_and_mounts() {
        let src = "FROM a AS build\nFROM b AS deps\nFROM c\nFROM deps\nCOPY --from=build /o /o\nRUN --mount=from=2,target=/x make\nCOPY --from=img:1 / /\n";
        let p = plan(src, &[]).unwrap();
        assert_eq!(p.stages[3].deps, BTreeSet::from([0, 1, 2]));
        assert!(p.stages[2].deps.is_empty());
        let e = plan("FROM a\nCOPY --from=1 / /\nFROM b\n", &[]).err().unwrap();
        assert_eq!(e.message, "--from=1 refers to the current or a later stage");
        assert_eq!(e.span.start.line, 2);
    }

    #[test]
    fn a_stage_gets_its_platform_from_the_flag_its_base_stage_or_the_target() {
        let src = "FROM --platform=$BUILDPLATFORM img AS build\nFROM build AS more\nFROM --platform=linux/aarch64 img\nFROM img\n";
        let p = plan(src, &[]).unwrap();
        let specs: Vec<String> = p.stages.iter().map(|s| s.platform.spec()).collect();
        assert_eq!(specs, ["linux/amd64", "linux/amd64", "linux/arm64", "linux/amd64"]);
        let e = plan("FROM --platform=linux/sparc img\n", &[]).err().unwrap();
        assert!(e.message.contains("unknown architecture \"sparc\""), "{}", e.message);
        assert!(e.hint.as_deref().unwrap().contains("os/arch"), "{:?}", e.hint);
        assert_eq!(e.span, Span::new(Pos::new(1, 6), Pos::new(1, 28)), "the span is the flag");
    }

    fn names(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
        list.iter().map(|(n, i)| (n.to_string(), *i)).collect()
    }

    #[test]
    fn the_target_is_named_without_case_or_is_the_last_stage() {
        let n = names(&[("build", 0), ("test", 2)]);
        assert_eq!(select_target(None, &n, 4), Ok(3));
        assert_eq!(select_target(Some("TEST"), &n, 4), Ok(2));
        let e = select_target(Some("release"), &n, 4).unwrap_err();
        assert_eq!(e.message, "target stage \"release\" could not be found");
        assert_eq!(e.hint.as_deref(), Some("stages in this Dockerfile: build, test"));
        assert_eq!(e.span, Span::default(), "no line to point at");
        let e = select_target(Some("bulid"), &n, 4).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean build? (stages in this Dockerfile: build, test)"));
        let e = select_target(Some("1"), &names(&[]), 2).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("the Dockerfile has no named stages (name one with FROM <image> AS <name>)"),
            "targets are names, not indexes"
        );
    }

    #[test]
    fn the_target_needs_its_dependencies_transitively_and_nothing_else() {
        let mut stages = plan(
            "FROM a AS base\nFROM b AS unused\nFROM base AS mid\nFROM c\nCOPY --from=mid / /\nFROM d\n",
            &[],
        )
        .unwrap()
        .stages;
        mark_needed(&mut stages, 3);
        let needed: Vec<bool> = stages.iter().map(|s| s.needed).collect();
        assert_eq!(needed, [true, false, true, true, false]);
        mark_needed(&mut stages, 1);
        assert!(stages[1].needed, "marking more keeps what was marked");
        assert!(!stages[4].needed);
    }
}
