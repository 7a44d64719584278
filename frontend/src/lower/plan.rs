//! Stage resolution, before any stage is lowered: what each FROM names
//! (scratch, an earlier stage or an image, expanded with the global args
//! only), stage names, the stages each one reads, the target stage, and
//! which stages the target needs.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::expand;
use super::platform::Platform;
use super::references::{referenced_sources, stage_ref};
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
) -> Result<Plan, FrontendError> {
    let mut plan = Plan { stages: Vec::new(), names: BTreeMap::new() };
    for (index, src) in sources.iter().enumerate() {
        let stage = plan_stage(index, src, lexer, globals, platform, &mut plan.names)?;
        plan.stages.push(stage);
    }
    Ok(plan)
}

/// One stage's header: its base, its name (added to `names`) and the
/// earlier stages it reads.
fn plan_stage(
    index: usize,
    src: &StageSource,
    lexer: &Lexer,
    globals: &Vars,
    platform: &Platform,
    names: &mut BTreeMap<String, usize>,
) -> Result<Stage, FrontendError> {
    let Kind::From { image, name, platform: wanted } = &src.from.kind else {
        unreachable!("stages start with FROM")
    };
    let image_ref = expand(lexer, image, globals)?;
    if image_ref.is_empty() {
        return Err(FrontendError::new("FROM names an empty image", image.span)
            .with_hint("check the build args used in the image name"));
    }
    if let Some(p) = wanted {
        check_platform(p, lexer, globals, platform)?;
    }
    // Resolved before this stage's own name is known: `FROM x AS x` names an image.
    let base = base_of(&image_ref, names);
    let stage_name = name.as_ref().map(|n| n.text.to_ascii_lowercase());
    if let Some(n) = &stage_name {
        add_name(n, name.as_ref().map_or(src.from.span, |w| w.span), index, names)?;
    }
    let deps = stage_deps(&base, src, names, index)?;
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
    })
}

/// `FROM --platform=…` (expanded with the global args) must be the platform
/// rbuild builds for.
fn check_platform(
    wanted: &Word,
    lexer: &Lexer,
    globals: &Vars,
    host: &Platform,
) -> Result<(), FrontendError> {
    let want = expand(lexer, wanted, globals)?;
    if host.accepts(&want) {
        return Ok(());
    }
    Err(FrontendError::new(
        format!("platform {want:?} is not supported: rbuild builds for the host platform {}", host.spec()),
        wanted.span,
    )
    .with_hint(format!("remove --platform or use --platform={}", host.spec())))
}

/// `scratch` (in any case), an earlier stage by name, or an image.
fn base_of(image_ref: &str, names: &BTreeMap<String, usize>) -> Base {
    if image_ref.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else if let Some(&i) = names.get(&image_ref.to_ascii_lowercase()) {
        Base::Stage(i)
    } else {
        Base::Image(image_ref.to_string())
    }
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
    index: usize,
) -> Result<BTreeSet<usize>, FrontendError> {
    let mut deps = BTreeSet::new();
    if let Base::Stage(i) = base {
        deps.insert(*i);
    }
    for instr in &src.body {
        for from in referenced_sources(instr)? {
            if let Some(i) = stage_ref(&from.text, names, index, from.span)? {
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
    let hint = if known.is_empty() {
        "the Dockerfile has no named stages (name one with FROM <image> AS <name>)".to_string()
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
