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
