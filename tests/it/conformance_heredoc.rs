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

/// Builds `dockerfile` (a `build` stage writing under `/dest`, exported by
/// a last stage) and returns the exported tree.
fn dest_of(env: &Env, dockerfile: &str) -> std::path::PathBuf {
    env.dockerfile("ctx", &format!("{dockerfile}FROM scratch\nCOPY --from=build /dest /\n"));
    build_local(env, "ctx", &[]).1
}

/// testCopyHeredoc: COPY heredocs to a file and, several, into a
/// directory (named by their delimiters), with `--chmod` and `--chown`.
#[test]
fn copy_heredoc() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = dest_of(
        &env,
        "FROM busybox:local AS build\n\
RUN echo 'user:x:2001:2001::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:2001:' >> /etc/group\n\
WORKDIR /dest\nCOPY <<EOF single\nsingle file\nEOF\nCOPY <<EOF <<EOF2 double/\nfirst file\nEOF\nsecond file\nEOF2\n\
RUN mkdir -p /permfiles\nCOPY --chmod=777 <<EOF /permfiles/all\ndummy content\nEOF\n\
COPY --chmod=0644 <<EOF /permfiles/rw\ndummy content\nEOF\nCOPY --chown=user:user <<EOF /permfiles/owned\ndummy content\nEOF\n\
RUN stat -c %04a /permfiles/all >> perms && stat -c %04a /permfiles/rw >> perms && stat -c %U:%G /permfiles/owned >> perms\n",
    );
    assert_contents(
        &out,
        &[
            ("single", "single file\n"),
            ("double/EOF", "first file\n"),
            ("double/EOF2", "second file\n"),
            ("perms", "0777\n0644\nuser:user\n"),
        ],
    );
}

/// testHeredocIndent: `<<EOF` keeps leading tabs and `<<-EOF` strips them,
/// in COPY and RUN heredocs, scripts with `#!` and heredocs given to a
/// command.
#[test]
fn heredoc_indent() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = dest_of(
        &env,
        "FROM busybox:local AS build\n\
COPY <<EOF /dest/foo-copy\n\tfoo\nEOF\nCOPY <<-EOF /dest/bar-copy\n\tbar\nEOF\n\
RUN <<EOF\necho \"\n\tfoo\" > /dest/foo-run\nEOF\nRUN <<-EOF\necho \"\n\tbar\" > /dest/bar-run\nEOF\n\
RUN <<EOF\n#!/bin/sh\necho \"\n\tfoo\" > /dest/foo2-run\nEOF\nRUN <<-EOF\n#!/bin/sh\necho \"\n\tbar\" > /dest/bar2-run\nEOF\n\
RUN <<EOF sh > /dest/foo3-run\necho \"\n\tfoo\"\nEOF\nRUN <<-EOF sh > /dest/bar3-run\necho \"\n\tbar\"\nEOF\n",
    );
    assert_contents(
        &out,
        &[
            ("foo-copy", "\tfoo\n"),
            ("foo-run", "\n\tfoo\n"),
            ("foo2-run", "\n\tfoo\n"),
            ("foo3-run", "\n\tfoo\n"),
            ("bar-copy", "bar\n"),
            ("bar-run", "\nbar\n"),
            ("bar2-run", "\nbar\n"),
            ("bar3-run", "\nbar\n"),
        ],
    );
}

/// testHeredocVarSubstitution: an unquoted COPY heredoc expands build
/// variables (quotes inside are text), a quoted delimiter keeps `${name}`;
/// RUN heredocs leave expansion to the shell, which may shadow the arg.
#[test]
fn heredoc_var_substitution() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = dest_of(
        &env,
        "FROM busybox:local AS build\nARG name=world\n\
COPY <<EOF /dest/c1\nHello ${name}!\nEOF\nCOPY <<'EOF' /dest/c2\nHello ${name}!\nEOF\nCOPY <<\"EOF\" /dest/c3\nHello ${name}!\nEOF\n\
COPY <<EOF /dest/q1\nHello '${name}'!\nEOF\nCOPY <<EOF /dest/q2\nHello \"${name}\"!\nEOF\n\
COPY <<'EOF' /dest/qsingle1\nHello '${name}'!\nEOF\nCOPY <<'EOF' /dest/qsingle2\nHello \"${name}\"!\nEOF\n\
COPY <<\"EOF\" /dest/qdouble1\nHello '${name}'!\nEOF\nCOPY <<\"EOF\" /dest/qdouble2\nHello \"${name}\"!\nEOF\n\
RUN <<EOF\ngreeting=\"Hello\"\necho \"${greeting} ${name}!\" > /dest/r1\nEOF\n\
RUN <<EOF\nname=\"new world\"\necho \"Hello ${name}!\" > /dest/r2\nEOF\n",
    );
    assert_contents(
        &out,
        &[
            ("c1", "Hello world!\n"),
            ("c2", "Hello ${name}!\n"),
            ("c3", "Hello ${name}!\n"),
            ("q1", "Hello 'world'!\n"),
            ("q2", "Hello \"world\"!\n"),
            ("qsingle1", "Hello '${name}'!\n"),
            ("qsingle2", "Hello \"${name}\"!\n"),
            ("qdouble1", "Hello '${name}'!\n"),
            ("qdouble2", "Hello \"${name}\"!\n"),
            ("r1", "Hello world!\n"),
            ("r2", "Hello new world!\n"),
        ],
    );
}

/// testRunComplexHeredoc: several heredocs on one RUN line, piped, and
/// heredocs on other file descriptors (`3<<IN1`) read by the program.
#[test]
fn run_complex_heredoc() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = dest_of(
        &env,
        "FROM busybox:local AS build\nWORKDIR /dest\n\
RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\\n\tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2\n\
hello WORLD\nEOF1\nHELLO world\nEOF2\n\
RUN <<EOF 3<<IN1 4<<IN2 awk -f -\nBEGIN {\n\twhile ((getline line < \"/proc/self/fd/3\") > 0)\n\
\t\tprint tolower(line) > \"./fd3\"\n\twhile ((getline line < \"/proc/self/fd/4\") > 0)\n\
\t\tprint toupper(line) > \"./fd4\"\n}\nEOF\nhello WORLD\nIN1\nHELLO world\nIN2\n",
    );
    assert_contents(
        &out,
        &[
            ("out1", "hello world\n"),
            ("out2", "HELLO WORLD\n"),
            ("fd3", "hello world\n"),
            ("fd4", "HELLO WORLD\n"),
        ],
    );
}
