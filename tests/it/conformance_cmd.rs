//! Conformance with BuildKit's command tests (`dockerfile_cmd_test.go`):
//! ENTRYPOINT and CMD in the image config, and JSON forms that are not JSON.

use crate::harness::*;

/// testCmdShell: an ENTRYPOINT in shell form uses the stage's SHELL and
/// drops the CMD the base image had. testIgnoreEntrypoint: RUN does not
/// go through the ENTRYPOINT.
#[test]
fn cmd_shell_and_ignored_entrypoint() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("base", "FROM scratch\nCMD [\"test\"]\n");
    env.rbuild(&["build", "-q", "-t", "cmd:base", "base"]).ok();
    env.dockerfile("ctx", "FROM cmd:base\nSHELL [\"ls\"]\nENTRYPOINT my entrypoint\n");
    env.rbuild(&["build", "-q", "-t", "cmd:child", "ctx"]).ok();
    assert_eq!(env.inspect_json("cmd:child", ".Config.Cmd"), serde_json::Value::Null);
    assert_eq!(
        env.inspect_json("cmd:child", ".Config.Entrypoint"),
        serde_json::json!(["ls", "my entrypoint"])
    );
    env.dockerfile("ignore", "FROM busybox:local\nENTRYPOINT [\"/nosuchcmd\"]\nRUN [\"ls\"]\n");
    env.rbuild(&["build", "ignore"]).ok();
}

/// testInvalidJSONCommands: text after a JSON array makes the line shell
/// form: RUN runs it through the shell (and fails, naming it), ENTRYPOINT
/// keeps it as a shell command.
#[test]
fn invalid_json_commands() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("run", "FROM busybox:local\nRUN [\"echo\", \"hello\"]this is invalid\n");
    let run = env.rbuild(&["build", "run"]).failed();
    assert!(run.stderr.contains("this is invalid"), "{}", run.stderr);
    env.dockerfile("entry", "FROM busybox:local\nENTRYPOINT []random string\n");
    env.rbuild(&["build", "-q", "-t", "cmd:entry", "entry"]).ok();
    assert_eq!(
        env.inspect_json("cmd:entry", ".Config.Entrypoint"),
        serde_json::json!(["/bin/sh", "-c", "[]random string"])
    );
}
