//! The rules against BuildKit's own check cases (its
//! `dockerfile_check_test.go`), rewritten: each case gives a Dockerfile and
//! the rule, line and message BuildKit reports for it, or nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::graph::ImageMeta;
use crate::lower::ResolveError;
use crate::parser::parse;

/// Every image has a PATH, as real base images do; `shell:img` sets a SHELL.
struct Images;

impl BaseResolver for Images {
    fn resolve(&mut self, reference: &str, _: &crate::lower::Platform) -> Result<ImageMeta, ResolveError> {
        let mut meta =
            ImageMeta { env: vec![("PATH".into(), crate::lower::DEFAULT_PATH.into())], ..Default::default() };
        if reference == "shell:img" {
            meta.shell = vec!["/bin/bash".into(), "-c".into()];
        }
        Ok(meta)
    }
}

/// A `.dockerignore` given as exact paths excluded, plus flags.
#[derive(Default)]
struct Ignored {
    paths: Vec<&'static str>,
    exceptions: bool,
    root: bool,
}

impl IgnoreRules for Ignored {
    fn has_exceptions(&self) -> bool {
        self.exceptions
    }
    fn excludes_root_entries(&self) -> bool {
        self.root
    }
    fn excludes(&self, path: &str) -> bool {
        self.root || self.paths.iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
    }
}

struct Case<'a> {
    build_args: &'a [(&'a str, &'a str)],
    stages: Option<BTreeSet<usize>>,
    ignore: Option<&'a dyn IgnoreRules>,
}

const PLAIN: Case<'static> = Case { build_args: &[], stages: None, ignore: None };

fn report(src: &str, case: &Case<'_>) -> CheckReport {
    let ast = parse(src).expect("parses");
    let build_args: BTreeMap<String, String> =
        case.build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = CheckConfig::for_build(
        ast.directives.check.as_ref().map(|d| d.value.as_str()),
        build_args.get("BUILDKIT_DOCKERFILE_CHECK").map(String::as_str),
    )
    .expect("valid check settings");
    let platform = Platform { os: "linux".into(), architecture: "amd64".into(), variant: None };
    let input = CheckInput {
        config,
        build_args: &build_args,
        target: None,
        platform: &platform,
        stages: case.stages.as_ref(),
        ignore: case.ignore,
    };
    check(&ast, &input, &mut Images)
}

/// (rule, line, message) of each violation.
fn found(src: &str, case: &Case<'_>) -> Vec<(&'static str, usize, String)> {
    let report = report(src, case);
    assert!(report.error.is_none(), "{:?}", report.error);
    report.violations.iter().map(|v| (v.rule.name, v.span.start.line, v.message.clone())).collect()
}

fn one(rule: &'static str, line: usize, message: &str) -> Vec<(&'static str, usize, String)> {
    vec![(rule, line, message.to_string())]
}

#[test]
fn stage_name_casing_and_from_as_casing() {
    let src = "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n";
    assert_eq!(
        found(src, &PLAIN),
        [
            ("StageNameCasing", 4, "Stage name 'BadStageName' should be lowercase".to_string()),
            ("FromAsCasing", 8, "'as' and 'FROM' keywords' casing do not match".to_string()),
        ]
    );
    let src = "\nfrom scratch AS base\n\nfrom scratch as base2\n";
    assert_eq!(found(src, &PLAIN), one("FromAsCasing", 2, "'AS' and 'from' keywords' casing do not match"));
    assert!(found("FROM scratch AS base\nFROM base AS next\n", &PLAIN).is_empty());
}

#[test]
fn consistent_instruction_casing() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "\nFrom scratch as base\nFROM scratch AS base2\n",
            2,
            "Command 'From' should match the case of the command majority (uppercase)",
        ),
        (
            "\nFROM scratch\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
            3,
            "Command 'copy' should match the case of the command majority (uppercase)",
        ),
        (
            "\nfrOM scratch as base\nfrom scratch as base2\n",
            2,
            "Command 'frOM' should match the case of the command majority (lowercase)",
        ),
        (
            "\nfrom scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
            3,
            "Command 'COPY' should match the case of the command majority (lowercase)",
        ),
        (
            "\nfrom scratch\nCOPY a /foo\nCOPY a /bar\nCOPY a /baz\n",
            2,
            "Command 'from' should match the case of the command majority (uppercase)",
        ),
        (
            "\nFROM scratch\ncopy a /foo\ncopy a /bar\ncopy a /baz\n",
            2,
            "Command 'FROM' should match the case of the command majority (lowercase)",
        ),
    ];
    for (src, line, message) in cases {
        assert_eq!(found(src, &PLAIN), one("ConsistentInstructionCasing", *line, message), "{src}");
    }
    assert!(found("from scratch\ncopy a /foo\n", &PLAIN).is_empty());
    assert!(found("FROM scratch\nCOPY a /foo\n", &PLAIN).is_empty());
    assert!(
        found("FROM img\nRUN <<'EOT'\nenv\nEOT\n", &PLAIN).is_empty(),
        "heredoc bodies are no instructions"
    );
}

