//! Which earlier stage a `--from` value names. Stage dependencies are
//! decided before any expansion, as in BuildKit, so neither `COPY --from`
//! nor a mount's `from=` may use variables.

use std::collections::BTreeMap;

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
