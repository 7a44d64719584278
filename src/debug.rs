//! `rbuild debug …`: the parse tree in BuildKit's dump format, and the
//! lowered step graph as Graphviz dot or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rbuild_cache::Store;
use rbuild_frontend::error::FrontendError;
use rbuild_frontend::graph::{
    Base, CopySource, FileMode, ImageMeta, Mount, MountSource, Op, Stage, Step, StepGraph,
};
use rbuild_frontend::lower::{BaseResolver, LowerOptions, ResolveError, lower};
use serde_json::{Value, json};

use crate::cli::{DebugCommand, GraphArgs, GraphFormat};
use crate::dockerfile::Dockerfile;
use crate::report::Failure;

pub fn run(what: DebugCommand, root: &Path) -> Result<(), Failure> {
    match what {
        DebugCommand::Ast { file } => {
            let ast = parse(&Dockerfile::read(&file)?)?;
            println!("{}", ast.dump());
            Ok(())
        }
        DebugCommand::Graph(args) => graph(args, root),
    }
}

fn parse(dockerfile: &Dockerfile) -> Result<rbuild_frontend::parser::Ast, Failure> {
    rbuild_frontend::parser::parse(&dockerfile.text).map_err(|e| {
        let fe = FrontendError { message: e.message.clone(), span: e.span, hint: e.hint.clone() };
        Failure::new("the Dockerfile does not parse").detail(fe.render(&dockerfile.name, &dockerfile.text))
    })
}

/// Base images from the store when there is one; an image it does not
/// hold is drawn all the same, with no metadata (its ENV, USER… unknown).
struct LenientResolver {
    store: Option<Store>,
    unknown: Vec<String>,
}

impl BaseResolver for LenientResolver {
    fn resolve(
        &mut self,
        reference: &str,
        _platform: &rbuild_frontend::graph::Platform,
    ) -> Result<ImageMeta, ResolveError> {
        let found = self.store.as_ref().and_then(|s| {
            let canonical = rbuild_oci::reference::Reference::parse(reference).ok().map(|r| r.canonical());
            let id = s.resolve_image(reference, canonical.as_deref()).ok()?;
            s.image_config(&id).ok()
        });
        match found {
            Some((_, config)) => Ok(rbuild_builder::meta::meta_from_config(&config.config)),
            None => {
                self.unknown.push(reference.to_string());
                Ok(ImageMeta::default())
            }
        }
    }
}

fn graph(args: GraphArgs, root: &Path) -> Result<(), Failure> {
    let file = args.file.clone().unwrap_or_else(|| args.context.join("Dockerfile"));
    let dockerfile = Dockerfile::read(&file)?;
    let ast = parse(&dockerfile)?;
    let build_args: BTreeMap<String, String> = args
        .build_args
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (a.clone(), std::env::var(a).unwrap_or_default()),
        })
        .collect();
    // Nothing runs here, so an insecure step is shown rather than refused.
    let opts = LowerOptions {
        build_args,
        target: args.target.clone(),
        allow_insecure: true,
        allow_network_host: true,
        ..LowerOptions::default()
    };
    // Only an existing store is read: printing a graph never creates one.
    let store = if root.join("VERSION").exists() { Store::open(root).ok() } else { None };
    let mut resolver = LenientResolver { store, unknown: Vec::new() };
    let graph = lower(&ast, &opts, &mut resolver).map_err(|e| dockerfile.failure(e))?;
    for w in &graph.warnings {
        eprintln!("{}", dockerfile.warning(w));
    }
    for image in &resolver.unknown {
        eprintln!("note: image {image} is not in the store; its metadata (ENV, USER, ONBUILD…) is not shown");
    }
    match args.format {
        GraphFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&graph_json(&graph)).unwrap_or_default())
        }
        GraphFormat::Dot => print!("{}", graph_dot(&graph)),
    }
    Ok(())
}

fn base_text(graph: &StepGraph, base: &Base) -> String {
    match base {
        Base::Scratch => "scratch".into(),
        Base::Image(r) => r.clone(),
        Base::Stage(i) => graph.stages[*i].label.clone(),
    }
}