#[test]
fn duplicate_and_reserved_stage_names() {
    assert_eq!(
        found("\nFROM scratch AS b\nFROM scratch AS b\n", &PLAIN),
        one("DuplicateStageName", 3, "Duplicate stage name \"b\", stage names should be unique")
    );
    assert!(found("FROM scratch AS b1\nFROM scratch AS b2\n", &PLAIN).is_empty());
    assert_eq!(
        found("\nFROM scratch AS scratch\nFROM scratch AS context\n", &PLAIN),
        [
            (
                "ReservedStageName",
                2,
                "Stage name should not use the same name as reserved stage \"scratch\"".to_string()
            ),
            (
                "ReservedStageName",
                3,
                "Stage name should not use the same name as reserved stage \"context\"".to_string()
            ),
        ]
    );
    assert!(found("FROM scratch\nFROM scratch AS a\n", &PLAIN).is_empty());
}

#[test]
fn json_args_recommended_unless_a_shell_is_set() {
    assert_eq!(
        found("\nFROM scratch\nCMD mycommand\n", &PLAIN),
        one(
            "JSONArgsRecommended",
            3,
            "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"
        )
    );
    assert_eq!(
        found("\nFROM scratch\nENTRYPOINT mycommand\n", &PLAIN),
        one(
            "JSONArgsRecommended",
            3,
            "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals"
        )
    );
    assert!(found("FROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n", &PLAIN).is_empty());
    assert!(
        found("FROM scratch AS base\nSHELL [\"/x\"]\nFROM base\nENTRYPOINT mycommand\n", &PLAIN).is_empty()
    );
    assert!(found("FROM shell:img\nCMD mycommand\n", &PLAIN).is_empty(), "the base image's SHELL counts");
    assert!(found("FROM scratch\nCMD [\"mycommand\"]\n", &PLAIN).is_empty());
    assert_eq!(
        found("from scratch\ncmd mycommand\n", &PLAIN),
        one(
            "JSONArgsRecommended",
            2,
            "JSON arguments recommended for cmd to prevent unintended behavior related to OS signals"
        ),
        "the instruction is named as written"
    );
    assert!(found("FROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n", &PLAIN).is_empty());
}

#[test]
fn maintainer_deprecated() {
    assert_eq!(
        found("\nFROM scratch\nMAINTAINER me@example.org\n", &PLAIN),
        one("MaintainerDeprecated", 3, "Maintainer instruction is deprecated in favor of using label")
    );
    assert!(
        found("FROM scratch\nLABEL org.opencontainers.image.authors=\"me@example.org\"\n", &PLAIN).is_empty()
    );
    assert!(found("FROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me\n", &PLAIN).is_empty());
}

#[test]
fn warnings_found_before_a_bad_instruction_are_kept() {
    let report = report("\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n", &PLAIN);
    let rules: Vec<_> = report.violations.iter().map(|v| (v.rule.name, v.span.start.line)).collect();
    assert_eq!(rules, [("StageNameCasing", 2), ("MaintainerDeprecated", 3)]);
    let error = report.error.expect("the unknown instruction is an error");
    assert_eq!((error.message.as_str(), error.span.start.line), ("unknown instruction: BADCMD", 4));
}

#[test]
fn undefined_arg_in_from() {
    for ok in [
        "ARG base=scratch\nFROM $base\n",
        "ARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\n",
        "FROM --platform=$BUILDPLATFORM scratch\n",
        "ARG DEBUG\nFROM scratch${DEBUG}\n",
        "ARG DEBUG\nFROM scra${DEBUG:-tch}\n",
        "ARG DEBUG=\"\"\nFROM scratch${DEBUG-@bogus}\n",
    ] {
        assert!(found(ok, &PLAIN).is_empty(), "{ok}: {:?}", found(ok, &PLAIN));
    }
    let src = "\nFROM --platform=$BULIDPLATFORM scratch\n";
    assert_eq!(
        found(src, &PLAIN),
        one(
            "UndefinedArgInFrom",
            2,
            "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"
        )
    );
    let src = "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\n";
    assert_eq!(
        found(src, &PLAIN),
        one("UndefinedArgInFrom", 4, "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)")
    );
    let src = "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\n";
    assert_eq!(found(src, &PLAIN), one("UndefinedArgInFrom", 3, "FROM argument 'version' is not declared"));
}

