//! Conformance with BuildKit's ARG tests (`dockerfile_args_test.go`): the
//! predefined args a stage can declare.

use std::fs;

use crate::harness::*;

/// testTargetStageNameArg: `ARG TARGETSTAGE` holds the name of the stage
/// being built (the `--target`, else the last stage's name, else
/// `default`), whichever stage declares it; undeclared it is empty.
#[test]
fn target_stage_name_arg() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let stages = "FROM busybox:local AS base\nWORKDIR /out\n\
RUN echo -n \"value:$TARGETSTAGE\" > /out/first\n\
ARG TARGETSTAGE\nRUN echo -n \"value:$TARGETSTAGE\" > /out/second\n\
FROM scratch AS foo\nCOPY --from=base /out/ /\n\
FROM scratch\nCOPY --from=base /out/ /\n";
    env.dockerfile("ctx", stages);
    let read = |out: &std::path::Path, name: &str| fs::read_to_string(out.join(name)).unwrap();
    let (_, out) = build_local(&env, "ctx", &["--target", "foo"]);
    assert_eq!((read(&out, "first"), read(&out, "second")), ("value:".into(), "value:foo".into()));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(read(&out, "second"), "value:default", "an unnamed last stage");
    env.dockerfile("ctx", &format!("{stages}FROM scratch AS final\nCOPY --from=base /out/ /\n"));
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(read(&out, "second"), "value:final", "the last stage's name");
}

/// Builds `dockerfile` with the build args given and returns `/out` of the
/// result (`FROM busybox` names the test's busybox image).
fn out_with_args(env: &Env, dockerfile: &str, args: &[(&str, &str)]) -> String {
    env.dockerfile("args", dockerfile);
    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut extra = Vec::new();
    for p in &pairs {
        extra.extend(["--build-arg", p.as_str()]);
    }
    let (_, out) = build_local(env, "args", &extra);
    fs::read_to_string(out.join("out")).unwrap()
}

/// An env whose store also calls the busybox image `busybox` (`:latest`),
/// the name BuildKit's tests use.
fn env_with_busybox_name() -> Env {
    let env = Env::with_busybox();
    env.rbuild(&["tag", "busybox:local", "busybox"]).ok();
    env
}

/// testGlobalArg, testMultiArgs, testQuotedMetaArgs: global args in FROM
/// (overridden by a build arg), several per line, quoted, referring to one
/// another, and redeclared in a stage to take their global value.
#[test]
fn global_and_meta_args() {
    require!(root(), busybox_static());
    let env = env_with_busybox_name();
    let global = "ARG tag=nosuchtag\nFROM busybox:${tag}\nRUN echo -n ok > /out\n";
    assert_eq!(out_with_args(&env, global, &[("tag", "local")]), "ok");
    let multi = "ARG a1=\"foo bar\" a2=box\nARG a3=\"$a2-foo\"\nFROM busy$a2 AS build\n\
ARG a3 a4=\"123 456\" a1\nRUN echo -n \"$a1:$a3:$a4\" > /out\n";
    assert_eq!(out_with_args(&env, multi, &[]), "foo bar:box-foo:123 456");
    let quoted = "ARG a1=\"box\"\nARG a2=\"$a1-foo\"\nFROM busy$a1 AS build\nARG a2\n\
ARG a3=\"bar-$a2\"\nRUN echo -n $a3 > /out\n";
    assert_eq!(out_with_args(&env, quoted, &[]), "bar-box-foo");
}

/// testGlobalArgErrors, testArgDefaultExpansion: `${VAR:?message}` in an
/// ARG default fails the build with the message, in the global scope and
/// in a stage, unless a build arg gives the value (of the variable, or of
/// the ARG itself, whose default is then never expanded).
#[test]
fn arg_default_errors() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    for (dockerfile, line) in [
        ("ARG FOO=${FOO:?\"custom error\"}\nFROM busybox:local\n", "Dockerfile:1"),
        ("FROM busybox:local\nARG FOO\nARG BAR=${FOO:?\"custom error\"}\n", "Dockerfile:3"),
    ] {
        env.dockerfile("ctx", dockerfile);
        let run = env.rbuild(&["build", "ctx"]).failed();
        assert!(run.stderr.contains("FOO") && run.stderr.contains("custom error"), "{}", run.stderr);
        assert!(run.stderr.contains(line), "the error names {line}: {}", run.stderr);
        env.rbuild(&["build", "--build-arg", "FOO=bar", "ctx"]).ok();
    }
    env.rbuild(&["build", "--build-arg", "BAR=123", "ctx"]).ok();
}

