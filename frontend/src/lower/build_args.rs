//! Build args: `--build-arg` values meeting ARG declarations. Owns the
//! global scope (the ARGs before the first FROM), the value an ARG takes in
//! a stage, the args a RUN step sees and records, the proxy args Docker
//! passes without a declaration, and the warning for build args that
//! nothing declared.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::expand;
use super::state::{StageCtx, StageState};
use crate::error::FrontendError;
use crate::graph::Warning;
use crate::instructions::{Instruction, Word};
use crate::shell::{Env, Lexer};
use crate::vars::Vars;

/// Proxy build args: passed to RUN without being declared and kept out of
/// the cache key and the history, as Docker does. Matched without regard to
/// case; each is given to the command in both spellings.
const PROXY_ARGS: &[&str] = &["http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"];

fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// An ARG's value from what the user gave: a `--build-arg` wins (and counts
/// as used), then the default, expanded in `env`. `None` when neither is
/// given; the caller decides what that means in its scope.
fn given_value(
    name: &Word,
    default: Option<&Word>,
    build_args: &BTreeMap<String, String>,
    lexer: &Lexer,
    env: &dyn Env,
    used: &mut BTreeSet<String>,
) -> Result<Option<String>, FrontendError> {
    if let Some(v) = build_args.get(&name.text) {
        used.insert(name.text.clone());
        return Ok(Some(v.clone()));
    }
    default.map(|d| expand(lexer, d, env)).transpose()
}

/// Declares ARGs before the first FROM in the global scope `globals`,
/// where their defaults are expanded. A global ARG without a value is set,
/// and empty (or keeps the value it has, such as a platform arg).
pub(super) fn declare_globals(
    decls: &[(Word, Option<Word>)],
    build_args: &BTreeMap<String, String>,
    lexer: &Lexer,
    globals: &mut Vars,
    used: &mut BTreeSet<String>,
) -> Result<(), FrontendError> {
    for (name, default) in decls {
        let value = match given_value(name, default.as_ref(), build_args, lexer, globals, used)? {
            Some(v) => v,
            None => globals.lookup(&name.text).unwrap_or_default().to_string(),
        };
        globals.set(&name.text, &value);
    }
    Ok(())
}

/// ARG inside a stage: a `--build-arg` wins, then the default (expanded in
/// the build environment so far), then a global of the same name. An arg
/// with a value joins the build environment; every declared arg, valued or
/// not, is recorded for the history of later RUN steps.
pub(super) fn lower_arg(
    ctx: &StageCtx,
    st: &mut StageState,
    instr: &Instruction,
    decls: &[(Word, Option<Word>)],
) -> Result<(), FrontendError> {
    let mut text = Vec::new();
    for (name, default) in decls {
        let given = given_value(
            name,
            default.as_ref(),
            &ctx.opts.build_args,
            ctx.lexer,
            &st.build_env,
            &mut st.used_build_args,
        )?;
        let value = given.or_else(|| ctx.globals.lookup(&name.text).map(str::to_string));
        if let Some(v) = &value {
            st.build_env.set(&name.text, v);
        }
        text.push(match &value {
            Some(v) => format!("{}={v}", name.text),
            None => name.text.clone(),
        });
        // A redeclared arg keeps its place and takes the new value, as in
        // current BuildKit (rare: scan only then).
        if st.arg_names.insert(name.text.clone()) {
            st.args.push((name.text.clone(), value));
        } else if let Some(slot) = st.args.iter_mut().find(|(k, _)| *k == name.text) {
            slot.1 = value;
        }
    }
    st.push_meta(instr, format!("ARG {}", text.join(" ")));
    Ok(())
}