#[test]
fn workdir_relative_path() {
    assert_eq!(
        found("\nFROM scratch\nWORKDIR app/\n", &PLAIN),
        one(
            "WorkdirRelativePath",
            3,
            "Relative workdir \"app/\" can have unexpected results if the base image changes"
        )
    );
    assert!(found("FROM scratch AS a\nWORKDIR /app\nFROM a AS b\nWORKDIR subdir/\n", &PLAIN).is_empty());
    assert!(found("FROM scratch\nWORKDIR /app\nWORKDIR sub\n", &PLAIN).is_empty(), "only the first WORKDIR");
    assert!(found("FROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n", &PLAIN).is_empty());
}

#[test]
fn undefined_var() {
    for ok in [
        "FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n",
        "FROM img AS base\nARG foo=Dockerfile\nFROM base\nCOPY $foo .\n",
        "FROM img\nRUN echo $PATH $nothing\n",
    ] {
        assert!(found(ok, &PLAIN).is_empty(), "{ok}: {:?}", found(ok, &PLAIN));
    }
    assert_eq!(
        found("\nFROM img\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n", &PLAIN),
        one("UndefinedVar", 3, "Usage of undefined variable '$foo'")
    );
    let src = "\nFROM img\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n";
    assert_eq!(
        found(src, &PLAIN),
        one("UndefinedVar", 6, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)")
    );
    assert_eq!(
        found("\nFROM img\nENV PATH=$PAHT:/tmp/bin\n", &PLAIN),
        one("UndefinedVar", 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)")
    );
    assert_eq!(
        found("FROM img\nENV A=1 B=$A\nENV $NAME=x\n", &PLAIN),
        [
            ("UndefinedVar", 2, "Usage of undefined variable '$A'".to_string()),
            ("UndefinedVar", 3, "Usage of undefined variable '$NAME'".to_string()),
        ],
        "an ENV sees the environment from before it, and its keys expand too"
    );
    assert_eq!(
        found(
            "FROM img\nCOPY <<EOF /a\n$BODY 'x'\nEOF\nCOPY <<'EOF' /b\n$QUOTED\nEOF\nEXPOSE $PORT\n",
            &PLAIN
        ),
        one("UndefinedVar", 2, "Usage of undefined variable '$BODY'"),
        "unquoted heredoc bodies are checked; quoted ones and EXPOSE are not"
    );
    assert_eq!(
        found("ARG G=1\nFROM img\nWORKDIR /$G\n", &PLAIN),
        one("UndefinedVar", 3, "Usage of undefined variable '$G'"),
        "a global ARG is not seen in a stage until declared there"
    );
}

#[test]
fn only_the_checked_stages_are_walked_but_from_lines_all() {
    let src = "\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n";
    let all: Vec<usize> = found(src, &PLAIN).iter().map(|f| f.1).collect();
    assert_eq!(all, [3, 6], "--call=check walks every stage");
    let build = Case { stages: Some(BTreeSet::from([1])), ..PLAIN };
    assert_eq!(found(src, &build), one("UndefinedVar", 6, "Usage of undefined variable '$bar'"));
    let src = "FROM scratch AS Unused\nENV a b\nFROM scratch\n";
    let build = Case { stages: Some(BTreeSet::from([1])), ..PLAIN };
    let rules: Vec<_> = found(src, &build).into_iter().map(|f| f.0).collect();
    assert_eq!(rules, ["StageNameCasing"], "FROM rules cover unbuilt stages, instruction rules do not");
}

#[test]
fn multiple_instructions_disallowed_points_at_the_ignored_one() {
    let message = |name: &str| {
        format!(
            "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
        )
    };
    let src = "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n";
    assert_eq!(
        found(src, &PLAIN),
        [
            ("MultipleInstructionsDisallowed", 3, message("ENTRYPOINT")),
            ("MultipleInstructionsDisallowed", 5, message("CMD")),
            ("MultipleInstructionsDisallowed", 7, message("HEALTHCHECK")),
        ]
    );
    let src = "FROM scratch AS a\nCMD [\"/a\"]\nFROM a AS b\nCMD [\"/b\"]\n";
    assert!(found(src, &PLAIN).is_empty(), "a stage does not inherit the count");
}

