//! Lowering checked against BuildKit's rules: which words are expanded,
//! the build environment (ARG and ENV), scoping, heredocs, flags, errors
//! with positions, and Dockerfiles reproducing the constructs of real
//! projects (official images, BuildKit's own, toolchains).

use std::collections::BTreeMap;

use rbuild_frontend::graph::*;
use rbuild_frontend::lower::{BaseResolver, LowerOptions, ResolveError, lower};
use rbuild_frontend::parser::parse;

/// Every image exists; `onbuild:base` carries ONBUILD triggers and an ENV.
struct Images;

impl BaseResolver for Images {
    fn resolve(
        &mut self,
        reference: &str,
        _platform: &rbuild_frontend::graph::Platform,
    ) -> Result<ImageMeta, ResolveError> {
        let mut meta = ImageMeta::default();
        if reference == "onbuild:base" {
            meta.onbuild = vec!["COPY app.txt /app/".into(), "RUN echo triggered".into()];
            meta.env = vec![("PATH".into(), "/bin".into()), ("BASE".into(), "b".into())];
            meta.cmd = Some(vec!["base-cmd".into()]);
        }
        Ok(meta)
    }
}

fn lower_with(src: &str, args: &[(&str, &str)], target: Option<&str>) -> Result<StepGraph, String> {
    let ast = parse(src).map_err(|e| e.message)?;
    let opts = LowerOptions {
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        target: target.map(str::to_string),
        ..LowerOptions::default()
    };
    lower(&ast, &opts, &mut Images).map_err(|e| e.render("Dockerfile", src))
}

fn graph(src: &str) -> StepGraph {
    lower_with(src, &[], None).unwrap_or_else(|e| panic!("{e}"))
}

fn target(g: &StepGraph) -> &Stage {
    &g.stages[g.target]
}

fn runs(stage: &Stage) -> Vec<&RunOp> {
    stage.steps.iter().filter_map(|s| if let Op::Run(r) = &s.op { Some(r) } else { None }).collect()
}

fn copies(stage: &Stage) -> Vec<&CopyOp> {
    stage.steps.iter().filter_map(|s| if let Op::Copy(c) = &s.op { Some(c) } else { None }).collect()
}

fn env_of<'a>(run: &'a RunOp, key: &str) -> Option<&'a str> {
    run.env.iter().rev().find_map(|kv| kv.strip_prefix(&format!("{key}=")))
}

