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
    assert_contents(
        &out,
        &[("testfile", "contents0"), ("var/www/testfile", "contents0"), ("srv/testfile", "contents0")],
    );
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

/// testCopyWildcards: `*` in names and in directory components, matched
/// directories copied by their contents, `.` and trailing `/` or `/.` on a
/// directory source.
#[test]
fn copy_wildcards() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY *.go /gofiles/\nCOPY f*.go foo2.go\nCOPY sub/* /subdest/\n\
COPY sub/*/dir2/foo /subdest2/\nCOPY sub/*/dir2/foo /subdest3/bar\nCOPY . all/\n\
COPY sub/dir1/ subdest4\nCOPY sub/dir1/. subdest5\nCOPY sub/dir1 subdest6\n",
            ),
            ("foo.go", "foo-contents"),
            ("bar.go", "bar-contents"),
            ("sub/dir1/dir2/foo", "foo-contents"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let expected = [
        ("gofiles/foo.go", "foo-contents"),
        ("gofiles/bar.go", "bar-contents"),
        ("foo2.go", "foo-contents"),
        ("subdest/dir2/foo", "foo-contents"),
        ("subdest2/foo", "foo-contents"),
        ("subdest3/bar", "foo-contents"),
        ("all/foo.go", "foo-contents"),
        ("subdest4/dir2/foo", "foo-contents"),
        ("subdest5/dir2/foo", "foo-contents"),
        ("subdest6/dir2/foo", "foo-contents"),
    ];
    assert_contents(&out, &expected);
}

/// testCopySymlinks, testCopyFollowAllSymlinks, testCopyThroughSymlinkContext:
/// a source that is a link, or a wildcard match that is one, is copied as
/// what it points to (through chains of links); links in the middle of a
/// source path are followed inside the context.
#[test]
fn copy_symlinks() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\nCOPY dir/sub followed\nCOPY link/inner .\n",
            ),
            ("bar", "bar-contents"),
            ("sub/lfile", "lfile-contents"),
            ("sub/subfile", "subfile-contents"),
            ("sub/baz", "baz-contents"),
            ("real/inner", "contents"),
        ],
    );
    let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, ctx.join(at)).unwrap();
    link("bar", "foo");
    link("subfile", "sub/l0");
    link("second", "sub/l1");
    link("baz", "sub/second");
    fs::create_dir(ctx.join("dir")).unwrap();
    link("../bar", "dir/sub");
    link("real", "link");
    let (_, out) = build_local(&env, "ctx", &[]);
    let expected = [
        ("foo", "bar-contents"),
        ("alllinks/l0", "subfile-contents"),
        ("alllinks/lfile", "lfile-contents"),
        ("alllinks/l1", "baz-contents"),
        ("followed", "bar-contents"),
        ("inner", "contents"),
    ];
    for (path, want) in expected {
        let meta = fs::symlink_metadata(out.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(meta.is_file(), "{path} is a copy of what the link points to, not a link");
        assert_eq!(fs::read_to_string(out.join(path)).unwrap(), want, "{path}");
    }
}

/// testCopyThroughSymlinkMultiStage: links in a `--from` source path,
/// absolute and relative, resolve inside the stage.
#[test]
fn copy_through_symlink_multi_stage() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS build\n\
RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n data > /sub/foo\n\
FROM scratch\nCOPY --from=build /sub/foo .\nCOPY --from=build /sub2/foo bar\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("foo")).unwrap(), "data");
    assert_eq!(fs::read_to_string(out.join("bar")).unwrap(), "data");
}

/// testCopyOverrideFiles: copying the same directory or file twice onto
/// itself is no error and keeps the content.
#[test]
fn copy_override_files() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY sub sub\nCOPY sub sub\nCOPY files/foo.go dest/foo.go\n\
COPY files/foo.go dest/foo.go\nCOPY files dest\n",
            ),
            ("sub/dir1/dir2/foo", "foo-contents"),
            ("files/foo.go", "foo.go-contents"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("sub/dir1/dir2/foo", "foo-contents"), ("dest/foo.go", "foo.go-contents")]);
}

/// testCopyVarSubstitution, testCopyRelative: sources expand variables;
/// relative destinations resolve against WORKDIR (`./`, `../`, `.`).
#[test]
fn copy_var_substitution_and_relative_destinations() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nENV FOO=bar\nCOPY $FOO /baz\n\
WORKDIR /test1\nWORKDIR test2\nRUN [ \"$PWD\" = /test1/test2 ]\nCOPY foo ./\nADD foo ./bar/baz\n\
COPY foo ./bar/baz2\nWORKDIR ..\nCOPY foo ./\nCOPY foo /test3/\nWORKDIR /test4\nCOPY . .\n\
WORKDIR /test5/test6\nCOPY foo ../\n",
            ),
            ("foo", "hello"),
            ("bar", "bar-contents"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[
            ("baz", "bar-contents"),
            ("test1/test2/foo", "hello"),
            ("test1/test2/bar/baz", "hello"),
            ("test1/test2/bar/baz2", "hello"),
            ("test1/foo", "hello"),
            ("test3/foo", "hello"),
            ("test4/foo", "hello"),
            ("test5/foo", "hello"),
        ],
    );
}

/// testCopyUnicodePath: names with non-ASCII letters, `%` escapes and `+`
/// are taken literally.
#[test]
fn copy_unicode_path() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let names = [("test-äöü.txt", "foo"), ("test-%C3%A4%C3%B6%C3%BC.txt", "bar"), ("test+aou.txt", "baz")];
    let dockerfile: String = std::iter::once("FROM scratch\n".to_string())
        .chain(names.iter().map(|(n, _)| format!("COPY {n} /\n")))
        .collect();
    let mut files = vec![("Dockerfile", dockerfile.as_str())];
    files.extend(names);
    env.context("ctx", &files);
    let (_, out) = build_local(&env, "ctx", &[]);
    for (name, content) in names {
        assert_eq!(fs::read_to_string(out.join(name)).unwrap(), content, "{name}");
    }
}

/// testCopyWildcardCache: a wildcard COPY is cached by what it matched: a
/// later change to another file keeps the steps before it, a change to a
/// matched file reruns them.
#[test]
fn copy_wildcard_cache() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local AS base\nCOPY foo* files/\n\
RUN head -c 100 /dev/urandom | sha256sum > /unique\nCOPY bar files/\n\
FROM scratch\nCOPY --from=base /unique /\n",
            ),
            ("foo1", "foo1-data"),
            ("foo2", "foo2-data"),
            ("bar", "bar-data"),
        ],
    );
    let unique = |env: &Env| fs::read_to_string(build_local(env, "ctx", &[]).1.join("unique")).unwrap();
    let first = unique(&env);
    fs::write(ctx.join("bar"), "bar-data-mod").unwrap();
    assert_eq!(unique(&env), first, "bar is copied after the RUN: the RUN stays cached");
    fs::write(ctx.join("foo2"), "foo2-data-mod").unwrap();
    assert_ne!(unique(&env), first, "foo2 is matched by foo*: the RUN reruns");
}

/// testCopyChownCreateDest: `--chown` with names, also from ARG and ENV,
/// owns the destination directory COPY creates.
#[test]
fn copy_chown_create_dest() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nARG group\nENV owner=user01\n\
RUN echo 'user:x:2001:2001::/home/user:/bin/sh' >> /etc/passwd && echo 'user01:x:2002:2001::/:/bin/sh' >> /etc/passwd \
&& echo 'user:x:2001:' >> /etc/group\n\
COPY --chown=user:user . /dest\nCOPY --chown=${owner}:${group} . /dest01\n",
    );
    let (_, out) = build_local(&env, "ctx", &["--build-arg", "group=user"]);
    assert_eq!(owner(&out, "dest"), "2001:2001");
    assert_eq!(owner(&out, "dest01"), "2002:2001");
    assert_eq!(owner(&out, "dest01/Dockerfile"), "2002:2001");
}

/// testCopySocket: a socket in the context arrives as an empty regular file.
#[test]
fn copy_socket() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.dockerfile("ctx", "FROM scratch\nCOPY . /\n");
    let _listener = std::os::unix::net::UnixListener::bind(ctx.join("socket.sock")).unwrap();
    let (_, out) = build_local(&env, "ctx", &[]);
    let meta = fs::symlink_metadata(out.join("socket.sock")).expect("the socket is copied");
    assert!(meta.is_file() && meta.len() == 0, "a regular empty file: {meta:?}");
}

/// testCopyChown, testDockerfileAddChownExpand: `--chown` by name (the
/// user's group too), by `uid:group`, and from ENV and ARG values, on files
/// and the contents of a copied directory, for COPY and ADD.
#[test]
fn copy_chown() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox:local\n\
RUN echo 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' >> /etc/passwd && echo 'daemon:x:1:' >> /etc/group\n\
ENV owner 1000\nCOPY --chown=daemon foo /\nCOPY --chown=1000:nogroup bar /baz\n\
ARG group\nCOPY --chown=${owner}:${group} foo /foobis\nADD --chown=${owner}:${group} foo /added\n",
            ),
            ("foo", "foo-contents"),
            ("bar/sub", ""),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &["--build-arg", "group=nogroup"]);
    assert_eq!(owner(&out, "foo"), "1:1");
    assert_eq!(owner(&out, "baz/sub"), "1000:65534");
    assert_eq!(owner(&out, "foobis"), "1000:65534");
    assert_eq!(owner(&out, "added"), "1000:65534", "ADD expands --chown the same way");
}

/// testChmodNonOctal: a symbolic `--chmod` gives what chmod(1) gives the
/// same file or directory (busybox's chmod is the reference here).
#[test]
fn chmod_non_octal() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let cases = [
        ("file", "f1", "go-w"),
        ("file", "f2", "u=rw,g=r,o=r"),
        ("file", "f3", "a+X"),
        ("dir", "d1", "go-w"),
        ("dir", "d2", "u+rw,g+r,o-x,o+w"),
        ("dir", "d3", "a+X"),
    ];
    let mut df = String::from(
        "FROM busybox:local AS base\n\
RUN mkdir /input /expected && touch /input/file && chmod 666 /input/file && mkdir /input/dir && chmod 124 /input/dir\n",
    );
    let mut copies = String::from("FROM scratch AS result\n");
    for (src, dst, mode) in cases {
        if src == "dir" {
            // COPY copies a directory's contents: nest it once.
            df.push_str(&format!(
                "RUN mkdir -p /input/dirs/{dst} && cp -a /input/dir /input/dirs/{dst}/{dst}\n"
            ));
            df.push_str(&format!(
                "RUN cp -a /input/dirs/{dst}/. /expected/ && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!("COPY --from=base --chmod={mode} /input/dirs/{dst} /\n"));
        } else {
            df.push_str(&format!("RUN cp -a /input/{src} /expected/{dst} && chmod {mode} /expected/{dst}\n"));
            copies.push_str(&format!("COPY --from=base --chmod={mode} /input/{src} /{dst}\n"));
        }
    }
    df.push_str(&copies);
    df.push_str("FROM base\nCOPY --from=result / /actual/\n");
    for (_, dst, _) in cases {
        df.push_str(&format!(
            "RUN [ \"$(stat -c %A /actual/{dst})\" = \"$(stat -c %A /expected/{dst})\" ]\n"
        ));
    }
    env.dockerfile("ctx", &df);
    let run = env.rbuild(&["build", "--progress", "plain", "ctx"]);
    assert_eq!(run.code, 0, "a mode differs from chmod's:\n{}", run.stderr);
}

/// testCopyInvalidChmod, testAddInvalidChmod: a `--chmod` that starts
/// like a number but is no octal mode up to 07777 is an error in BuildKit's
/// words, at the line.
#[test]
fn copy_invalid_chmod() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for (keyword, value) in [("COPY", "64a"), ("COPY", "10000"), ("ADD", "64a")] {
        env.context(
            "ctx",
            &[("Dockerfile", &format!("FROM scratch\n{keyword} --chmod={value} foo /\n")), ("foo", "x")],
        );
        let run = env.rbuild(&["build", "ctx"]).failed();
        let want =
            format!("invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777");
        assert!(run.stderr.contains(&want) && run.stderr.contains("Dockerfile:2"), "{}", run.stderr);
    }
}

/// testDockerfileCopyFromArgs: `--from` takes no variables; the error says
/// how to get the same effect.
#[test]
fn copy_from_args() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM scratch\nCOPY --from=$FOO . .\n");
    let run = env.rbuild(&["build", "ctx"]).failed();
    assert!(run.stderr.contains("variable expansion is not supported for --from"), "{}", run.stderr);
    assert!(run.stderr.contains("Dockerfile:2"), "{}", run.stderr);
}

/// testSymlinkDestination: a destination through a link an archive
/// planted (relative, pointing out of the root) lands inside the image
/// where the link leads.
#[test]
fn symlink_destination() {
    require!(root(), busybox_static(), tool("tar"));
    let env = Env::with_busybox();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n"), ("foo", "content0")],
    );
    sh(&format!(
        "cd {} && ln -s ../tmp/symlink-target symlink && tar -cf t.tar symlink && rm symlink",
        ctx.display()
    ));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("tmp/symlink-target/foo", "content0")]);
}