#[test]
fn legacy_key_value_format() {
    assert_eq!(
        found("\nFROM scratch\nENV testkey value\nLABEL key value\n", &PLAIN),
        [
            (
                "LegacyKeyValueFormat",
                3,
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format".to_string()
            ),
            (
                "LegacyKeyValueFormat",
                4,
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format".to_string()
            ),
        ]
    );
    assert!(found("FROM scratch\nENV testkey=value\nLABEL key=value\n", &PLAIN).is_empty());
    let skipped = "FROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n# check=skip=LegacyKeyValueFormat\nLABEL key value\n";
    assert!(found(skipped, &PLAIN).is_empty());
}

#[test]
fn redundant_target_platform() {
    let message = |p: &str| {
        format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior")
    };
    assert_eq!(
        found("\nFROM --platform=$TARGETPLATFORM scratch\n", &PLAIN),
        one("RedundantTargetPlatform", 2, &message("$TARGETPLATFORM"))
    );
    assert_eq!(
        found("\nFROM --platform=${TARGETPLATFORM} scratch\n", &PLAIN),
        one("RedundantTargetPlatform", 2, &message("${TARGETPLATFORM}"))
    );
    assert!(
        found("# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n", &PLAIN)
            .is_empty()
    );
    assert!(found("FROM --platform=$BUILDPLATFORM scratch\n", &PLAIN).is_empty());
}

#[test]
fn invalid_default_arg_in_from() {
    let with = |args| Case { build_args: args, ..PLAIN };
    assert_eq!(
        found("\nARG VERSION\nFROM busybox:$VERSION\n", &with(&[("VERSION", "latest")])),
        one(
            "InvalidDefaultArgInFrom",
            3,
            "Default value for ARG busybox:$VERSION results in empty or invalid base image name"
        )
    );
    assert_eq!(
        found("\nARG IMAGE\nFROM $IMAGE\n", &with(&[("IMAGE", "busybox:latest")])),
        one(
            "InvalidDefaultArgInFrom",
            3,
            "Default value for ARG $IMAGE results in empty or invalid base image name"
        )
    );
    assert_eq!(
        found("\nARG SFX=\"box:\"\nFROM busy${SFX}\n", &with(&[("SFX", "box:latest")])),
        one(
            "InvalidDefaultArgInFrom",
            3,
            "Default value for ARG busy${SFX} results in empty or invalid base image name"
        )
    );
    assert!(
        found("ARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n", &with(&[("VERSION", "latest")]))
            .is_empty()
    );
    assert!(found("ARG V=\"\"\nFROM busybox:stable${V}\n", &with(&[("V", "-musl")])).is_empty());
    assert!(found("ARG V\nFROM busybox:stable${V}\n", &with(&[("V", "-musl")])).is_empty());
}

#[test]
fn from_platform_flag_const_disallowed() {
    assert_eq!(
        found("\nFROM --platform=linux/amd64 scratch\n", &PLAIN),
        one(
            "FromPlatformFlagConstDisallowed",
            2,
            "FROM --platform flag should not use constant value \"linux/amd64\""
        )
    );
    assert!(found("FROM --platform=linux/amd64 scratch AS my_amd64_stage\n", &PLAIN).is_empty());
    assert!(found("FROM --platform=linux/amd64 scratch AS linux\n", &PLAIN).is_empty());
}

#[test]
fn expose_rules() {
    assert_eq!(
        found("\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n", &PLAIN),
        [
            (
                "ExposeProtoCasing",
                3,
                "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase".to_string()
            ),
            (
                "ExposeProtoCasing",
                3,
                "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase".to_string()
            ),
        ]
    );
    let message = |p: &str| {
        format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'")
    };
    assert_eq!(
        found("\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n", &PLAIN),
        [
            ("ExposeInvalidFormat", 3, message("127.0.0.1:80:80")),
            ("ExposeInvalidFormat", 3, message("[::1]:8080:8080")),
            ("ExposeInvalidFormat", 3, message("5000:5000")),
        ]
    );
    assert!(found("FROM scratch\nEXPOSE 80 443/tcp 53/udp\n", &PLAIN).is_empty());
}