/// Every declared arg with the value a RUN step sees (the build
/// environment wins over the declared value, which a later ENV may have
/// replaced), for the step's key and history.
pub(super) fn visible_args(declared: &[(String, Option<String>)], build_env: &Vars) -> Vec<(String, String)> {
    declared
        .iter()
        .map(|(k, v)| {
            let value = build_env.lookup(k).map(str::to_string).or_else(|| v.clone()).unwrap_or_default();
            (k.clone(), value)
        })
        .collect()
}

/// `KEY=value` for each proxy `--build-arg` no ARG declares, in upper and
/// lower case, unless the build environment already sets that spelling.
pub(super) fn proxy_env(
    build_args: &BTreeMap<String, String>,
    declared: &[(String, Option<String>)],
    build_env: &Vars,
) -> Vec<String> {
    let is_declared = |k: &str| declared.iter().any(|(a, _)| a.eq_ignore_ascii_case(k));
    let mut out: Vec<String> = Vec::new();
    for (k, v) in build_args {
        if !is_proxy_arg(k) || is_declared(k) {
            continue;
        }
        for spelling in [k.to_ascii_uppercase(), k.to_ascii_lowercase()] {
            if build_env.lookup(&spelling).is_none()
                && !out.iter().any(|e| e.starts_with(&format!("{spelling}=")))
            {
                out.push(format!("{spelling}={v}"));
            }
        }
    }
    out
}

