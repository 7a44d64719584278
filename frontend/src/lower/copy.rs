//! COPY and ADD to a copy step: where the files come from (the context, an
//! earlier stage, an image), which sources are paths and which are URLs
//! (ADD only), which are git repositories (ADD only, split into remote,
//! ref and subdirectory), the destination resolved against WORKDIR,
//! `--chown`, `--chmod`, ADD `--checksum` and `--keep-git-dir`, and
//! heredocs given inline.

use super::expand::{expand, expand_text};
use super::history::display;
use super::references::Source;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::filemode;
use crate::graph::{CopyOp, CopySource, FileMode, GitSource, Op, SourcePath, Step};
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
    let Sources { paths, urls, git } = source_paths(lexer, env, &c.sources, is_add, &source)?;
    let count = paths.len() + urls.len() + git.len() + c.heredocs.len();
    let (dest, dest_is_dir) = destination(lexer, env, &c.dest, count, is_add, &st.meta.workdir)?;
    let chown = c.chown.as_ref().map(|w| expand(lexer, w, env)).transpose()?.filter(|s| !s.is_empty());
    let chmod = c.chmod.as_ref().map(|w| chmod_flag(lexer, env, w)).transpose()?;
    let checksum = match &c.checksum {
        Some(w) if !git.is_empty() => Some(commit_checksum_flag(lexer, env, w, count)?),
        Some(w) => Some(checksum_flag(lexer, env, w, &paths, &urls)?),
        None => None,
    };
    let inline = inline_files(&c.heredocs, c.dest.span, env)?;
    Ok(CopyOp {
        source,
        paths,
        urls,
        git,
        keep_git_dir: is_add && c.keep_git_dir,
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
        Source::Stage(i) => CopySource::Stage(i),
        Source::Image(reference) => CopySource::Image(reference),
    })
}

/// A COPY's or ADD's expanded sources by kind.
struct Sources {
    paths: Vec<SourcePath>,
    urls: Vec<SourcePath>,
    git: Vec<GitSource>,
}

/// The expanded sources, split into paths and (ADD from the context only)
/// URLs and git repositories.
fn source_paths(
    lexer: &Lexer,
    env: &dyn Env,
    sources: &[Word],
    is_add: bool,
    source: &CopySource,
) -> Result<Sources, FrontendError> {
    let mut out = Sources { paths: Vec::new(), urls: Vec::new(), git: Vec::new() };
    for s in sources {
        let p = expand(lexer, s, env)?;
        if p.is_empty() {
            return Err(FrontendError::new("a source path is empty", s.span)
                .with_hint("check the variables used in the source"));
        }
        if is_git_source(&p) {
            check_url_source(&p, s.span, is_add, source)?;
            out.git.push(git_source(&p, s.span)?);
        } else if p.starts_with("http://") || p.starts_with("https://") {
            check_url_source(&p, s.span, is_add, source)?;
            out.urls.push(SourcePath { path: p, span: s.span });
        } else {
            out.paths.push(SourcePath { path: p, span: s.span });
        }
    }
    Ok(out)
}