#[test]
fn secrets_used_in_arg_or_env() {
    let src = "# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n# check=skip=all // is local to only this instruction\nARG alternate_password\n";
    let found: Vec<(usize, String)> = found(src, &PLAIN)
        .into_iter()
        .map(|(rule, line, message)| {
            assert_eq!(rule, "SecretsUsedInArgOrEnv");
            (
                line,
                message
                    .trim_start_matches("Do not use ARG or ENV instructions for sensitive data ")
                    .to_string(),
            )
        })
        .collect();
    let expected = [
        (4, "(ARG \"SECRET_PASSPHRASE\")"),
        (5, "(ENV \"SUPER_Secret\")"),
        (6, "(ENV \"password\")"),
        (6, "(ENV \"secret\")"),
        (7, "(ARG \"super_duper_secret_token\")"),
        (7, "(ARG \"auth\")"),
        (8, "(ENV \"apikey\")"),
        (9, "(ENV \"git_key\")"),
    ];
    assert_eq!(found, expected.map(|(l, m)| (l, m.to_string())));
}

#[test]
fn invalid_definition_description_is_experimental() {
    let good = "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n";
    assert!(found(good, &PLAIN).is_empty(), "{:?}", found(good, &PLAIN));
    let bad = "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n";
    let message =
        |kw: &str, key: &str| format!("Comment for {kw} should follow the format: `# {key} <description>`");
    assert_eq!(
        found(bad, &PLAIN),
        [
            ("InvalidDefinitionDescription", 3, message("ARG", "foo")),
            ("InvalidDefinitionDescription", 5, message("FROM", "base")),
            ("InvalidDefinitionDescription", 7, message("ARG", "version")),
            ("InvalidDefinitionDescription", 9, message("ARG", "<arg_key>")),
        ]
    );
    let without = bad.replacen("# check=experimental=InvalidDefinitionDescription\n", "\n", 1);
    assert!(found(&without, &PLAIN).is_empty(), "off unless asked for");
}

#[test]
fn copy_ignored_file() {
    let dockerfile = Ignored { paths: vec!["Dockerfile"], ..Default::default() };
    let case = Case { ignore: Some(&dockerfile), ..PLAIN };
    assert_eq!(
        found("\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n", &case),
        [
            (
                "CopyIgnoredFile",
                3,
                "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore".to_string()
            ),
            (
                "CopyIgnoredFile",
                4,
                "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore".to_string()
            ),
        ]
    );
    assert!(found("# check=skip=CopyIgnoredFile\nFROM scratch\nCOPY Dockerfile .\n", &case).is_empty());
    let foobar = Ignored { paths: vec!["foobar"], ..Default::default() };
    let case = Case { ignore: Some(&foobar), ..PLAIN };
    let src =
        "FROM scratch AS base\nCOPY Dockerfile /foobar\nFROM base\nCOPY --from=base /foobar /Dockerfile\n";
    assert!(found(src, &case).is_empty(), "destinations and --from sources are not the context");
    let with_exception = Ignored { paths: vec!["Dockerfile"], exceptions: true, ..Default::default() };
    let case = Case { ignore: Some(&with_exception), ..PLAIN };
    assert!(found("FROM scratch\nCOPY ./Dockerfile .\n", &case).is_empty(), "exceptions silence the rule");
    let dotfiles = Ignored { paths: vec![".git"], ..Default::default() };
    assert!(found("FROM scratch\nCOPY . .\n", &Case { ignore: Some(&dotfiles), ..PLAIN }).is_empty());
    let everything = Ignored { root: true, ..Default::default() };
    assert_eq!(
        found("\nFROM scratch\nCOPY . .\n", &Case { ignore: Some(&everything), ..PLAIN }),
        one("CopyIgnoredFile", 3, "Attempting to Copy file \".\" that is excluded by .dockerignore")
    );
}

#[test]
fn check_directive_and_build_arg() {
    let src = |directive: &str| format!("#check={directive}\nFROM scratch as base\ncopy Dockerfile .\n");
    assert!(found(&src("skip=all"), &PLAIN).is_empty());
    assert!(found(&src("skip=ConsistentInstructionCasing,FromAsCasing"), &PLAIN).is_empty());
    let only_as = one("FromAsCasing", 2, "'as' and 'FROM' keywords' casing do not match");
    assert_eq!(found(&src("skip=ConsistentInstructionCasing"), &PLAIN), only_as);
    let arg = Case {
        build_args: &[("BUILDKIT_DOCKERFILE_CHECK", "skip=ConsistentInstructionCasing;error=true")],
        ..PLAIN
    };
    assert_eq!(found(&src("skip=all"), &arg), only_as, "the build arg replaces the directive");
    let report = report(&src("skip=ConsistentInstructionCasing"), &PLAIN);
    assert_eq!(report.rule_names(), ["FromAsCasing"]);
    let arg = Case { build_args: &[("BUILDKIT_DOCKERFILE_CHECK", "skip=all")], ..PLAIN };
    assert!(found(&src("error=true"), &arg).is_empty());
}