#[test]
fn run_cmd_entrypoint_are_not_expanded_but_env_label_workdir_user_are() {
    let g = graph(
        "FROM img\nARG V=1.0\nENV HOME_DIR=/opt/$V NAME=\"a b\"\nLABEL version=$V \"x y\"=z\nWORKDIR $HOME_DIR\nWORKDIR sub\nUSER u$V\nARG P=53\nEXPOSE $P/udp 8000-8001\nVOLUME /data/$V\nSTOPSIGNAL SIG${V:+TERM}\nRUN echo $V\nCMD echo $V\nENTRYPOINT [\"echo\", \"$V\"]\nMAINTAINER me $V\nHEALTHCHECK CMD echo $V\n",
    );
    let s = target(&g);
    let m = &s.meta;
    assert_eq!(m.env_get("HOME_DIR"), Some("/opt/1.0"));
    assert_eq!(m.env_get("NAME"), Some("a b"));
    assert_eq!(m.labels.get("version").map(String::as_str), Some("1.0"));
    assert_eq!(m.labels.get("x y").map(String::as_str), Some("z"));
    assert_eq!(m.workdir, "/opt/1.0/sub");
    assert_eq!(m.user, "u1.0");
    assert!(m.exposed_ports.contains("53/udp"), "{:?}", m.exposed_ports);
    assert!(m.exposed_ports.contains("8000/tcp") && m.exposed_ports.contains("8001/tcp"));
    assert!(m.volumes.contains("/data/1.0"));
    assert_eq!(m.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(runs(s)[0].argv, vec!["/bin/sh", "-c", "echo $V"], "the shell expands RUN, not the frontend");
    assert_eq!(m.entrypoint.as_deref(), Some(&["echo".to_string(), "$V".to_string()][..]));
    assert_eq!(m.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo $V"], "a CMD of the same stage stays");
    assert_eq!(m.maintainer.as_deref(), Some("me $V"));
    assert_eq!(m.healthcheck.as_ref().unwrap().test, vec!["CMD-SHELL", "echo $V"]);
}

#[test]
fn cmd_set_in_the_stage_survives_entrypoint_but_an_inherited_one_does_not() {
    let g = graph("FROM onbuild:base\nENTRYPOINT [\"run\"]\n");
    assert_eq!(target(&g).meta.cmd, None, "ENTRYPOINT resets the base image's CMD");
    let g = graph("FROM img\nCMD [\"a\"]\nENTRYPOINT [\"run\"]\n");
    assert_eq!(target(&g).meta.cmd.as_deref(), Some(&["a".to_string()][..]));
    let g = graph(
        "FROM img\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN false | true\nCMD serve\n",
    );
    let s = target(&g);
    assert_eq!(runs(s)[0].argv, vec!["/bin/bash", "-eo", "pipefail", "-c", "false | true"]);
    assert_eq!(s.meta.cmd.as_deref().unwrap(), &["/bin/bash", "-eo", "pipefail", "-c", "serve"]);
}

#[test]
fn arg_scoping_defaults_build_args_and_global_values() {
    let src = "ARG BASE=img\nARG VERSION=1\nFROM ${BASE}:${VERSION} AS one\nRUN echo\nARG VERSION\nARG LOCAL=x-$VERSION\nRUN echo\nFROM one AS two\nRUN echo\n";
    let g = graph(src);
    let one = &g.stages[0];
    assert_eq!(one.base, Base::Image("img:1".into()));
    let r = runs(one);
    assert_eq!(env_of(r[0], "VERSION"), None, "a global ARG is not visible in a stage until declared");
    assert_eq!(env_of(r[1], "VERSION"), Some("1"), "ARG NAME takes the global value");
    assert_eq!(env_of(r[1], "LOCAL"), Some("x-1"));
    assert_eq!(env_of(runs(&g.stages[1])[0], "LOCAL"), Some("x-1"), "a stage FROM a stage inherits its args");
    let g = lower_with(src, &[("VERSION", "2"), ("LOCAL", "cli")], None).unwrap();
    assert_eq!(g.stages[0].base, Base::Image("img:2".into()));
    assert_eq!(env_of(runs(&g.stages[0])[1], "LOCAL"), Some("cli"), "--build-arg beats the default");
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
}

#[test]
fn arg_and_env_share_one_build_environment_later_wins() {
    let g = graph("FROM img\nENV A=env\nARG A=arg\nRUN one\nENV A=env2\nRUN two\nENV B=$A C=x\n");
    let s = target(&g);
    assert_eq!(env_of(runs(s)[0], "A"), Some("arg"));
    assert_eq!(env_of(runs(s)[1], "A"), Some("env2"));
    assert_eq!(s.meta.env_get("A"), Some("env2"), "ARG never reaches the image config");
    assert_eq!(s.meta.env_get("B"), Some("env2"));
    let g = graph("FROM img\nENV abc=hello\nENV abc=bye def=$abc\n");
    assert_eq!(
        target(&g).meta.env_get("def"),
        Some("hello"),
        "ENV values see the env before the instruction"
    );
}

#[test]
fn platform_args_in_global_scope_and_by_declaration() {
    let g =
        graph("ARG P=$TARGETPLATFORM\nFROM --platform=$BUILDPLATFORM img\nARG TARGETARCH\nARG P\nRUN x\n");
    let r = runs(target(&g))[0];
    let host = rbuild_frontend::lower::Platform::host();
    assert_eq!(env_of(r, "TARGETARCH"), Some(host.architecture.as_str()));
    assert_eq!(env_of(r, "P"), Some(host.spec().as_str()));
    assert_eq!(env_of(r, "BUILDOS"), None, "undeclared platform args stay out of RUN");
    let e = lower_with("FROM --platform=windows/arm64 img\n", &[], None).unwrap_err();
    assert!(
        e.contains("Dockerfile:1:")
            && e.contains("unknown operating system \"windows\"")
            && e.contains("hint:"),
        "{e}"
    );
}

#[test]
fn proxy_args_reach_run_but_not_its_key_fields_or_history() {
    let g = lower_with("FROM img\nRUN x\n", &[("HTTP_PROXY", "http://p:3128"), ("no_proxy", "local")], None)
        .unwrap();
    let step = target(&g).steps.iter().find(|s| matches!(s.op, Op::Run(_))).unwrap();
    let Op::Run(r) = &step.op else { unreachable!() };
    assert!(r.env.iter().all(|e| !e.to_ascii_lowercase().contains("proxy")), "{:?}", r.env);
    assert!(r.proxy_env.contains(&"HTTP_PROXY=http://p:3128".to_string()));
    assert!(r.proxy_env.contains(&"http_proxy=http://p:3128".to_string()));
    assert!(r.proxy_env.contains(&"NO_PROXY=local".to_string()));
    assert!(!step.created_by.contains("proxy"), "{}", step.created_by);
    assert!(g.warnings.is_empty(), "proxy args never warn as unused: {:?}", g.warnings);
    let g = lower_with("FROM img\nARG HTTP_PROXY\nRUN x\n", &[("HTTP_PROXY", "http://p")], None).unwrap();
    let r = runs(target(&g))[0];
    assert_eq!(env_of(r, "HTTP_PROXY"), Some("http://p"), "a declared proxy arg is an ordinary arg");
}

#[test]
fn unused_build_args_warn() {
    let g = lower_with("FROM img\nARG USED\n", &[("USED", "1"), ("TYPO", "2")], None).unwrap();
    assert_eq!(g.warnings.len(), 1);
    assert!(g.warnings[0].message.contains("\"TYPO\""), "{:?}", g.warnings);
}

#[test]
fn syntax_directive_warns_for_foreign_frontends_only() {
    for ok in [
        "docker/dockerfile:1",
        "docker/dockerfile:1.7-labs",
        "docker.io/docker/dockerfile:1@sha256:ab",
        "docker/dockerfile-upstream:master",
    ] {
        let g = graph(&format!("# syntax={ok}\nFROM img\n"));
        assert!(g.warnings.is_empty(), "{ok}: {:?}", g.warnings);
    }
    let g = graph("# syntax=tonistiigi/dockerfile:runmount\n# check=skip=all\nFROM img\n");
    assert_eq!(g.warnings.len(), 1);
    assert!(g.warnings[0].message.contains("tonistiigi/dockerfile:runmount"));
    assert_eq!(g.warnings[0].span.map(|s| s.start.line), Some(1));
}

#[test]
fn escape_directive_backtick_windows_style() {
    let g = graph(
        "# escape=`\nFROM img\nENV P=C:\\Users\\app\nRUN echo a `\n    && echo b\nCOPY a\\b.txt c:\\dest\\\n",
    );
    let s = target(&g);
    assert_eq!(s.meta.env_get("P"), Some("C:\\Users\\app"));
    assert_eq!(runs(s)[0].argv[2], "echo a     && echo b");
    assert_eq!(copies(s)[0].paths[0].path, "a\\b.txt");
}

#[test]
fn run_heredocs_sole_shebang_and_shell_read() {
    let src = "FROM img\nRUN <<EOF\necho plain\nEOF\nRUN <<-'EOT'\n\t#!/usr/bin/env python3\n\tprint('hi')\n\tEOT\nRUN python3 <<EOF\nprint(1)\nEOF\nRUN cat <<A > /a && cat <<B > /b\na $X\nA\nb\nB\n";
    let g = graph(src);
    let r = runs(target(&g));
    assert_eq!(r[0].argv, vec!["/bin/sh", "-c", "echo plain\n"]);
    assert!(r[0].script.is_none());
    assert_eq!(r[1].argv, vec!["/dev/pipes/EOT"]);
    assert_eq!(r[1].script.as_ref().unwrap().content, "#!/usr/bin/env python3\nprint('hi')\n");
    assert_eq!(r[2].argv, vec!["/bin/sh", "-c", "python3 <<EOF\nprint(1)\nEOF"]);
    assert_eq!(r[3].argv[2], "cat <<A > /a && cat <<B > /b\na $X\nA\nb\nB");
    let texts: Vec<&str> = target(&g).steps.iter().map(|s| s.text.as_str()).collect();
    assert!(texts.contains(&"RUN <<EOF (echo plain)"), "{texts:?}");
}

#[test]
fn copy_heredocs_expand_unless_quoted_and_keep_quotes() {
    let g = graph(
        "FROM img\nARG N=7\nCOPY --chmod=755 --chown=app <<A <<\"B\" /dir/\nn=\"$N\" 'q'\nA\nraw $N\nB\n",
    );
    let c = copies(target(&g))[0];
    assert_eq!(c.inline, vec![("A".into(), "n=\"7\" 'q'\n".into()), ("B".into(), "raw $N\n".into())]);
    assert_eq!(c.dest, "/dir/");
    assert!(c.dest_is_dir);
    assert_eq!(c.chmod, Some(FileMode::Octal(0o755)));
    assert_eq!(c.chown.as_deref(), Some("app"));
}

#[test]
fn copy_and_add_flags() {
    let g = graph(
        "FROM img AS build\nFROM img\nWORKDIR /w\nCOPY --from=build --link --parents --exclude=*.md --exclude=tmp/ a/./b/*.go rel/\nADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef https://example.com/x.tgz /opt/\nADD --unpack=false local.tgz https://example.com/y.txt /srv/\nCOPY --chmod=u=rwX,go=rX src /s\n",
    );
    let c = copies(target(&g));
    assert_eq!(c[0].source, CopySource::Stage(0));
    assert!(c[0].link && c[0].parents);
    assert_eq!(c[0].exclude, vec!["*.md", "tmp/"]);
    assert_eq!(c[0].dest, "/w/rel/");
    assert_eq!(c[1].urls[0].path, "https://example.com/x.tgz");
    assert!(c[1].paths.is_empty());
    assert_eq!(
        c[1].checksum.as_deref(),
        Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    );
    assert!(!c[2].extract_archives, "--unpack=false keeps archives as files");
    assert_eq!((c[2].paths.len(), c[2].urls.len()), (1, 1));
    assert!(c[2].dest_is_dir);
    assert_eq!(c[3].chmod, Some(FileMode::Symbolic("u=rwX,go=rX".into())));
    assert_eq!(c[3].dest, "/s");
}

#[test]
fn run_mounts_network_and_security() {
    let g = graph(
        "FROM img AS deps\nFROM img\nARG CACHE=/root/.cache\nWORKDIR /src\nRUN --mount=type=cache,target=$CACHE,sharing=locked,uid=1000,mode=0700 --mount=type=bind,from=deps,source=/out,target=vendor --mount=type=secret,id=tok,env=TOKEN --mount=type=tmpfs,target=/tmp,size=64m --network=none make\n",
    );
    let r = runs(target(&g))[0];
    assert_eq!(r.network, Network::None);
    assert!(
        matches!(&r.mounts[0], Mount::Cache { target, sharing: CacheSharing::Locked, uid: 1000, mode: 0o700, .. } if target == "/root/.cache")
    );
    assert!(
        matches!(&r.mounts[1], Mount::Bind { target, from: MountSource::Stage(0), source, readwrite: false } if target == "/src/vendor" && source == "/out")
    );
    assert!(
        matches!(&r.mounts[2], Mount::Secret { id, env: Some(e), target: None, .. } if id == "tok" && e == "TOKEN")
    );
    assert!(matches!(&r.mounts[3], Mount::Tmpfs { size: Some(67_108_864), .. }));
    assert!(g.stages[0].needed, "a stage read by a mount is built");
    let e = lower_with("FROM img\nRUN --security=insecure x\n", &[], None).unwrap_err();
    assert!(e.contains("Dockerfile:2:") && e.contains("--security=insecure"), "{e}");
    let e = lower_with("FROM img\nRUN --network=bridge x\n", &[], None).unwrap_err();
    assert!(e.contains("unsupported network mode"), "{e}");
}

#[test]
fn onbuild_triggers_run_first_in_the_child_only() {
    let g = graph("FROM onbuild:base\nRUN own\n");
    let s = target(&g);
    let texts: Vec<&str> = s.steps.iter().map(|st| st.text.as_str()).collect();
    assert_eq!(texts[0], "COPY app.txt /app/");
    assert_eq!(texts[1], "RUN echo triggered");
    assert!(s.meta.onbuild.is_empty(), "triggers are not inherited further");
    let g = graph("FROM img AS base\nONBUILD RUN echo from-base\nFROM base\nRUN child\n");
    let child = runs(&g.stages[1]);
    assert_eq!(child[0].argv[2], "echo from-base", "a stage's ONBUILD runs in a stage built FROM it");
    assert_eq!(g.stages[0].meta.onbuild, vec!["RUN echo from-base"]);
}

#[test]
fn stages_by_name_and_index_target_and_unused_stages() {
    let src = "FROM img AS a\nRUN a\nFROM img AS b\nRUN b\nFROM img\nCOPY --from=0 /x /x\nCOPY --from=other/image:1 /y /y\n";
    let g = graph(src);
    assert!(g.stages[0].needed && !g.stages[1].needed && g.stages[2].needed);
    assert_eq!(copies(&g.stages[2])[1].source, CopySource::Image("other/image:1".into()));
    let g = lower_with(src, &[], Some("B")).unwrap();
    assert_eq!(g.target, 1, "targets match stage names without case");
    assert!(g.stages[1].steps.len() == 1 && g.stages[2].steps.is_empty(), "only needed stages are lowered");
    let e = lower_with("FROM img AS a\nCOPY --from=$X /a /a\n", &[], None).unwrap_err();
    assert!(e.contains("variable expansion is not supported for --from") && e.contains("2:"), "{e}");
    let e = lower_with("FROM img AS a\nCOPY --from=a /a /a\n", &[], None).unwrap_err();
    assert!(e.contains("current or a later stage"), "{e}");
}

#[test]
fn errors_point_at_the_flag_and_suggest() {
    let src = "FROM img\nCOPY --chmown=app a b\n";
    let e = lower_with(src, &[], None).unwrap_err();
    assert!(e.starts_with("Dockerfile:2:6: unknown flag --chmown for COPY"), "{e}");
    assert!(e.contains("did you mean --chown?"), "{e}");
    assert!(e.contains(" |      ^^^^^^^^^^^^\n"), "the caret covers the flag:\n{e}");
    let e = lower_with("FROM img\nADD --parents a b\n", &[], None).unwrap_err();
    assert!(e.contains("unknown flag --parents for ADD"), "{e}");
    let e = lower_with("FROM img\nRUN --mount=type=cache,taget=/x true\n", &[], None).unwrap_err();
    assert!(e.contains("Dockerfile:2:5") && e.contains("did you mean target?"), "{e}");
    let e = lower_with("FROM img\nWORKDIRR /x\n", &[], None).unwrap_err();
    assert!(
        e.contains("Dockerfile:2:1: unknown instruction: WORKDIRR") && e.contains("did you mean WORKDIR?"),
        "{e}"
    );
    let e = lower_with("FROM img\nCOPY --chmod=u+y a b\n", &[], None).unwrap_err();
    assert!(e.contains("invalid chmod") && e.contains("hint:"), "{e}");
    let e = lower_with("FROM img\nADD --checksum=md5:x https://e.com/a /a\n", &[], None).unwrap_err();
    assert!(e.contains("invalid checksum"), "{e}");
    let e = lower_with("FROM img\nCOPY --checksum=sha256:00 a b\n", &[], None).unwrap_err();
    assert!(e.contains("unknown flag --checksum for COPY"), "{e}");
    let e = lower_with(
        "FROM img\nADD --checksum=xyz https://github.com/moby/buildkit.git#v0.12 /src\n",
        &[],
        None,
    )
    .unwrap_err();
    assert!(e.contains("expected hex commit hash"), "{e}");
    let e = lower_with("FROM img\nHEALTHCHECK --interval=5 CMD true\n", &[], None).unwrap_err();
    assert!(e.contains("invalid --interval"), "{e}");
}

#[test]
fn healthcheck_options_and_none() {
    let g = graph(
        "FROM img\nHEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1\n",
    );
    let h = target(&g).meta.healthcheck.clone().unwrap();
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    assert_eq!(
        (h.interval_ns, h.timeout_ns, h.start_period_ns, h.start_interval_ns, h.retries),
        (30_000_000_000, 5_000_000_000, 60_000_000_000, 2_000_000_000, 3)
    );
    let g = graph("FROM img\nHEALTHCHECK CMD [\"true\"]\nHEALTHCHECK NONE\n");
    assert_eq!(target(&g).meta.healthcheck.as_ref().unwrap().test, vec!["NONE"]);
}

/// Real Dockerfiles must parse and lower: the repository's own
/// (`examples/*/Dockerfile`), and more where they are given. Others
/// (official images, BuildKit's own, toolchains) are not kept in this
/// repository: point `RBUILD_REAL_DOCKERFILES` at a directory of them (which
/// must then exist), or put them in `../shared/dockerfiles`.
#[test]
fn real_world_dockerfiles_parse_and_lower() {
    use rbuild_test_support::prereq::{dir, workspace_root};
    let files_in = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        paths
    };
    let examples = workspace_root().join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("Dockerfile"))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no Dockerfile in {}", examples.display());
    match std::env::var_os("RBUILD_REAL_DOCKERFILES") {
        Some(given) => paths.extend(files_in(&rbuild_test_support::require!(dir(given)))),
        None => {
            let shared = workspace_root().join("../shared/dockerfiles");
            if shared.is_dir() {
                paths.extend(files_in(&shared));
            }
        }
    }
    let mut failures = Vec::new();
    let mut count = 0;
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        count += 1;
        match lower_with(&text, &[], None) {
            Ok(g) => eprintln!("ok   {} ({} stages)", path.display(), g.stages.len()),
            Err(e) => failures.push(format!("{}:\n{e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {count} failed:\n{}", failures.len(), failures.join("\n"));
}
