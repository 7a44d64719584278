//! Conformance with BuildKit's COPY tests (`dockerfile_copy_test.go`):
//! owners and modes of the directories COPY creates or merges into,
//! wildcards that match nothing, and empty destinations. Each test names
//! the BuildKit test function it answers; the assertions are BuildKit's,
//! checked on the exported root filesystem.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::harness::*;

fn owner(root: &Path, p: &str) -> String {
    let m = fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    format!("{}:{}", m.uid(), m.gid())
}

fn mode(root: &Path, p: &str) -> u32 {
    fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}")).permissions().mode() & 0o7777
}

/// testCopyChownExistingDir: a directory COPY creates for a directory's
/// contents belongs to root (or to `--chown`), whoever owned the source; a
/// directory that exists keeps its owner and its entries; new entries keep
/// their source owners (or take `--chown`).
#[test]
fn copy_chown_existing_dir() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS source\n\
RUN touch /file && chown 100:200 /file && mkdir -p /dir/subdir && touch /dir/subdir/nestedfile \
&& chown 100:200 /dir && chmod 700 /dir && chown 101:201 /dir/subdir && chown 102:202 /dir/subdir/nestedfile\n\
FROM busybox:local AS base\n\
RUN mkdir -p /existingdir/existingsubdir && touch /existingdir/existingfile && chown 500:600 /existingdir \
&& chmod 750 /existingdir && chown 501:601 /existingdir/existingsubdir /existingdir/existingfile\n\
FROM base AS plain\n\
COPY --from=source /file .\nCOPY --from=source /dir /dir\nCOPY --from=source /dir/. /existingdir\n\
FROM base AS chowned\n\
COPY --from=source --chown=300:400 /file .\nCOPY --from=source --chown=300:400 /dir /dir\n\
COPY --from=source --chown=300:400 /dir/. /existingdir\n",
    );
    let (_, out) = build_local(&env, "ctx", &["--target", "plain"]);
    let expected = [
        ("file", "100:200"),
        ("dir", "0:0"),
        ("dir/subdir", "101:201"),
        ("dir/subdir/nestedfile", "102:202"),
        ("existingdir", "500:600"),
        ("existingdir/existingsubdir", "501:601"),
        ("existingdir/existingfile", "501:601"),
        ("existingdir/subdir", "101:201"),
        ("existingdir/subdir/nestedfile", "102:202"),
    ];
    for (path, want) in expected {
        assert_eq!(owner(&out, path), want, "owner of /{path} without --chown");
    }
    assert_eq!(mode(&out, "dir"), 0o755, "the created destination is 0755, not the source's 0700");
    assert_eq!(mode(&out, "existingdir"), 0o750, "an existing destination keeps its mode");

    let (_, out) = build_local(&env, "ctx", &["--target", "chowned"]);
    let expected = [
        ("file", "300:400"),
        ("dir", "300:400"),
        ("dir/subdir", "300:400"),
        ("dir/subdir/nestedfile", "300:400"),
        ("existingdir", "500:600"),
        ("existingdir/existingsubdir", "501:601"),
        ("existingdir/existingfile", "501:601"),
        ("existingdir/subdir", "300:400"),
        ("existingdir/subdir/nestedfile", "300:400"),
    ];
    for (path, want) in expected {
        assert_eq!(owner(&out, path), want, "owner of /{path} with --chown=300:400");
    }
}

/// testCopyChmod: `--chmod` sets the copied files' modes (octal, from a
/// build arg too), and the directories COPY creates on the way to the
/// destination take the octal mode as well.
#[test]
fn copy_chmod() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\n\
COPY --chmod=0644 foo /\nCOPY --chmod=777 bar /baz\nCOPY --chmod=0 foo /foobis\n\
COPY --chmod=777 foo /parent/foo\nCOPY --chmod=770 foo /parent/sub/foo\n\
ARG mode\nCOPY --chmod=${mode} foo /footer\n\
COPY --chmod=u+x foo /symbolic/foo\n",
            ),
            ("foo", "foo-contents"),
            ("bar", "bar-contents"),
        ],
    );
    fs::set_permissions(ctx.join("foo"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(ctx.join("bar"), fs::Permissions::from_mode(0o700)).unwrap();
    let (_, out) = build_local(&env, "ctx", &["--build-arg", "mode=755"]);
    let expected = [
        ("foo", 0o644),
        ("baz", 0o777),
        ("foobis", 0o000),
        ("parent", 0o777),
        ("parent/sub", 0o770),
        ("footer", 0o755),
        ("symbolic/foo", 0o700),
        ("symbolic", 0o755),
    ];
    for (path, want) in expected {
        assert_eq!(mode(&out, path), want, "mode of /{path}: {:o}", mode(&out, path));
    }
}

/// testEmptyWildcard: a wildcard that matches nothing is skipped, next to
/// sources that match, into `/` and into a new directory.
#[test]
fn empty_wildcard() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY foo nomatch* /\nCOPY foo nomatch* /res/\n"),
            ("foo", "contents0"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("foo")).unwrap(), "contents0");
    assert_eq!(files_under(&out.join("res")), ["foo"]);
}

/// testEmptyDestDir, testCopyLinkEmptyDestDir, testCopyLinkDotDestDir: a
/// destination that expands to nothing, or `.`, is the working directory,
/// with and without `--link`.
#[test]
fn empty_dest_dir() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nENV empty=\"\"\nCOPY testfile $empty\n\
WORKDIR /var/www\nCOPY --link testfile $empty\nWORKDIR /srv\nCOPY --link testfile .\n\
RUN [ \"$(cat /var/www/testfile)\" = contents0 ]\n",
            ),
            ("testfile", "contents0"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    for p in ["testfile", "var/www/testfile", "srv/testfile"] {
        assert_eq!(fs::read_to_string(out.join(p)).unwrap(), "contents0", "/{p}");
    }
}

/// exclude_patterns_test.go's builder5 (and testCopyWildcards' rule): one
/// wildcard source matching several directories, with a destination
/// without a trailing slash, merges their contents into it.
#[test]
fn one_wildcard_with_several_matches_and_a_plain_destination() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY dir* /5\nCOPY one/*.txt /single\n"),
            ("dir1/a.txt", "a"),
            ("dir2/b.txt", "b"),
            ("one/only.txt", "only"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(files_under(&out.join("5")), ["a.txt", "b.txt"]);
    assert_eq!(fs::read_to_string(out.join("single")).unwrap(), "only", "one match is copied onto the path");
}