fn mode_text(m: &Option<FileMode>) -> Value {
    match m {
        None => Value::Null,
        Some(FileMode::Octal(o)) => json!(format!("{o:04o}")),
        Some(FileMode::Symbolic(s)) => json!(s),
    }
}

fn source_json(graph: &StepGraph, from: &MountSource) -> Value {
    match from {
        MountSource::Context => json!({"context": true}),
        MountSource::Stage(i) => json!({"stage": graph.stages[*i].label}),
        MountSource::Image(r) => json!({"image": r}),
    }
}

fn step_json(graph: &StepGraph, step: &Step) -> Value {
    let mut v = json!({"line": step.span.start.line, "text": step.text});
    let op = match &step.op {
        Op::Meta => json!({"kind": "meta"}),
        Op::Mkdir(m) => json!({"kind": "mkdir", "path": m.path, "user": m.user}),
        Op::Run(r) => {
            let mounts: Vec<Value> = r
                .mounts
                .iter()
                .map(|m| match m {
                    Mount::Bind { target, from, source, readwrite } => json!({"type": "bind", "target": target, "from": source_json(graph, from), "source": source, "rw": readwrite}),
                    Mount::Cache { id, target, sharing, .. } => json!({"type": "cache", "id": id, "target": target, "sharing": format!("{sharing:?}").to_lowercase()}),
                    Mount::Tmpfs { target, size } => json!({"type": "tmpfs", "target": target, "size": size}),
                    Mount::Secret { id, target, env, required, .. } => json!({"type": "secret", "id": id, "target": target, "env": env, "required": required}),
                    Mount::Ssh { id, target, required, .. } => json!({"type": "ssh", "id": id, "target": target, "required": required}),
                })
                .collect();
            json!({
                "kind": "run", "argv": r.argv, "env": r.env, "user": r.user, "workdir": r.workdir,
                "network": format!("{:?}", r.network).to_lowercase(), "mounts": mounts,
                "script": r.script.as_ref().map(|s| &s.name),
            })
        }
        Op::Copy(c) => {
            let source = match &c.source {
                CopySource::Context => json!({"context": true}),
                CopySource::Stage(i) => json!({"stage": graph.stages[*i].label}),
                CopySource::Image(r) => json!({"image": r}),
            };
            json!({
                "kind": if c.extract_archives { "add" } else { "copy" }, "from": source,
                "paths": c.paths.iter().map(|p| &p.path).collect::<Vec<_>>(),
                "urls": c.urls.iter().map(|p| &p.path).collect::<Vec<_>>(),
                "git": c.git.iter().map(rbuild_builder::git::display).collect::<Vec<_>>(),
                "inline": c.inline.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                "dest": c.dest, "chown": c.chown, "chmod": mode_text(&c.chmod), "link": c.link,
                "parents": c.parents, "exclude": c.exclude, "checksum": c.checksum,
            })
        }
    };
    if let (Value::Object(a), Value::Object(b)) = (&mut v, op) {
        a.extend(b);
    }
    v
}

