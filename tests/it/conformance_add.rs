//! Conformance with BuildKit's ADD tests (`dockerfile_add_test.go`) for
//! local archives: parents the archive leaves out, `--chown`, wildcards.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::harness::*;

/// testDockerfileAddArchiveWithImpliedParentDir: an archive without an
/// entry for a parent (`etc/` of `etc/dnf/dnf.conf`) extracts.
/// testDockerfileAddArchiveWildcard: a wildcard naming two archives
/// extracts both into the destination.
#[test]
fn add_archive_implied_parent_and_wildcard() {
    require!(root(), busybox_static(), tool("tar"));
    let env = Env::with_busybox();
    let ctx = env.dockerfile("ctx", "FROM scratch\nADD t.tar.gz /\nADD *.tar /dest\n");
    sh(&format!(
        "cd {} && mkdir -p t/etc/dnf a b && echo -n content0 > t/etc/dnf/dnf.conf && tar -C t -czf t.tar.gz etc/dnf \
&& echo -n content0 > a/foo && echo -n content1 > b/bar && tar -C a -cf t.tar foo && tar -C b -cf b.tar bar && rm -r t a b",
        ctx.display()
    ));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[("etc/dnf/dnf.conf", "content0"), ("dest/foo", "content0"), ("dest/bar", "content1")],
    );
}

/// testDockerfileAddChownArchive: `ADD --chown` owns what the archive
/// holds and the destination directory it creates.
#[test]
fn add_chown_archive() {
    require!(root(), busybox_static(), tool("tar"));
    let env = Env::with_busybox();
    let ctx = env.dockerfile("ctx", "FROM scratch\nADD --chown=100:200 t.tar /out/\n");
    sh(&format!("cd {} && echo -n content0 > foo && tar -cf t.tar foo && rm foo", ctx.display()));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("out/foo", "content0")]);
    for p in ["out/foo", "out"] {
        let m = fs::symlink_metadata(out.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (100, 200), "/{p}");
    }
}
