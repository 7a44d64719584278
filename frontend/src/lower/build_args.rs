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
        // A redeclared arg moves to the end (rare: scan only then).
        if !st.arg_names.insert(name.text.clone()) {
            st.args.retain(|(k, _)| *k != name.text);
        }
        st.args.push((name.text.clone(), value));
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
/// proxy args never warn, since RUN uses them undeclared.
pub(super) fn unused_build_arg_warnings(
    build_args: &BTreeMap<String, String>,
    used: &BTreeSet<String>,
) -> Vec<Warning> {
    build_args
        .keys()
        .filter(|arg| !used.contains(*arg) && !is_proxy_arg(arg))
        .map(|arg| Warning {
            message: format!("build arg {arg:?} was given but no ARG in the built stages declares it"),
            span: None,
        })
        .collect()
}