fn graph_json(graph: &StepGraph) -> Value {
    let stages: Vec<Value> = graph
        .stages
        .iter()
        .map(|s| {
            json!({
                "index": s.index, "name": s.name, "label": s.label, "base": base_text(graph, &s.base),
                "needed": s.needed, "line": s.span.start.line,
                "deps": s.deps.iter().map(|d| &graph.stages[*d].label).collect::<Vec<_>>(),
                "steps": s.steps.iter().map(|st| step_json(graph, st)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let warnings: Vec<Value> = graph
        .warnings
        .iter()
        .map(|w| json!({"message": w.message, "line": w.span.map(|s| s.start.line)}))
        .collect();
    json!({"target": graph.stages[graph.target].label, "stages": stages, "warnings": warnings})
}

/// A dot string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn short(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(59).collect::<String>())
    } else {
        one_line
    }
}

/// The node of a stage's last step (what later stages read).
fn last_node(stage: &Stage) -> String {
    let n = stage.steps.iter().filter(|s| s.is_filesystem()).count();
    format!("s{}_{}", stage.index, n)
}

fn graph_dot(graph: &StepGraph) -> String {
    let mut out = String::from(
        "digraph rbuild {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
    );
    let mut images = ImageNodes::default();
    let mut edges = Vec::new();
    for stage in &graph.stages {
        stage_dot(&mut out, &mut edges, graph, stage, &mut images);
    }
    for (r, node) in &images.0 {
        let _ = writeln!(out, "  {node} [label={}, shape=cylinder];", quote(r));
    }
    for e in edges {
        out.push_str(&e);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// The nodes of the images a graph names, by reference: `img0`, `img1`, …
/// in the order they are first met.
#[derive(Default)]
struct ImageNodes(BTreeMap<String, String>);

impl ImageNodes {
    fn node(&mut self, reference: &str) -> String {
        let n = self.0.len();
        self.0.entry(reference.to_string()).or_insert_with(|| format!("img{n}")).clone()
    }
}

/// A stage as a cluster of its filesystem steps in order; the edges from
/// what they read (other stages, images, the base) go to `edges`, drawn
/// after every cluster.
fn stage_dot(
    out: &mut String,
    edges: &mut Vec<String>,
    graph: &StepGraph,
    stage: &Stage,
    images: &mut ImageNodes,
) {
    let style = if stage.needed { "" } else { " style=dashed; color=gray; fontcolor=gray;" };
    let title =
        if stage.index == graph.target { format!("{} (target)", stage.label) } else { stage.label.clone() };
    let _ = writeln!(out, "  subgraph cluster_{} {{\n    label={};{style}", stage.index, quote(&title));
    let _ =
        writeln!(out, "    s{}_0 [label={}, shape=ellipse];", stage.index, quote(&short(&stage.from_text)));
    for (number, step) in (1..).zip(stage.steps.iter().filter(|s| s.is_filesystem())) {
        let _ = writeln!(out, "    s{}_{number} [label={}];", stage.index, quote(&short(&step.text)));
        let _ = writeln!(out, "    s{}_{} -> s{}_{number};", stage.index, number - 1, stage.index);
        for from in step_reads(graph, step, images) {
            edges.push(format!("  {from} -> s{}_{number} [style=dashed];", stage.index));
        }
    }
    out.push_str("  }\n");
    match &stage.base {
        Base::Stage(i) => edges.push(format!("  {} -> s{}_0;", last_node(&graph.stages[*i]), stage.index)),
        Base::Image(r) => edges.push(format!("  {} -> s{}_0;", images.node(r), stage.index)),
        Base::Scratch => {}
    }
}

/// The nodes a step reads from outside its stage: `COPY --from` and
/// `RUN --mount=from=` of a stage or an image.
fn step_reads(graph: &StepGraph, step: &Step, images: &mut ImageNodes) -> Vec<String> {
    let mut reads = Vec::new();
    match &step.op {
        Op::Copy(c) => match &c.source {
            CopySource::Stage(i) => reads.push(last_node(&graph.stages[*i])),
            CopySource::Image(r) => reads.push(images.node(r)),
            CopySource::Context => {}
        },
        Op::Run(r) => {
            for m in &r.mounts {
                match m {
                    Mount::Bind { from: MountSource::Stage(i), .. }
                    | Mount::Cache { from: Some(MountSource::Stage(i)), .. } => {
                        reads.push(last_node(&graph.stages[*i]))
                    }
                    Mount::Bind { from: MountSource::Image(r), .. }
                    | Mount::Cache { from: Some(MountSource::Image(r)), .. } => reads.push(images.node(r)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_are_escaped() {
        assert_eq!(quote("say \"hi\"\\n"), "\"say \\\"hi\\\"\\\\n\"");
        assert_eq!(short("RUN  a\n  b"), "RUN a b");
    }
}
