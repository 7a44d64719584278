//! COPY and ADD to a copy step: where the files come from (the context, an
//! earlier stage, an image), which sources are paths and which are URLs
//! (ADD only), the destination resolved against WORKDIR, `--chown`,
//! `--chmod`, ADD `--checksum`, and heredocs given inline.

use super::expand::{expand, expand_text};
use super::history::display;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::filemode;
use crate::graph::{CopyOp, CopySource, FileMode, Op, SourcePath, Step};
use crate::instructions::{CopyArgs, Instruction, Word};
use crate::mounts::{absolute, clean};
use crate::parser::Heredoc;
use crate::shell::{Env, Lexer};
use crate::span::Span;

pub(super) fn lower_copy(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    c: &CopyArgs,
    is_add: bool,
) -> Result<(), FrontendError> {
    let op = copy_op(ctx, st, c, is_add)?;
    st.steps.push(Step {
        op: Op::Copy(op),
        span: instr.span,
        created_by: display(instr),
        text: display(instr),
    });
    Ok(())
}

fn copy_op(ctx: &StageCtx, st: &mut StageState, c: &CopyArgs, is_add: bool) -> Result<CopyOp, FrontendError> {
    let source = copy_source(ctx, st, c.from.as_ref())?;
    let (lexer, env) = (ctx.lexer, &st.build_env);
    let (paths, urls) = source_paths(lexer, env, &c.sources, is_add, &source)?;
    let count = paths.len() + urls.len() + c.heredocs.len();
    let (dest, dest_is_dir) = destination(lexer, env, &c.dest, count, is_add, &st.meta.workdir)?;
    let chown = c.chown.as_ref().map(|w| expand(lexer, w, env)).transpose()?.filter(|s| !s.is_empty());
    let chmod = c.chmod.as_ref().map(|w| chmod_flag(lexer, env, w)).transpose()?;
    let checksum = c.checksum.as_ref().map(|w| checksum_flag(lexer, env, w, &paths, &urls)).transpose()?;
    let inline = inline_files(&c.heredocs, c.dest.span, env)?;
    Ok(CopyOp {
        source,
        paths,
        urls,
        inline,
        dest,
        dest_is_dir,
        chown,
        chmod,
        link: c.link,
        parents: c.parents,
        exclude: c.exclude.clone(),
        extract_archives: is_add && c.unpack.unwrap_or(true),
        unpack_urls: is_add && c.unpack == Some(true),
        checksum,
        user: st.meta.user.clone(),
    })
}

/// `--from`: an earlier stage (by name or index) or an image; the context
/// without it.
fn copy_source(
    ctx: &StageCtx,
    st: &mut StageState,
    from: Option<&Word>,
) -> Result<CopySource, FrontendError> {
    let Some(w) = from else { return Ok(CopySource::Context) };
    Ok(match ctx.source_of(st, &w.text, w.span)? {
        Some(i) => CopySource::Stage(i),
        None => CopySource::Image(w.text.clone()),
    })
}

/// The expanded sources, split into paths and (ADD from the context only)
/// URLs. Git repositories are refused: rbuild fetches no repositories.
fn source_paths(
    lexer: &Lexer,
    env: &dyn Env,
    sources: &[Word],
    is_add: bool,
    source: &CopySource,
) -> Result<(Vec<SourcePath>, Vec<SourcePath>), FrontendError> {
    let (mut paths, mut urls) = (Vec::new(), Vec::new());
    for s in sources {
        let p = expand(lexer, s, env)?;
        if p.is_empty() {
            return Err(FrontendError::new("a source path is empty", s.span)
                .with_hint("check the variables used in the source"));
        }
        if is_git_source(&p) {
            return Err(FrontendError::new(
                format!("{p} is a git repository, which rbuild cannot fetch"),
                s.span,
            )
            .with_hint("clone it into the build context first, or fetch it in a RUN step"));
        }
        if p.starts_with("http://") || p.starts_with("https://") {
            check_url_source(&p, s.span, is_add, source)?;
            urls.push(SourcePath { path: p, span: s.span });
        } else {
            paths.push(SourcePath { path: p, span: s.span });
        }
    }
    Ok((paths, urls))
}

