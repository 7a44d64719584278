//! Build checks from the command line: the settings (`# check=` or the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg), running the frontend's rules with
//! the context's `.dockerignore` and the store's base images, and showing
//! what they found — as text or BuildKit's JSON for `--call=check`, as
//! warnings after an ordinary build, or as the failure of a build whose
//! `# check=error=true` is violated.

use std::collections::{BTreeMap, BTreeSet};

use rbuild_builder::dockerignore::DockerIgnore;
use rbuild_builder::plan::{PlanOptions, store_resolver};
use rbuild_cache::Store;
use rbuild_frontend::checks::{self, CheckConfig, CheckInput, CheckReport, IgnoreRules, Violation};
use rbuild_frontend::graph::ImageMeta;
use rbuild_frontend::lower::{BaseResolver, Platform, ResolveError};
use rbuild_frontend::parser::Ast;
use serde_json::json;

use crate::dockerfile::Dockerfile;
use crate::report::Failure;

/// The build arg that replaces the `# check=` directive, as in BuildKit.
const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// A `.dockerignore` as the CopyIgnoredFile rule asks about it.
struct IgnoreFile<'a>(&'a DockerIgnore);

impl IgnoreRules for IgnoreFile<'_> {
    fn has_exceptions(&self) -> bool {
        self.0.patterns().iter().any(|p| p.is_exception())
    }
    fn excludes_root_entries(&self) -> bool {
        self.0.patterns().iter().any(|p| !p.is_exception() && matches!(p.text(), "*" | "**" | "**/*"))
    }
    fn excludes(&self, path: &str) -> bool {
        self.0.is_excluded(path)
    }
}

/// What a check run needs from the build's flags.
pub struct CheckRun<'a> {
    pub store: &'a Store,
    pub images: &'a PlanOptions<'a>,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    pub ignore: &'a DockerIgnore,
    /// `--build-context` names: a FROM naming one is not looked up (nor
    /// pulled) as an image.
    pub named_contexts: Vec<String>,
}

/// Looks base images up, except names a `--build-context` stands for.
struct SkipNamedContexts<'a, R> {
    inner: R,
    names: &'a [String],
}

impl<R: BaseResolver> BaseResolver for SkipNamedContexts<'_, R> {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<ImageMeta, ResolveError> {
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(reference)) {
            return Err(ResolveError { message: format!("{reference} is a build context"), hint: None });
        }
        self.inner.resolve(reference, platform)
    }
}

impl CheckRun<'_> {
    /// The settings in force: the build arg if given, else the directive.
    pub fn config(&self, ast: &Ast, dockerfile: &Dockerfile) -> Result<CheckConfig, Failure> {
        let directive = ast.directives.check.as_ref().map(|d| d.value.as_str());
        let build_arg = self.build_args.get(CHECK_BUILD_ARG).map(String::as_str);
        CheckConfig::for_build(directive, build_arg).map_err(|e| {
            let source = if build_arg.is_some() {
                format!("--build-arg {CHECK_BUILD_ARG}")
            } else {
                format!("the # check= directive of {}", dockerfile.name)
            };
            Failure::new(format!("cannot read the check settings in {source}: {e}"))
                .hint("write e.g. `# check=skip=JSONArgsRecommended,FromAsCasing;error=true` or `skip=all`")
        })
    }

    /// Runs the rules; `stages: None` checks every stage's instructions.
    pub fn run(&self, ast: &Ast, config: CheckConfig, stages: Option<&BTreeSet<usize>>) -> CheckReport {
        let platform = Platform::host();
        let ignore = IgnoreFile(self.ignore);
        let input = CheckInput {
            config,
            build_args: self.build_args,
            target: self.target,
            platform: &platform,
            stages,
            ignore: Some(&ignore),
        };
        let mut resolver =
            SkipNamedContexts { inner: store_resolver(self.store, self.images), names: &self.named_contexts };
        checks::check(ast, &input, &mut resolver)
    }
}

/// One violation as text: `FILE:LINE: Rule: message`, the line, and why.
pub fn render(dockerfile: &Dockerfile, v: &Violation) -> String {
    let line = v.span.start.line;
    let mut out = format!("{}:{line}: {}: {}\n", dockerfile.name, v.rule.name, v.message);
    if let Some(text) = dockerfile.text.lines().nth(line.wrapping_sub(1)) {
        out.push_str(&format!(" {line} | {}\n", text.trim_end_matches('\r')));
    }
    out.push_str(&format!("  {}: {}\n", v.rule.description, v.rule.explanation));
    out
}

/// `--call=check` as text: every violation, then a summary line.
pub fn text_report(dockerfile: &Dockerfile, report: &CheckReport) -> String {
    let mut out = String::new();
    for v in &report.violations {
        out.push_str(&render(dockerfile, v));
        out.push('\n');
    }
    match report.violations.len() {
        0 => out.push_str("Check complete, no warnings found.\n"),
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => out.push_str(&format!("Check complete, {n} warnings have been found!\n")),
    }
    out
}

/// `--call=check,format=json`: BuildKit's lint result shape (`warnings`
/// with `ruleName`, `description`, `detail` and a `location` whose lines
/// and characters count from 1, `sources`, and `buildError` when the file
/// could not be read), plus our `explanation`.
pub fn json_report(dockerfile: &Dockerfile, report: &CheckReport) -> serde_json::Value {
    let range = |span: rbuild_frontend::span::Span| {
        json!({
            "start": { "line": span.start.line, "character": span.start.col },
            "end": { "line": span.end.line, "character": span.end.col },
        })
    };
    let warnings: Vec<serde_json::Value> = report
        .violations
        .iter()
        .map(|v| {
            json!({
                "ruleName": v.rule.name,
                "description": v.rule.description,
                "detail": v.message,
                "explanation": v.rule.explanation,
                "location": { "sourceIndex": 0, "ranges": [range(v.span)] },
            })
        })
        .collect();
    let mut out = json!({
        "warnings": warnings,
        "sources": [{ "filename": dockerfile.name, "language": "Dockerfile" }],
    });
    if let Some(e) = &report.error {
        out["buildError"] =
            json!({ "message": e.message, "location": { "sourceIndex": 0, "ranges": [range(e.span)] } });
    }
    out
}

/// The failure of a build run with `# check=error=true` that violates a rule.
pub fn violations_failure(dockerfile: &Dockerfile, report: &CheckReport) -> Failure {
    let detail: String = report.violations.iter().map(|v| render(dockerfile, v)).collect();
    Failure::new(format!("lint violation found for rules: {}", report.rule_names().join(", ")))
        .detail(detail)
        .hint("the Dockerfile sets # check=error=true: fix these, or skip a rule with # check=skip=RULE")
}