/// Splits `REMOTE[?QUERY][#REF[:SUBDIR]]` as BuildKit does. The query
/// (BuildKit 0.24's form) takes `ref=`, `branch=`, `tag=`, `subdir=` and
/// `commit=`/`checksum=`; a ref given both ways must agree. The
/// subdirectory is cleaned as a path rooted in the repository, so `..`
/// never leaves it.
fn git_source(p: &str, span: Span) -> Result<GitSource, FrontendError> {
    let (base, fragment) = p.split_once('#').unwrap_or((p, ""));
    let (mut reference, mut subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let (remote, query) = base.split_once('?').unwrap_or((base, ""));
    let mut commit = String::new();
    let bad = |why: String| {
        FrontendError::new(format!("{p}: {why}"), span).with_hint(
            "write REPOSITORY#REF:SUBDIR, or REPOSITORY?ref=REF&subdir=SUBDIR (also branch=, tag=, commit=)",
        )
    };
    let mut query_ref: Option<String> = None;
    for pair in query.split('&').filter(|q| !q.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let full = match k {
            "ref" => v.to_string(),
            "branch" => format!("refs/heads/{v}"),
            "tag" => format!("refs/tags/{v}"),
            "subdir" => {
                subdir = v;
                continue;
            }
            "commit" | "checksum" => {
                if !(7..=64).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(format!("invalid {k} {v:?}: expected hex commit hash")));
                }
                commit = v.to_ascii_lowercase();
                continue;
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        };
        if query_ref.as_ref().is_some_and(|q| q != &full) {
            return Err(bad("ref conflicts: the query names two refs".into()));
        }
        query_ref = Some(full);
    }
    let owned;
    if let Some(q) = &query_ref {
        let same = reference.is_empty()
            || q == reference
            || *q == format!("refs/heads/{reference}")
            || *q == format!("refs/tags/{reference}");
        if !same {
            return Err(bad(format!("ref conflicts: the query names {q}, the fragment {reference}")));
        }
        owned = q.clone();
        reference = &owned;
    }
    let reference = if reference.is_empty() { commit.clone() } else { reference.to_string() };
    let subdir = clean(&format!("/{subdir}")).trim_start_matches('/').to_string();
    Ok(GitSource { remote: remote.to_string(), reference, subdir, commit, span })
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

/// `git@host:repo`, `git://…`, `ssh://…`, or an http(s) URL of a `.git`
/// repository (optionally with `#ref`), as BuildKit recognises them.
fn is_git_source(p: &str) -> bool {
    if p.starts_with("git://") || p.starts_with("ssh://") || is_scp_like(p) {
        return true;
    }
    // The URL's path decides, without its query or fragment.
    let base = p.split(['#', '?']).next().unwrap_or(p);
    (p.starts_with("http://") || p.starts_with("https://")) && base.ends_with(".git")
}

/// ssh's short form `USER@HOST:PATH` (`git@github.com:moby/moby.git`).
fn is_scp_like(p: &str) -> bool {
    let Some((user, rest)) = p.split_once('@') else { return false };
    let Some((host, _)) = rest.split_once(':') else { return false };
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    word(user) && word(host)
}

/// The absolute destination (a trailing `/` kept, other paths cleaned) and
/// whether it is a directory. With several sources it must end in `/`; an
/// empty one is the working directory.
fn destination(
    lexer: &Lexer,
    env: &dyn Env,
    dest: &Word,
    source_count: usize,
    is_add: bool,
    workdir: &str,
) -> Result<(String, bool), FrontendError> {
    let raw = expand(lexer, dest, env)?;
    // A destination that expands to nothing is the working directory, and
    // so is `.`: a directory even where nothing exists yet (a `--link`
    // layer), as `x/.` is (BuildKit's rules; the classic builder refused an
    // empty one).
    let raw = if raw.is_empty() || raw == "." { "./".to_string() } else { raw };
    let names_dir = raw.ends_with('/') || raw.ends_with("/.");
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

/// ADD `--checksum=<commit>` of its one git source: the commit (or a
/// prefix of it, at least 7 hex digits) the ref must resolve to.
fn commit_checksum_flag(
    lexer: &Lexer,
    env: &dyn Env,
    w: &Word,
    count: usize,
) -> Result<String, FrontendError> {
    let v = expand(lexer, w, env)?;
    if count != 1 {
        return Err(FrontendError::new("--checksum needs exactly one source", w.span)
            .with_hint("write ADD --checksum=<commit> https://host/repo.git#ref <dest>"));
    }
    if !(7..=64).contains(&v.len()) || !v.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FrontendError::new(format!("invalid checksum {v:?}: expected hex commit hash"), w.span)
            .with_hint(
                "give the commit the ref must resolve to: --checksum=<commit sha, 7 to 40 hex digits>",
            ));
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::instructions::Kind;
    use crate::lower::fixture::{Fixture, empty_state};
    use crate::lower::testing::instruction;
    use crate::span::Pos;

    const SHA: &str = "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Lowers one COPY or ADD in `st` and returns its op.
    fn copy(fx: &Fixture, st: &mut StageState, src: &str) -> Result<CopyOp, FrontendError> {
        let instr = instruction(src);
        let (Kind::Copy(c) | Kind::Add(c)) = &instr.kind else { panic!("{src} is not COPY or ADD") };
        lower_copy(&fx.ctx(), st, &instr, c, matches!(instr.kind, Kind::Add(_)))?;
        match st.steps.pop().map(|s| s.op) {
            Some(Op::Copy(op)) => Ok(op),
            other => panic!("{other:?}"),
        }
    }

    fn paths(list: &[SourcePath]) -> Vec<&str> {
        list.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn from_names_an_earlier_stage_by_name_or_index_or_an_image() {
        let fx = Fixture::new().stages(&["build", "", "test"]);
        let mut st = empty_state();
        assert_eq!(copy(&fx, &mut st, "COPY --from=BUILD /out /out").unwrap().source, CopySource::Stage(0));
        assert_eq!(copy(&fx, &mut st, "COPY --from=1 /out /out").unwrap().source, CopySource::Stage(1));
        assert_eq!(
            copy(&fx, &mut st, "COPY --from=nginx:1 /etc/nginx /etc/nginx").unwrap().source,
            CopySource::Image("nginx:1".into())
        );
        assert_eq!(copy(&fx, &mut st, "COPY . /app").unwrap().source, CopySource::Context);
        assert_eq!(st.referenced, BTreeSet::from([0, 1]), "the stages read, for the dependency graph");
        let e = copy(&fx, &mut st, "COPY --from=3 /a /a").unwrap_err();
        assert_eq!(e.message, "--from=3 refers to the current or a later stage");
        assert_eq!(e.span, Span::new(Pos::new(1, 6), Pos::new(1, 14)), "at the flag");
    }

    #[test]
    fn destinations_resolve_against_workdir() {
        let fx = Fixture::new();
        let mut st = empty_state();
        st.meta.workdir = "/app".into();
        let op = copy(&fx, &mut st, "COPY a rel/../b").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/app/b", false));
        let op = copy(&fx, &mut st, "COPY a sub/").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/app/sub/", true), "a trailing / is kept");
        let op = copy(&fx, &mut st, "COPY a b /").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/", true));
        let op = copy(&fx, &mut st, "COPY <<A <<B /etc/x/\na\nA\nb\nB\n").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/etc/x/", true));
    }

    #[test]
    fn several_sources_need_a_directory_destination() {
        let fx = Fixture::new();
        let e = copy(&fx, &mut empty_state(), "ADD a b /opt").unwrap_err();
        assert_eq!(
            e.message,
            "when using ADD with more than one source file, the destination must be a directory and end with a /"
        );
        assert_eq!(e.hint.as_deref(), Some("write /opt/"));
        assert_eq!(e.span, Span::new(Pos::new(1, 9), Pos::new(1, 13)));
        let e = copy(&fx, &mut empty_state(), "COPY <<EOF a /f\nx\nEOF\n").unwrap_err();
        assert!(e.message.starts_with("when using COPY with more than one source file"), "a heredoc counts");
    }

    #[test]
    fn urls_only_in_add() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let op = copy(&fx, &mut st, "ADD https://e.com/a.tgz local.tgz /srv/").unwrap();
        assert_eq!((paths(&op.urls), paths(&op.paths)), (vec!["https://e.com/a.tgz"], vec!["local.tgz"]));
        assert!(op.extract_archives && !op.unpack_urls, "ADD extracts local archives, not downloads");
        let e = copy(&fx, &mut st, "COPY http://e.com/a /a").unwrap_err();
        assert_eq!(e.message, "COPY cannot fetch http://e.com/a: only ADD takes URLs");
        assert_eq!(e.span.start, Pos::new(1, 6));
        assert!(!is_git_source("https://e.com/file.gitignore"));
        assert!(!is_git_source("./repo.git"), "a local path named .git is a path");
        assert!(
            is_git_source("deploy@git.example.com:team/app.git") && is_git_source("root@127.0.0.1:/srv/r")
        );
        assert!(!is_git_source("a@b/c:d") && !is_git_source("@h:p") && !is_git_source("dir/f@x"));
    }

    #[test]
    fn git_repositories_split_into_remote_ref_and_subdir() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let cases = [
            ("git@github.com:moby/moby", "git@github.com:moby/moby", "", ""),
            ("https://github.com/moby/moby.git", "https://github.com/moby/moby.git", "", ""),
            ("https://h/r.git#v1", "https://h/r.git", "v1", ""),
            ("ssh://h/r#main:docs/./api/", "ssh://h/r", "main", "docs/api"),
            ("git://h/r.git#:sub", "git://h/r.git", "", "sub"),
        ];
        for (src, remote, reference, subdir) in cases {
            let op = copy(&fx, &mut st, &format!("ADD --keep-git-dir {src} /src")).unwrap();
            let g = &op.git[0];
            assert_eq!(
                (g.remote.as_str(), g.reference.as_str(), g.subdir.as_str()),
                (remote, reference, subdir)
            );
            assert!(op.keep_git_dir && op.urls.is_empty() && op.paths.is_empty());
        }
        let queries = [
            ("https://h/r.git?branch=b&subdir=s", "refs/heads/b", "s", ""),
            ("https://h/r.git?tag=v2#refs/tags/v2", "refs/tags/v2", "", ""),
            ("https://h/r.git?ref=pull/1/head", "pull/1/head", "", ""),
            ("https://h/r.git?commit=ABCDEF01", "abcdef01", "", "abcdef01"),
            ("https://h/r.git?tag=v2&checksum=abcdef01", "refs/tags/v2", "", "abcdef01"),
        ];
        for (src, reference, subdir, commit) in queries {
            let g = copy(&fx, &mut st, &format!("ADD {src} /src")).unwrap().git.remove(0);
            assert_eq!(g.remote, "https://h/r.git");
            assert_eq!(
                (g.reference.as_str(), g.subdir.as_str(), g.commit.as_str()),
                (reference, subdir, commit)
            );
        }
        for (src, message) in [
            ("https://h/r.git?tag=v2#refs/heads/main", "ref conflicts"),
            ("https://h/r.git?commit=xyz", "expected hex commit hash"),
            ("https://h/r.git?depth=1", "unknown query parameter"),
        ] {
            let e = copy(&fx, &mut st, &format!("ADD {src} /src")).unwrap_err();
            assert!(e.message.contains(message), "{src}: {}", e.message);
        }
        let op = copy(&fx, &mut st, "ADD https://h/r.git#main:../x /src").unwrap();
        assert_eq!(op.git[0].subdir, "x", "rooted in the repository");
        let e = copy(&fx, &mut st, "COPY https://h/r.git /src").unwrap_err();
        assert!(e.message.contains("only ADD takes URLs"), "{}", e.message);
        let op = copy(&fx, &mut st, "ADD --checksum=ABCDEF0 https://h/r.git#v1 /src").unwrap();
        assert_eq!(op.checksum.as_deref(), Some("abcdef0"));
        let e = copy(&fx, &mut st, "ADD --checksum=sha256:abc https://h/r.git /src").unwrap_err();
        assert_eq!(e.message, "invalid checksum \"sha256:abc\": expected hex commit hash");
        let e = copy(&fx, &mut st, "ADD --checksum=abcdef0 https://h/r.git a /src/").unwrap_err();
        assert_eq!(e.message, "--checksum needs exactly one source");
    }

    #[test]
    fn unpack_controls_extraction() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let op = copy(&fx, &mut st, "ADD --unpack=true https://e.com/a.tgz /srv/").unwrap();
        assert!(op.extract_archives && op.unpack_urls);
        let op = copy(&fx, &mut st, "ADD --unpack=false a.tgz /srv/").unwrap();
        assert!(!op.extract_archives && !op.unpack_urls);
        let op = copy(&fx, &mut st, "COPY a.tgz /srv/").unwrap();
        assert!(!op.extract_archives, "COPY never extracts");
    }

    #[test]
    fn checksums_need_one_url_and_a_sha256() {
        let fx = Fixture::new();
        let mut st = empty_state();
        let op = copy(&fx, &mut st, &format!("ADD --checksum={SHA} https://e.com/a /a")).unwrap();
        assert_eq!(op.checksum, Some(SHA.to_ascii_lowercase()));
        let e = copy(&fx, &mut st, &format!("ADD --checksum={SHA} https://e.com/a b /d/")).unwrap_err();
        assert_eq!(e.message, "--checksum needs exactly one source, and it must be a URL");
        let e = copy(&fx, &mut st, "ADD --checksum=sha256:abc https://e.com/a /a").unwrap_err();
        assert_eq!(e.message, "invalid checksum \"sha256:abc\"");
        assert_eq!(e.hint.as_deref(), Some("write --checksum=sha256:<64 hex digits>"));
        assert_eq!(e.span, Span::new(Pos::new(1, 5), Pos::new(1, 26)), "at the flag");
    }

    #[test]
    fn chown_and_chmod_expand() {
        let fx = Fixture::new();
        let mut st = empty_state();
        st.build_env.set("U", "app");
        st.build_env.set("M", "640");
        st.meta.user = "runner".into();
        let op = copy(&fx, &mut st, "COPY --chown=$U:$U --chmod=$M a /a").unwrap();
        assert_eq!((op.chown.as_deref(), op.chmod), (Some("app:app"), Some(FileMode::Octal(0o640))));
        assert_eq!(op.user, "runner");
        let op = copy(&fx, &mut st, "COPY --chown=$UNSET --chmod=go-w a /a").unwrap();
        assert_eq!(
            (op.chown, op.chmod),
            (None, Some(FileMode::Symbolic("go-w".into()))),
            "an empty chown is none"
        );
        let e = copy(&fx, &mut st, "COPY --chmod=999 a /a").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("use an octal mode such as --chmod=0755, or a symbolic one such as --chmod=u+x")
        );
    }

    #[test]
    fn heredoc_files_expand_unless_their_delimiter_is_quoted() {
        let fx = Fixture::new();
        let mut st = empty_state();
        st.build_env.set("N", "7");
        let op = copy(&fx, &mut st, "COPY <<A <<'B' /d/\nn=\"$N\" '$N' \\$N\nA\nraw $N\nB\n").unwrap();
        assert_eq!(op.inline, [("A".into(), "n=\"7\" '7' $N\n".into()), ("B".into(), "raw $N\n".into())]);
    }

    #[test]
    fn an_empty_source_is_an_error_and_an_empty_destination_the_workdir() {
        let fx = Fixture::new();
        let e = copy(&fx, &mut empty_state(), "COPY $NONE /a").unwrap_err();
        assert_eq!((e.message.as_str(), e.span.start.col), ("a source path is empty", 6));
        let mut st = empty_state();
        st.meta.workdir = "/var/www".into();
        let op = copy(&fx, &mut st, "COPY --link a ${NONE}").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/var/www/", true));
        let op = copy(&fx, &mut empty_state(), "COPY a ${NONE}").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/", true));
        let op = copy(&fx, &mut st, "COPY --link a .").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/var/www/", true), "`.` names a directory");
        let op = copy(&fx, &mut st, "COPY a sub/.").unwrap();
        assert_eq!((op.dest.as_str(), op.dest_is_dir), ("/var/www/sub/", true));
    }
}
