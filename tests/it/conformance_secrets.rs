//! Conformance with BuildKit's secret tests (`dockerfile_secrets_test.go`).

use crate::harness::*;

/// testSecretFileParams, testSecretAsEnvironWithFileMount,
/// testSecretRequiredWithoutValue: a secret file's owner and mode, no stub
/// left behind, a secret as a variable and a file at once, and a required
/// secret nobody gave is an error naming it.
#[test]
fn secret_params() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let secret = env.path("secret.txt");
    std::fs::write(&secret, "pw").unwrap();
    let given = format!("id=mysecret,src={}", secret.display());
    env.dockerfile(
        "ctx",
        "FROM busybox:local\n\
RUN --mount=type=secret,id=mysecret,required=false,mode=741,uid=100,gid=102,target=/mysecret \
[ \"$(stat -c '%u %g %f' /mysecret)\" = '100 102 81e1' ]\n\
RUN [ ! -f /mysecret ]\n\
RUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV \
[ \"$SECRET_ENV\" = pw ] && [ -f /run/secrets/secret ]\n",
    );
    env.rbuild(&["build", "--secret", &given, "ctx"]).ok();
    env.dockerfile("required", "FROM busybox:local\nRUN --mount=type=secret,required,id=mysecret foo\n");
    let run = env.rbuild(&["build", "required"]).failed();
    assert!(run.stderr.contains("mysecret"), "{}", run.stderr);
}

/// testSecretAsEnviron: `env=` puts the secret in a variable (over an ENV
/// of the same name) and mounts no file.
#[test]
fn secret_as_environ() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let secret = env.path("secret.txt");
    std::fs::write(&secret, "pw").unwrap();
    env.dockerfile(
        "ctx",
        "FROM busybox:local\nENV SECRET_ENV=foo\n\
RUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ \"$SECRET_ENV\" = pw ] && [ ! -f /run/secrets/mysecret ]\n",
    );
    env.rbuild(&["build", "--secret", &format!("id=mysecret,src={}", secret.display()), "ctx"]).ok();
}
