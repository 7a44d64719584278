//! Which earlier stage a `--from` value names. Stage dependencies are
//! decided before any expansion, as in BuildKit, so neither `COPY --from`
//! nor a mount's `from=` may use variables. A name that is no stage may be
//! a `--build-context` ([`NamedContext`]), which can also replace a stage
//! of that name outright.

use std::collections::BTreeMap;

use super::options::NamedContext;
use crate::error::FrontendError;
use crate::instructions::{Instruction, Kind, Word};
use crate::mounts::mount_from;
use crate::span::Span;

/// The `--from` values an instruction reads (COPY flags and RUN mounts).
pub(super) fn referenced_sources(instr: &Instruction) -> Result<Vec<Word>, FrontendError> {
    Ok(match &instr.kind {
        Kind::Copy(c) | Kind::Add(c) => c.from.iter().cloned().collect(),
        Kind::Run { mounts, .. } => mount_sources(mounts)?,
        _ => Vec::new(),
    })
}

/// The `from=` of each `--mount` that has one, at the mount's span.
fn mount_sources(mounts: &[Word]) -> Result<Vec<Word>, FrontendError> {
    let mut out = Vec::new();
    for m in mounts {
        if let Some(from) = mount_from(&m.text) {
            if from.contains('$') {
                return Err(FrontendError::new(
                    "from= of a mount doesn't support variable expansion",
                    m.span,
                )
                .with_hint("define an alias stage (FROM ${VAR} AS name) and mount from=name"));
            }
            out.push(Word { text: from, span: m.span });
        }
    }
    Ok(out)
}

/// Resolves a `--from` value to an earlier stage, by index or by name
/// (without regard to case); `None` means an image.
pub(super) fn stage_ref(
    value: &str,
    names: &BTreeMap<String, usize>,
    current: usize,
    span: Span,
) -> Result<Option<usize>, FrontendError> {
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(FrontendError::new(
                format!("--from={i} refers to the current or a later stage"),
                span,
            )
            .with_hint("refer to an earlier stage by name or index"));
        }
        return Ok(Some(i));
    }
    match names.get(&value.to_ascii_lowercase()) {
        Some(&i) if i < current => Ok(Some(i)),
        Some(_) => {
            Err(FrontendError::new(format!("--from={value} refers to the current or a later stage"), span)
                .with_hint("a stage can only copy from stages defined above it"))
        }
        None => Ok(None),
    }
}

/// What a `--from` value (or a FROM base) reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    Stage(usize),
    Image(String),
}

/// A `--from` value: an earlier stage, else a named context, else an image
/// of that name.
pub(super) fn resolve_source(
    value: &str,
    names: &BTreeMap<String, usize>,
    contexts: &BTreeMap<String, NamedContext>,
    current: usize,
    span: Span,
) -> Result<Source, FrontendError> {
    if let Some(i) = stage_ref(value, names, current, span)? {
        return Ok(Source::Stage(i));
    }
    match contexts.get(&value.to_ascii_lowercase()) {
        Some(NamedContext::Image(reference)) => Ok(Source::Image(reference.clone())),
        Some(NamedContext::Stage(stage)) => match stage_ref(stage, names, current, span)? {
            Some(i) => Ok(Source::Stage(i)),
            None => Err(FrontendError::new(
                format!("--build-context {value}=target:{stage} names no stage of this Dockerfile"),
                span,
            )
            .with_hint("target:STAGE must name a stage defined above where the context is used")),
        },
        None => Ok(Source::Image(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::testing::instruction;
    use crate::span::Pos;

    fn names() -> BTreeMap<String, usize> {
        [("build".to_string(), 0), ("test".to_string(), 2)].into()
    }

    fn at() -> Span {
        Span::new(Pos::new(7, 6), Pos::new(7, 18))
    }

    #[test]
    fn indexes_and_names_resolve_to_earlier_stages() {
        assert_eq!(stage_ref("0", &names(), 3, at()), Ok(Some(0)));
        assert_eq!(stage_ref("1", &names(), 3, at()), Ok(Some(1)), "an unnamed stage by index");
        assert_eq!(stage_ref("BUILD", &names(), 3, at()), Ok(Some(0)), "names match without case");
        assert_eq!(stage_ref("test", &names(), 3, at()), Ok(Some(2)));
    }

    #[test]
    fn anything_else_is_an_image() {
        for image in ["alpine:3", "build:1", "docker.io/library/test", "-1", "ghcr.io/x/y@sha256:00"] {
            assert_eq!(stage_ref(image, &names(), 3, at()), Ok(None), "{image}");
        }
    }

    #[test]
    fn the_current_or_a_later_stage_is_an_error_at_the_span() {
        let e = stage_ref("2", &names(), 2, at()).unwrap_err();
        assert_eq!(e.message, "--from=2 refers to the current or a later stage");
        assert_eq!(e.hint.as_deref(), Some("refer to an earlier stage by name or index"));
        assert_eq!(e.span, at());
        let e = stage_ref("Test", &names(), 1, at()).unwrap_err();
        assert_eq!(e.message, "--from=Test refers to the current or a later stage");
        assert_eq!(e.hint.as_deref(), Some("a stage can only copy from stages defined above it"));
        assert_eq!(e.span, at());
        assert!(stage_ref("test", &names(), 2, at()).is_err(), "a stage cannot read itself by name");
    }

    #[test]
    fn copy_from_and_mount_from_are_the_referenced_sources() {
        let texts = |src: &str| -> Vec<String> {
            referenced_sources(&instruction(src)).unwrap().into_iter().map(|w| w.text).collect()
        };
        assert_eq!(texts("COPY --from=build /a /b"), ["build"]);
        assert_eq!(texts("COPY /a /b"), Vec::<String>::new());
        assert_eq!(
            texts(
                "RUN --mount=type=cache,target=/c --mount=type=bind,FROM=deps,target=/d --mount=from=1,target=/e x"
            ),
            ["deps", "1"]
        );
        assert_eq!(texts("ENV from=x"), Vec::<String>::new());
    }

    #[test]
    fn a_variable_in_a_mount_from_is_an_error_at_the_mount() {
        let run = instruction("RUN --mount=type=bind,from=$STAGE,target=/x true");
        let Kind::Run { mounts, .. } = &run.kind else { unreachable!() };
        let e = referenced_sources(&run).unwrap_err();
        assert_eq!(e.message, "from= of a mount doesn't support variable expansion");
        assert_eq!(e.span, mounts[0].span);
        assert_eq!(e.span.start, Pos::new(1, 5), "the span is the --mount flag");
    }
}