/// testDefaultEnvWithArgs: ARG values in ENV with `${:-}` and `%%`
/// expansion, and in a RUN command line; an empty build arg counts as
/// unset for `:-`.
#[test]
fn default_env_with_args() {
    require!(root(), busybox_static());
    let env = env_with_busybox_name();
    let ctx = env.context(
        "args",
        &[
            (
                "Dockerfile",
                "ARG image=idlebox\nFROM busy${image#idle} AS build\nARG my_arg\n\
ENV my_arg \"my_arg=${my_arg:-def_val}\"\nENV my_trimmed_arg \"${my_arg%%e*}\"\n\
COPY myscript.sh myscript.sh\nRUN ./myscript.sh $my_arg $my_trimmed_arg\n",
            ),
            ("myscript.sh", "#!/bin/sh\necho -n $my_arg $* > /out\n"),
        ],
    );
    fs::set_permissions(ctx.join("myscript.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    for (given, want) in [
        (None, "my_arg=def_val my_arg=def_val my_arg=d"),
        (Some(""), "my_arg=def_val my_arg=def_val my_arg=d"),
        (Some("override"), "my_arg=override my_arg=override my_arg=ov"),
    ] {
        let arg = given.map(|v| format!("my_arg={v}"));
        let extra: Vec<&str> = arg.iter().flat_map(|a| ["--build-arg", a.as_str()]).collect();
        let (_, out) = build_local(&env, "args", &extra);
        assert_eq!(fs::read_to_string(out.join("out")).unwrap(), want, "my_arg given as {given:?}");
    }
}

/// testEmptyStringArgInEnv, testEnvEmptyFormatting: an ARG declared with
/// an empty default is in RUN's environment, one without a value is not;
/// `%s` in an ENV value is plain text.
#[test]
fn empty_args_and_env_formatting() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let out = out_with_args(
        &env,
        "FROM busybox:local\nARG FOO\nARG BAR=\nENV myenv foo%sbar\nRUN env > /out && [ \"$myenv\" = 'foo%sbar' ]\n",
        &[],
    );
    assert!(out.lines().any(|l| l == "BAR="), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("FOO=")), "{out}");
}

/// testBuiltinArgs: proxy build args reach RUN undeclared (either
/// spelling), declared args take build args or defaults, and a changed
/// proxy value alone keeps the step cached.
#[test]
fn builtin_args() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "FROM busybox:local\nARG FOO\nARG BAR\nARG BAZ=bazcontent\n\
RUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out\n";
    let args = [("FOO", "foocontents"), ("http_proxy", "hpvalue"), ("NO_PROXY", "npvalue")];
    assert_eq!(out_with_args(&env, dockerfile, &args), "hpvalue::npvalue::foocontents::::bazcontent");
    let args = [("FOO", "foocontents"), ("http_proxy", "hpvalue2")];
    assert_eq!(
        out_with_args(&env, dockerfile, &args),
        "hpvalue::npvalue::foocontents::::bazcontent",
        "proxies are not part of the cache key"
    );
    let args = [("FOO", "foocontents2"), ("http_proxy", "hpvalue2")];
    assert_eq!(out_with_args(&env, dockerfile, &args), "hpvalue2::::foocontents2::::bazcontent");
}

/// testPlatformArgsImplicit: `TARGETOS` names a stage in FROM without
/// being declared.
#[test]
fn platform_args_implicit() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS build-linux\nCOPY foo bar\nFROM build-${TARGETOS}\nCOPY foo2 bar2\n",
            ),
            ("foo", "d0"),
            ("foo2", "d1"),
        ],
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_contents(&out, &[("bar", "d0"), ("bar2", "d1")]);
}
