//! `--call=METHOD[,format=json]` and `--check`: instead of building, ask
//! the frontend something, as `docker buildx build --call` does.
//! `check` runs the build checks over every stage and exits 1 when any rule
//! is violated; `outline` lists the build args, secrets and SSH ids the
//! target uses; `targets` lists the stages. Nothing is built or stored.

use std::fmt::Write as _;

use rbuild_builder::plan::PlanOptions;
use rbuild_cache::Store;
use rbuild_frontend::checks::outline::{Outline, Target, outline, targets};
use rbuild_frontend::error::FrontendError;
use rbuild_frontend::parser::{self, Ast};
use serde_json::json;

use super::checks::{CheckRun, json_report, text_report};
use super::request::{self, Request};
use crate::cli::{BuildArgs, ProgressMode};
use crate::dockerfile::Dockerfile;
use crate::registry::{self, Fetcher, Registries};
use crate::report::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Build,
    Check,
    Outline,
    Targets,
}

/// A parsed `--call` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub json: bool,
}

impl Call {
    /// `--call` and `--check` from the command line (`build` when neither).
    pub fn from_args(args: &BuildArgs) -> Result<Call, Failure> {
        let call = match args.call.as_deref() {
            None => Call { method: Method::Build, json: false },
            Some(value) => Call::parse(value)?,
        };
        if args.check {
            if !matches!(call.method, Method::Build | Method::Check) {
                return Err(Failure::new(
                    "--check is --call=check and cannot be combined with another --call",
                )
                .hint("give one of them"));
            }
            return Ok(Call { method: Method::Check, ..call });
        }
        Ok(call)
    }

    fn parse(value: &str) -> Result<Call, Failure> {
        let bad = |what: String| {
            Failure::new(format!("invalid --call value {value:?}: {what}"))
                .hint("use --call=check, --call=outline, --call=targets or --call=build, optionally with ,format=json (e.g. --call=check,format=json)")
        };
        let mut parts = value.split(',');
        let method = match parts.next().unwrap_or_default().trim() {
            "build" => Method::Build,
            "check" => Method::Check,
            "outline" => Method::Outline,
            "targets" => Method::Targets,
            other => return Err(bad(format!("unknown method {other:?}"))),
        };
        let mut json = false;
        for option in parts {
            match option.trim().split_once('=') {
                Some(("format", "json")) => json = true,
                Some(("format", "text")) => json = false,
                _ => return Err(bad(format!("unknown option {option:?}"))),
            }
        }
        Ok(Call { method, json })
    }
}

/// Answers a `--call` other than `build`.
pub fn run(store: &Store, args: &BuildArgs, request: &Request, call: Call) -> Result<(), Failure> {
    let dockerfile = Dockerfile::for_build(args.file.as_deref(), &request.context)?;
    let ast = parse(&dockerfile)?;
    match call.method {
        Method::Build => Ok(()),
        Method::Check => check(store, args, request, &dockerfile, &ast, call.json),
        Method::Targets => {
            let found = targets(&ast);
            print!(
                "{}",
                if call.json { pretty(&targets_json(&found, &dockerfile)) } else { targets_text(&found) }
            );
            Ok(())
        }
        Method::Outline => {
            let registries = registries(args);
            let planned = super::plan(store, args, request, &dockerfile, &registries, &request.platforms[0])?;
            let found = outline(&planned.ast, &planned.graph);
            print!("{}", if call.json { pretty(&outline_json(&found)) } else { outline_text(&found) });
            Ok(())
        }
    }
}

fn parse(dockerfile: &Dockerfile) -> Result<Ast, Failure> {
    parser::parse(&dockerfile.text)
        .map_err(|e| dockerfile.failure(FrontendError { message: e.message, span: e.span, hint: e.hint }))
}

fn registries(args: &BuildArgs) -> Registries {
    let quiet = args.quiet || args.progress == ProgressMode::Quiet;
    Registries::new(
        &args.registry.insecure_registry,
        registry::transfer_progress(quiet, args.progress == ProgressMode::Plain),
    )
}

