//! Build checks through the real binary: `--call=check` and `--check`
//! (text and JSON, exit codes, nothing built), the `# check=` directive and
//! the `BUILDKIT_DOCKERFILE_CHECK` build arg, warnings after an ordinary
//! build and `error=true` failing one before any step, and
//! `--call=outline|targets`.

use crate::harness::*;

/// Violates FromAsCasing (line 1), ConsistentInstructionCasing and
/// CopyIgnoredFile (line 2, with the .dockerignore below) and
/// JSONArgsRecommended (line 3).
const MESSY: &str = "FROM scratch as base\ncopy app.txt /app.txt\nCMD serve\n";

fn messy_context(env: &Env) {
    env.context("ctx", &[("Dockerfile", MESSY), ("app.txt", "app"), (".dockerignore", "app.txt\n")]);
}

/// `DIR/Dockerfile:LINE: Rule` of each finding in a text report (the
/// Dockerfile is named by its absolute path).
fn findings(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once("/ctx/").map(|(_, rest)| rest))
        .map(|l| format!("ctx/{}", l.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": ")))
        .collect()
}

#[test]
fn check_reports_every_violation_and_exits_1_without_building() {
    let env = Env::new();
    messy_context(&env);
    let before = env.store_snapshot();
    let run = env.rbuild(&["build", "--call=check", "ctx"]).failed();
    assert_eq!(run.code, 1);
    assert_eq!(
        findings(&run.stdout),
        [
            "ctx/Dockerfile:1: FromAsCasing",
            "ctx/Dockerfile:2: ConsistentInstructionCasing",
            "ctx/Dockerfile:2: CopyIgnoredFile",
            "ctx/Dockerfile:3: JSONArgsRecommended",
        ],
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("/ctx/Dockerfile:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n 1 | FROM scratch as base\n"), "{}", run.stdout);
    assert!(run.stdout.contains("Attempting to Copy file \"app.txt\" that is excluded by .dockerignore"));
    assert!(run.stdout.ends_with("Check complete, 4 warnings have been found!\n"), "{}", run.stdout);
    assert!(run.stderr.contains("violates the build checks (4 warnings)"), "{}", run.stderr);
    assert_eq!(env.store_snapshot(), before, "a check builds and stores nothing");

    // --check is the same call.
    let short = env.rbuild(&["build", "--check", "ctx"]).failed();
    assert_eq!(findings(&short.stdout), findings(&run.stdout));

    env.dockerfile("clean", "FROM scratch AS base\nCOPY app.txt /app.txt\nCMD [\"serve\"]\n");
    std::fs::write(env.path("clean/app.txt"), "app").unwrap();
    let clean = env.rbuild(&["build", "--check", "clean"]).ok();
    assert_eq!(clean.stdout, "Check complete, no warnings found.\n");
}

