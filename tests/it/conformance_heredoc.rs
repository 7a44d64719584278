//! Conformance with BuildKit's heredoc tests (`dockerfile_heredoc_test.go`).

use std::fs;

use crate::harness::*;

/// testOnBuildHeredoc: an `ONBUILD RUN <<EOF` trigger is stored with its
/// body and runs in a stage built on the image. (BuildKit pushes the base
/// to a registry; rbuild's store holds it just as well.)
#[test]
fn on_build_heredoc() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("base", "FROM busybox:local\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n");
    env.rbuild(&["build", "-q", "-t", "onbuild-heredoc:base", "base"]).ok();
    let onbuild = env.rbuild(&["inspect", "-f", "{{json .Config.OnBuild}}", "onbuild-heredoc:base"]).ok();
    assert_eq!(onbuild.stdout.trim(), r#"["RUN <<EOF\necho \"hello world\" >> /dest\nEOF"]"#);
    env.dockerfile(
        "child",
        "FROM onbuild-heredoc:base AS base\nFROM scratch\nCOPY --from=base /dest /dest\n",
    );
    let (_, out) = build_local(&env, "child", &[]);
    assert_eq!(fs::read_to_string(out.join("dest")).unwrap(), "hello world\n");
}

/// testCopyHeredocSpecialSymbols: in a COPY heredoc, quotes are text and a
/// backslash escapes `\` and `$` unless the delimiter is quoted, which keeps
/// the body as written.
#[test]
fn copy_heredoc_special_symbols() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM scratch\nCOPY <<EOF quotefile\n\"quotes in file\"\nEOF\n\
COPY <<EOF slashfile1\n\\\nEOF\nCOPY <<EOF slashfile2\n\\\\\nEOF\nCOPY <<EOF slashfile3\n\\$\nEOF\n\
COPY <<\"EOF\" rawslashfile1\n\\\nEOF\nCOPY <<\"EOF\" rawslashfile2\n\\\\\nEOF\nCOPY <<\"EOF\" rawslashfile3\n\\$\nEOF\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(
        &out,
        &[
            ("quotefile", "\"quotes in file\"\n"),
            ("slashfile1", "\n"),
            ("slashfile2", "\\\n"),
            ("slashfile3", "$\n"),
            ("rawslashfile1", "\\\n"),
            ("rawslashfile2", "\\\\\n"),
            ("rawslashfile3", "\\$\n"),
        ],
    );
}

/// testRunFakeHeredoc: with a SHELL that is no shell, a RUN heredoc is the
/// program text that SHELL runs.
#[test]
fn run_fake_heredoc() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local AS build\nSHELL [\"/bin/awk\"]\nRUN <<EOF\nBEGIN {\n\tprint \"foo\" > \"/dest\"\n}\nEOF\n\
FROM scratch\nCOPY --from=build /dest /dest\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("dest", "foo\n")]);
}
