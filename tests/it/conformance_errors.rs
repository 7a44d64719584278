//! Conformance with BuildKit's `errors_test.go`: an error points at the
//! Dockerfile line (or lines) it comes from.

use crate::harness::*;

/// testErrorsSourceMap (the cases that need no registry and no foreign
/// frontend): the error names `Dockerfile:LINE` of the instruction, and for
/// a continued instruction its first line, with the source shown.
#[test]
fn errors_source_map() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let cases = [
        ("invalidenv", "from busybox:local\nenv", 2),
        ("invalidrun", "from scratch\nenv foo=bar\nrun what", 3),
        ("invalidcopy", "from scratch\nenv foo=bar\ncopy foo bar\nenv bar=baz", 3),
        ("invalidflag", "from scratch\nenv foo=bar\ncopy --foo=bar / /\nenv bar=baz", 3),
        ("invalidmultiline", "from scratch\nrun wh\\\nat\nenv bar=baz", 2),
    ];
    for (name, dockerfile, line) in cases {
        env.dockerfile(name, dockerfile);
        let run = env.rbuild(&["build", name]).failed();
        assert!(run.stderr.contains(&format!("Dockerfile:{line}")), "{name}: line {line}\n{}", run.stderr);
        let source_line = dockerfile.lines().nth(line - 1).unwrap();
        assert!(run.stderr.contains(source_line), "{name}: the line is shown\n{}", run.stderr);
    }
}