#[test]
fn check_json_has_buildkits_shape() {
    let env = Env::new();
    messy_context(&env);
    let run = env.rbuild(&["build", "--call=check,format=json", "ctx"]).failed();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    let warnings = report["warnings"].as_array().unwrap();
    let rules: Vec<(&str, u64)> = warnings
        .iter()
        .map(|w| {
            (w["ruleName"].as_str().unwrap(), w["location"]["ranges"][0]["start"]["line"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("FromAsCasing", 1),
            ("ConsistentInstructionCasing", 2),
            ("CopyIgnoredFile", 2),
            ("JSONArgsRecommended", 3)
        ]
    );
    assert_eq!(
        warnings[3]["detail"],
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"
    );
    assert_eq!(warnings[0]["description"], "The 'as' keyword should match the case of the 'from' keyword");
    assert!(report["sources"][0]["filename"].as_str().unwrap().ends_with("/ctx/Dockerfile"));
}

#[test]
fn check_reports_what_would_stop_the_build_after_the_warnings() {
    let env = Env::new();
    env.dockerfile("ctx", "FROM scratch AS Base\nRUN --network=bridge true\n");
    let run = env.rbuild(&["build", "--check", "ctx"]).failed();
    assert_eq!(findings(&run.stdout), ["ctx/Dockerfile:1: StageNameCasing"], "{}", run.stdout);
    assert!(run.stderr.contains("error: unsupported network mode \"bridge\""), "{}", run.stderr);
    assert!(run.stderr.contains("/ctx/Dockerfile:2:"), "the error names its line: {}", run.stderr);
    let json = env.rbuild(&["build", "--call=check,format=json", "ctx"]).failed();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["buildError"]["message"], "unsupported network mode \"bridge\"");
    assert_eq!(report["buildError"]["location"]["ranges"][0]["start"]["line"], 2);
    assert_eq!(report["warnings"][0]["ruleName"], "StageNameCasing");
}

#[test]
fn directives_and_the_build_arg_choose_the_rules() {
    let env = Env::new();
    env.dockerfile("skip", &format!("# check=skip=ConsistentInstructionCasing,JSONArgsRecommended\n{MESSY}"));
    let run = env.rbuild(&["build", "--check", "skip"]).failed();
    assert_eq!(
        findings(&run.stdout.replace("/skip/", "/ctx/")),
        ["ctx/Dockerfile:2: FromAsCasing"],
        "{}",
        run.stdout
    );
    env.dockerfile("all", &format!("# check=skip=all\n{MESSY}"));
    env.rbuild(&["build", "--check", "all"]).ok();
    let replaced = env
        .rbuild(&[
            "build",
            "--check",
            "--build-arg",
            "BUILDKIT_DOCKERFILE_CHECK=skip=FromAsCasing,JSONArgsRecommended",
            "all",
        ])
        .failed();
    assert!(
        replaced.stdout.contains("/all/Dockerfile:3: ConsistentInstructionCasing"),
        "{}",
        replaced.stdout
    );
    assert!(!replaced.stdout.contains("FromAsCasing"));
    env.dockerfile("local", "FROM scratch\n# check=skip=JSONArgsRecommended // a shell is fine here\nCMD serve\nENTRYPOINT serve\n");
    let run = env.rbuild(&["build", "--check", "local"]).failed();
    assert_eq!(run.stdout.matches("JSONArgsRecommended:").count(), 1, "only the ENTRYPOINT: {}", run.stdout);
    assert!(run.stdout.contains("/local/Dockerfile:4: JSONArgsRecommended"));
    env.dockerfile("bad", "# check=skip=all;loud=yes\nFROM scratch\n");
    let bad = env.rbuild(&["build", "--check", "bad"]).failed();
    assert!(
        bad.stderr.contains("cannot read the check settings in the # check= directive of /"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("/bad/Dockerfile: invalid check option \"loud\""), "{}", bad.stderr);
    assert!(bad.stderr.contains("hint: write e.g."), "{}", bad.stderr);
}

#[test]
fn ordinary_builds_warn_at_the_end_and_error_true_fails_before_any_step() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "FROM busybox:local AS Build\nRUN echo ran > /ran\nCMD sh\n";
    env.dockerfile("warn", dockerfile);
    let built = env.rbuild(&["build", "--progress", "plain", "-t", "warned:1", "warn"]).ok();
    let at =
        |text: &str| built.stderr.find(text).unwrap_or_else(|| panic!("{text:?} missing: {}", built.stderr));
    let casing = at("/warn/Dockerfile:1: StageNameCasing: Stage name 'Build' should be lowercase");
    let json_args = at("/warn/Dockerfile:3: JSONArgsRecommended: JSON arguments recommended for CMD");
    assert!(
        at(" DONE ") < casing && casing < json_args && json_args < at("1 steps run"),
        "warnings come after the steps, before the summary: {}",
        built.stderr
    );

    let record = env.rbuild(&["builds", "show", "last"]).ok();
    assert!(
        record.stdout.contains("check    1: StageNameCasing: Stage name 'Build' should be lowercase\ncheck    3: JSONArgsRecommended:"),
        "the build record keeps the findings: {}",
        record.stdout
    );

    env.dockerfile("strict", &format!("# check=error=true\n{dockerfile}"));
    let failed = env.rbuild(&["build", "--progress", "plain", "-t", "strict:1", "strict"]).failed();
    assert!(
        failed.stderr.contains("error: lint violation found for rules: StageNameCasing, JSONArgsRecommended"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("/strict/Dockerfile:2: StageNameCasing"), "{}", failed.stderr);
    assert!(
        failed.run_lines().is_empty() && !failed.stderr.contains("DONE"),
        "no step may run: {}",
        failed.stderr
    );
    env.rbuild(&["inspect", "strict:1"]).failed();
    // The build arg can turn the error setting off again.
    env.rbuild(&["build", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", "-t", "strict:1", "strict"])
        .ok();
}

#[test]
fn outline_lists_the_targets_args_secrets_and_ssh_ids() {
    require!(root(), busybox_static());
    let env = Env::with_busybox();
    let dockerfile = "# BASE the base image\nARG BASE=busybox:local\n# UNUSED not for this target\nARG UNUSED=x\n\n# app builds the app\nFROM $BASE AS app\n# VERSION which release to build\nARG VERSION=1.0\nRUN --mount=type=secret,id=token,required=true --mount=type=ssh echo $VERSION\n\nFROM scratch AS other\nARG OTHER\n";
    env.dockerfile("ctx", dockerfile);
    let outline = env.rbuild(&["build", "--call=outline", "--target", "app", "ctx"]).ok();
    assert_eq!(
        outline.stdout,
        "TARGET:      app\nDESCRIPTION: builds the app\n\nBUILD ARG  DEFAULT        DESCRIPTION\nBASE       busybox:local  the base image\nVERSION    1.0            which release to build\n\nSECRET  REQUIRED\ntoken   true\n\nSSH      REQUIRED\ndefault\n"
    );
    let json = env.rbuild(&["build", "--call=outline,format=json", "--target", "app", "ctx"]).ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["args"][1]["name"], "VERSION");
    assert_eq!(json["args"][1]["value"], "1.0");
    assert_eq!(json["secrets"][0], serde_json::json!({ "name": "token", "required": true }));

    let targets = env.rbuild(&["build", "--call=targets", "ctx"]).ok();
    assert_eq!(
        targets.stdout,
        "TARGET           DESCRIPTION\napp              builds the app\nother (default)\n"
    );
    let json = env.rbuild(&["build", "--call=targets,format=json", "ctx"]).ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["targets"][1]["default"], true);
    assert_eq!(json["targets"][0]["description"], "builds the app");
    assert_eq!(json["targets"][0]["location"]["line"], 7);
}

#[test]
fn a_malformed_call_names_the_flag_and_builds_nothing() {
    let env = Env::new();
    env.dockerfile("ctx", "FROM scratch\n");
    let before = env.store_snapshot();
    let run = env.rbuild(&["build", "--call=lint", "ctx"]).failed();
    assert!(
        run.stderr.contains("error: invalid --call value \"lint\": unknown method \"lint\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--call=check,format=json"), "{}", run.stderr);
    let run = env.rbuild(&["build", "--call=check,format=yaml", "ctx"]).failed();
    assert!(run.stderr.contains("unknown option \"format=yaml\""), "{}", run.stderr);
    let run = env.rbuild(&["build", "--check", "--call=outline", "ctx"]).failed();
    assert!(run.stderr.contains("--check is --call=check"), "{}", run.stderr);
    assert_eq!(env.store_snapshot(), before);
}