/// A warning for each `--build-arg` that no ARG of a built stage declared;
/// proxy args never warn, since RUN uses them undeclared, nor does
/// `SOURCE_DATE_EPOCH`, the build's clock.
pub(super) fn unused_build_arg_warnings(
    build_args: &BTreeMap<String, String>,
    used: &BTreeSet<String>,
) -> Vec<Warning> {
    build_args
        .keys()
        .filter(|arg| !used.contains(*arg) && !is_proxy_arg(arg) && *arg != "SOURCE_DATE_EPOCH")
        .map(|arg| Warning {
            message: format!("build arg {arg:?} was given but no ARG in the built stages declares it"),
            span: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::Kind;
    use crate::lower::fixture::{Fixture, empty_state};
    use crate::lower::testing::instruction;

    /// Lowers `ARG …` lines in order into `st`.
    fn args(fx: &Fixture, st: &mut StageState, lines: &[&str]) -> Result<(), FrontendError> {
        for line in lines {
            let instr = instruction(line);
            let Kind::Arg(decls) = &instr.kind else { panic!("{line} is not an ARG") };
            lower_arg(&fx.ctx(), st, &instr, decls)?;
        }
        Ok(())
    }

    #[test]
    fn a_build_arg_wins_then_the_default_then_a_global() {
        let fx = Fixture::new().build_args(&[("CLI", "from-cli")]).globals(&[("G", "global"), ("CLI", "g")]);
        let mut st = empty_state();
        st.build_env.set("BASE", "b");
        args(&fx, &mut st, &["ARG CLI=default", "ARG D=$BASE-$CLI", "ARG G", "ARG NONE"]).unwrap();
        let env = |k: &str| st.build_env.lookup(k).map(str::to_string);
        assert_eq!(env("CLI").as_deref(), Some("from-cli"));
        assert_eq!(
            env("D").as_deref(),
            Some("b-from-cli"),
            "a default expands in the build environment so far"
        );
        assert_eq!(env("G").as_deref(), Some("global"), "an ARG without default takes the global");
        assert_eq!(env("NONE"), None, "an arg without any value stays out of the environment");
        assert_eq!(
            st.args,
            [
                ("CLI".to_string(), Some("from-cli".to_string())),
                ("D".to_string(), Some("b-from-cli".to_string())),
                ("G".to_string(), Some("global".to_string())),
                ("NONE".to_string(), None),
            ]
        );
        assert_eq!(st.used_build_args, BTreeSet::from(["CLI".to_string()]));
        let texts: Vec<&str> = st.steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["ARG CLI=from-cli", "ARG D=b-from-cli", "ARG G=global", "ARG NONE"]);
        assert_eq!(st.steps[3].created_by, "/bin/sh -c #(nop) ARG NONE");
    }

    #[test]
    fn a_redeclared_arg_keeps_its_place_with_its_new_value() {
        let fx = Fixture::new();
        let mut st = empty_state();
        args(&fx, &mut st, &["ARG A=1 B=2", "ARG A=3"]).unwrap();
        assert_eq!(
            st.args,
            [("A".to_string(), Some("3".to_string())), ("B".to_string(), Some("2".to_string()))]
        );
        assert_eq!(st.build_env.lookup("A"), Some("3"));
    }

    #[test]
    fn a_bad_default_is_an_error_at_the_default() {
        let fx = Fixture::new();
        let e = args(&fx, &mut empty_state(), &["ARG OK=1 BAD=${X:?required}"]).unwrap_err();
        assert_eq!(e.message, "cannot expand \"${X:?required}\": X: required");
        assert_eq!((e.span.start.col, e.span.end.col), (10, 28), "the span is the whole declaration");
    }

    #[test]
    fn globals_expand_in_the_global_scope() {
        let decls = |src: &str| match instruction(src).kind {
            Kind::Arg(d) => d,
            other => panic!("{other:?}"),
        };
        let mut globals = Vars::from(vec![("TARGETARCH".to_string(), "arm64".to_string())]);
        let mut used = BTreeSet::new();
        let build_args = BTreeMap::from([("V".to_string(), "2".to_string())]);
        let lexer = Lexer::new('\\');
        declare_globals(
            &decls("ARG V=1 IMG=app-$TARGETARCH:$V TARGETARCH E"),
            &build_args,
            &lexer,
            &mut globals,
            &mut used,
        )
        .unwrap();
        let get = |k: &str| globals.lookup(k).map(str::to_string);
        assert_eq!(get("IMG").as_deref(), Some("app-arm64:2"));
        assert_eq!(get("TARGETARCH").as_deref(), Some("arm64"));
        assert_eq!(get("E").as_deref(), Some(""));
        assert_eq!(used, BTreeSet::from(["V".to_string()]));
    }

    #[test]
    fn run_sees_each_declared_arg_with_its_current_value() {
        let declared = vec![
            ("A".to_string(), Some("declared".to_string())),
            ("B".to_string(), Some("declared".to_string())),
            ("C".to_string(), None),
        ];
        let env = Vars::from(vec![("A".to_string(), "env-wins".to_string())]);
        assert_eq!(
            visible_args(&declared, &env),
            [
                ("A".to_string(), "env-wins".to_string()),
                ("B".to_string(), "declared".to_string()),
                ("C".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn undeclared_proxy_args_go_to_run_in_both_spellings() {
        let build_args: BTreeMap<String, String> = [
            ("HTTP_PROXY", "http://p"),
            ("no_proxy", "local"),
            ("FTP_PROXY", "f"),
            ("OTHER", "o"),
            ("all_proxy", "a"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let declared = vec![("ftp_proxy".to_string(), None)];
        let env = Vars::from(vec![("ALL_PROXY".to_string(), "set".to_string())]);
        assert_eq!(
            proxy_env(&build_args, &declared, &env),
            ["HTTP_PROXY=http://p", "http_proxy=http://p", "all_proxy=a", "NO_PROXY=local", "no_proxy=local"],
            "a declared proxy arg is an ordinary arg; a spelling the environment sets is left alone"
        );
    }

    #[test]
    fn build_args_nothing_declared_warn_except_proxies() {
        let build_args: BTreeMap<String, String> = [("USED", "1"), ("TYPO", "2"), ("https_proxy", "p")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let warnings = unused_build_arg_warnings(&build_args, &BTreeSet::from(["USED".to_string()]));
        assert_eq!(
            warnings,
            [Warning {
                message: "build arg \"TYPO\" was given but no ARG in the built stages declares it".into(),
                span: None
            }]
        );
    }
}