fn check_url_source(url: &str, span: Span, is_add: bool, source: &CopySource) -> Result<(), FrontendError> {
    if !is_add {
        return Err(FrontendError::new(format!("COPY cannot fetch {url}: only ADD takes URLs"), span)
            .with_hint("use ADD for URLs, or download the file into the context"));
    }
    if !matches!(source, CopySource::Context) {
        return Err(FrontendError::new("ADD of a URL cannot be combined with --from", span));
    }
    Ok(())
}

/// `git@host:repo`, `git://…`, or an http(s) URL of a `.git` repository
/// (optionally with `#ref`), as BuildKit recognises them.
fn is_git_source(p: &str) -> bool {
    if p.starts_with("git@") || p.starts_with("git://") || p.starts_with("ssh://") {
        return true;
    }
    let base = p.split('#').next().unwrap_or(p);
    (p.starts_with("http://") || p.starts_with("https://")) && (base.ends_with(".git") || p.contains(".git#"))
}

/// The absolute destination (a trailing `/` kept, other paths cleaned) and
/// whether it is a directory. With several sources it must end in `/`.
fn destination(
    lexer: &Lexer,
    env: &dyn Env,
    dest: &Word,
    source_count: usize,
    is_add: bool,
    workdir: &str,
) -> Result<(String, bool), FrontendError> {
    let raw = expand(lexer, dest, env)?;
    if raw.is_empty() {
        return Err(FrontendError::new("the destination is empty", dest.span)
            .with_hint("check the variables used in the destination"));
    }
    let names_dir = raw.ends_with('/');
    if source_count > 1 && !names_dir {
        let keyword = if is_add { "ADD" } else { "COPY" };
        return Err(FrontendError::new(
            format!(
                "when using {keyword} with more than one source file, the destination must be a directory and end with a /"
            ),
            dest.span,
        )
        .with_hint(format!("write {raw}/")));
    }
    let path = absolute(&raw, workdir);
    let path = if names_dir && path != "/" { format!("{path}/") } else { clean(&path) };
    Ok((path, names_dir || source_count > 1))
}

fn chmod_flag(lexer: &Lexer, env: &dyn Env, w: &Word) -> Result<FileMode, FrontendError> {
    let v = expand(lexer, w, env)?;
    filemode::parse(&v).map_err(|m| {
        FrontendError::new(m, w.span)
            .with_hint("use an octal mode such as --chmod=0755, or a symbolic one such as --chmod=u+x")
    })
}

/// ADD `--checksum=sha256:<hex>` of its one URL source, lower-cased.
fn checksum_flag(
    lexer: &Lexer,
    env: &dyn Env,
    w: &Word,
    paths: &[SourcePath],
    urls: &[SourcePath],
) -> Result<String, FrontendError> {
    let v = expand(lexer, w, env)?;
    if urls.len() != 1 || !paths.is_empty() {
        return Err(FrontendError::new("--checksum needs exactly one source, and it must be a URL", w.span)
            .with_hint("write ADD --checksum=sha256:<hex> https://… <dest>"));
    }
    let hex = v.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
    if hex.is_none() {
        return Err(FrontendError::new(format!("invalid checksum {v:?}"), w.span)
            .with_hint("write --checksum=sha256:<64 hex digits>"));
    }
    Ok(v.to_ascii_lowercase())
}

/// Heredoc files, by name. Bodies are expanded unless the delimiter was
/// quoted; quotes inside them are text, and the escape is always `\`
/// (BuildKit's raw expansion). Errors point at the destination.
fn inline_files(
    heredocs: &[Heredoc],
    span: Span,
    env: &dyn Env,
) -> Result<Vec<(String, String)>, FrontendError> {
    let raw = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
    let mut inline = Vec::new();
    for h in heredocs {
        let content = if h.expand { expand_text(&raw, &h.content, span, env)? } else { h.content.clone() };
        inline.push((h.name.clone(), content));
    }
    Ok(inline)
}