/// Every stage checked; exit 1 when a rule is violated or the file would
/// not build (an instruction that cannot be read, or an error lowering the
/// target; shown after the warnings).
fn check(
    store: &Store,
    args: &BuildArgs,
    request: &Request,
    dockerfile: &Dockerfile,
    ast: &Ast,
    json: bool,
) -> Result<(), Failure> {
    let registries = registries(args);
    let fetcher = Fetcher { registries: &registries, store };
    let images = PlanOptions { fetcher: Some(&fetcher), refresh: args.pull };
    let ignore = super::read_dockerignore(&request.context, &dockerfile.path)?;
    let build_args = request::build_args(&args.build_args);
    let run = CheckRun {
        store,
        images: &images,
        build_args: &build_args,
        target: args.target.as_deref(),
        ignore: &ignore,
        named_contexts: request.named_contexts.iter().map(|c| c.name.clone()).collect(),
    };
    let config = run.config(ast, dockerfile)?;
    let mut report = run.run(ast, config, None);
    if report.error.is_none() {
        // What a build would stop at besides the rules (an unknown --from
        // stage, a bad mount), as BuildKit's check reports it too.
        report.error =
            super::plan_frontend(store, args, request, dockerfile, &registries, &request.platforms[0])?.err();
    }
    print!(
        "{}",
        if json { pretty(&json_report(dockerfile, &report)) } else { text_report(dockerfile, &report) }
    );
    if let Some(error) = report.error {
        return Err(dockerfile.failure(error));
    }
    match report.violations.len() {
        0 => Ok(()),
        n => Err(Failure::new(format!(
            "{} violates the build checks ({n} warning{})",
            dockerfile.name,
            if n == 1 { "" } else { "s" }
        ))
        .hint("fix them, or skip a rule with `# check=skip=RULE` at the top of the Dockerfile")),
    }
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Rows of cells as columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn targets_text(found: &[Target]) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for (index, t) in found.iter().enumerate() {
        let name = t.name.clone().unwrap_or_else(|| format!("stage-{index}"));
        let name = if t.default { format!("{name} (default)") } else { name };
        rows.push(vec![name, t.description.clone().unwrap_or_default()]);
    }
    table(&rows)
}

fn targets_json(found: &[Target], dockerfile: &Dockerfile) -> serde_json::Value {
    let targets: Vec<serde_json::Value> = found
        .iter()
        .map(|t| {
            let mut target = json!({ "base": t.base, "location": { "line": t.span.start.line } });
            if let Some(name) = &t.name {
                target["name"] = json!(name);
            }
            if t.default {
                target["default"] = json!(true);
            }
            if let Some(d) = &t.description {
                target["description"] = json!(d);
            }
            if let Some(p) = &t.platform {
                target["platform"] = json!(p);
            }
            target
        })
        .collect();
    json!({ "targets": targets, "sources": [dockerfile.name] })
}

fn outline_text(found: &Outline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "TARGET:      {}", found.target.as_deref().unwrap_or("(default)"));
    if let Some(d) = &found.description {
        let _ = writeln!(out, "DESCRIPTION: {d}");
    }
    if !found.args.is_empty() {
        let mut rows = vec![vec!["BUILD ARG".to_string(), "DEFAULT".to_string(), "DESCRIPTION".to_string()]];
        for a in &found.args {
            rows.push(vec![
                a.name.clone(),
                a.default.clone().unwrap_or_default(),
                a.description.clone().unwrap_or_default(),
            ]);
        }
        out.push('\n');
        out.push_str(&table(&rows));
    }
    for (title, list) in [("SECRET", &found.secrets), ("SSH", &found.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
        rows.extend(
            list.iter().map(|m| vec![m.id.clone(), if m.required { "true" } else { "" }.to_string()]),
        );
        out.push('\n');
        out.push_str(&table(&rows));
    }
    out
}

fn outline_json(found: &Outline) -> serde_json::Value {
    let args: Vec<serde_json::Value> = found
        .args
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "value": a.default,
                "description": a.description,
                "location": { "line": a.span.start.line },
            })
        })
        .collect();
    let mounts = |list: &[rbuild_frontend::checks::outline::MountUse]| -> Vec<serde_json::Value> {
        list.iter().map(|m| json!({ "name": m.id, "required": m.required })).collect()
    };
    json!({
        "name": found.target,
        "description": found.description,
        "args": args,
        "secrets": mounts(&found.secrets),
        "ssh": mounts(&found.ssh),
    })
}
