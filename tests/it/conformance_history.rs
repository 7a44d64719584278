//! Conformance with BuildKit's history tests (`dockerfile_history_test.go`).

use crate::harness::*;

/// testExportedHistoryFlattenArgs: each ARG has its history entry, a
/// redeclared ARG counts once in the RUN entry (`|2 foo=bar2 bar=123`),
/// with its last value.
#[test]
fn exported_history_flatten_args() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    env.dockerfile("ctx", "FROM busybox:local\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n");
    env.rbuild(&["build", "-q", "-t", "hist:test", "ctx"]).ok();
    let run = env.rbuild(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist:test"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Newest first: RUN, ARG foo=bar2, ARG bar=123, ARG foo=bar, then the base.
    assert!(lines.len() >= 4, "{}", run.stdout);
    assert!(lines[3].contains("ARG foo=bar"), "{}", run.stdout);
    assert!(lines[2].contains("ARG bar=123"), "{}", run.stdout);
    assert!(lines[1].contains("ARG foo=bar2"), "{}", run.stdout);
    assert!(lines[0].contains("ls /etc/") && lines[0].contains("RUN |2 foo=bar2 bar=123 "), "{}", lines[0]);
    assert!(!lines[0].contains("ARG foo=bar"), "{}", lines[0]);
}
