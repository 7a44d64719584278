//! Conformance with BuildKit's core tests (`dockerfile_core_test.go`):
//! the identity RUN gets from USER.

use std::fs;

use crate::harness::*;

/// testUserAdditionalGids: a bare user gets the supplementary groups
/// `/etc/group` lists it in; `user:group` (or `uid:gid`) runs with exactly
/// that group; an unknown uid runs with gid 0.
#[test]
fn user_additional_gids() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\n\
RUN echo 'wheel:x:10:root,app' >> /etc/group && mkdir -m 1777 /ids\n\
RUN id -G > /ids/root\n\
USER 1234\nRUN id -u > /ids/uid && id -G >> /ids/uid\n\
USER 1234:1234\nRUN id -G > /ids/uid-gid\n\
USER app\nRUN id -G > /ids/app\n\
USER app:app\nRUN id -G > /ids/app-app\n\
USER app:wheel\nRUN id -G > /ids/app-wheel\n",
    );
    let (_, out) = build_local(&env, "ctx", &[]);
    let ids = |name: &str| fs::read_to_string(out.join("ids").join(name)).unwrap();
    assert_eq!(ids("root"), "0 10\n", "root is in wheel");
    assert_eq!(ids("uid"), "1234\n0\n", "an unknown uid: gid 0, nothing else");
    assert_eq!(ids("uid-gid"), "1234\n");
    assert_eq!(ids("app"), "1000 10\n", "a bare name: its groups from /etc/group");
    assert_eq!(ids("app-app"), "1000\n", "an explicit group drops the supplementary ones");
    assert_eq!(ids("app-wheel"), "10\n");
}

/// testUser: USER by name, uid, `name:group`, `uid:gid` and unknown ids,
/// checked with `id` inside the build (BuildKit's own checks, on a busybox
/// given BuildKit busybox's `wheel` and `daemon` entries), and the
/// image's configured user.
#[test]
fn user() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let check = |want: &str| {
        format!("RUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)\" = '{want}' ]\n")
    };
    let mut df = String::from(
        "FROM busybox:local AS base\n\
RUN echo 'wheel:x:10:root' >> /etc/group && echo 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' >> /etc/passwd \
&& echo 'daemon:x:1:' >> /etc/group && mkdir -m 0777 /out\n\
RUN id -un > /out/rootuser\nRUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)\" = '0:0/root:root' ]\n\
USER root\nRUN [ \"$(id -G):$(id -Gn)\" = '0 10:root wheel' ]\n\
RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && echo 'dockerio:x:1001:' >> /etc/group\n\
USER dockerio\n",
    );
    df.push_str(&check("1001:1001/dockerio:dockerio/1001:dockerio"));
    df.push_str("USER root\n");
    df.push_str(&check("0:0/root:root/0 10:root wheel"));
    df.push_str("RUN echo 'supplementary:x:1002:dockerio' >> /etc/group\n");
    for user in ["dockerio", "1001"] {
        df.push_str(&format!("USER {user}\n"));
        df.push_str(&check("1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary"));
    }
    for user in ["dockerio:dockerio", "1001:dockerio", "dockerio:1001", "1001:1001"] {
        df.push_str(&format!("USER {user}\n"));
        df.push_str(&check("1001:1001/dockerio:dockerio/1001:dockerio"));
    }
    for user in ["dockerio:supplementary", "dockerio:1002", "1001:supplementary", "1001:1002"] {
        df.push_str(&format!("USER {user}\n"));
        df.push_str(&check("1001:1002/dockerio:supplementary/1002:supplementary"));
    }
    df.push_str("USER 1042:1043\n");
    df.push_str(&check("1042:1043/1042:1043/1043:1043"));
    df.push_str(
        "USER daemon\nRUN id -un > /out/daemonuser\nFROM scratch\nCOPY --from=base /out /\nUSER nobody\n",
    );
    env.dockerfile("ctx", &df);
    let (_, out) = build_local(&env, "ctx", &["-t", "user:test"]);
    assert_eq!(fs::read_to_string(out.join("rootuser")).unwrap(), "root\n");
    assert_eq!(fs::read_to_string(out.join("daemonuser")).unwrap(), "daemon\n");
    let user = env.rbuild(&["inspect", "-f", "{{.Config.User}}", "user:test"]).ok();
    assert_eq!(user.stdout.trim(), "nobody");
}

/// testExposeExpansion, testLabels: EXPOSE expands an ARG into several
/// ports (protocol `tcp` by default); labels come from LABEL and from
/// `--label`.
#[test]
fn expose_expansion_and_labels() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM scratch\nARG PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS\nEXPOSE 5000\nLABEL foo=bar\n",
    );
    env.rbuild(&["build", "-q", "-t", "core:test", "--label", "bar=baz", "ctx"]).ok();
    let ports = env.inspect_json("core:test", ".Config.ExposedPorts");
    let mut names: Vec<&String> = ports.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["3000/tcp", "4000/udp", "5000/tcp"]);
    assert_eq!(
        env.inspect_json("core:test", ".Config.Labels"),
        serde_json::json!({"foo": "bar", "bar": "baz"})
    );
}

/// testDockerfileLowercase, testSymlinkedDockerfile: a context with only
/// `dockerfile` (lower case) builds from it; a `Dockerfile` that is a link
/// is read through it.
#[test]
fn dockerfile_names() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.context("lower", &[("dockerfile", "FROM scratch\nENV from=lower\n")]);
    env.rbuild(&["build", "-q", "-t", "names:lower", "lower"]).ok();
    let linked = env.context("linked", &[("Dockerfile.web", "FROM scratch\nENV from=linked\n")]);
    std::os::unix::fs::symlink("Dockerfile.web", linked.join("Dockerfile")).unwrap();
    env.rbuild(&["build", "-q", "-t", "names:linked", "linked"]).ok();
    for (tag, want) in [("names:lower", "from=lower"), ("names:linked", "from=linked")] {
        let envs = env.rbuild(&["inspect", "-f", "{{json .Config.Env}}", tag]).ok();
        assert!(envs.stdout.contains(want), "{tag}: {}", envs.stdout);
    }
}

/// testContextChangeDirToFile: a context path that was a directory and is
/// now a file is copied as the file (no stale cache).
#[test]
fn context_change_dir_to_file() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let ctx = env.context("ctx", &[("Dockerfile", "FROM scratch\nCOPY foo /\n"), ("foo/bar", "contents")]);
    build_local(&env, "ctx", &[]);
    fs::remove_dir_all(ctx.join("foo")).unwrap();
    fs::write(ctx.join("foo"), "contents2").unwrap();
    let (_, out) = build_local(&env, "ctx", &[]);
    assert_eq!(fs::read_to_string(out.join("foo")).unwrap(), "contents2");
}

/// testTargetMistype: an unknown `--target` is an error that suggests the
/// stage meant.
#[test]
fn target_mistype() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile(
        "ctx",
        "FROM scratch AS build\nCOPY Dockerfile /out\nFROM scratch\nCOPY --from=build /out /\n",
    );
    let run = env.rbuild(&["build", "--target", "bulid", "ctx"]).failed();
    assert!(run.stderr.contains("bulid") && run.stderr.contains("build"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean"), "a suggestion: {}", run.stderr);
}
