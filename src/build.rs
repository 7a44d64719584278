//! `rbuild build`: read the Dockerfile and context, plan, solve, then store
//! the image under its tags and write the requested outputs.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rbuild_builder::context::BuildContext;
use rbuild_builder::dockerignore::{self, DockerIgnore};
use rbuild_builder::options::{BuildOptions, CacheSource};
use rbuild_builder::plan::{PlanOptions, plan_with};
use rbuild_builder::progress::Progress;
use rbuild_builder::sandbox::NamespaceSandbox;
use rbuild_builder::snapshot::OverlaySnapshotter;
use rbuild_builder::solve;
use rbuild_cache::Store;
use rbuild_frontend::error::FrontendError;
use rbuild_frontend::graph::{Base, StepGraph};
use rbuild_frontend::lower::{LowerOptions, Platform};
use rbuild_oci::digest::Digest;
use rbuild_oci::reference::Reference;
use rbuild_registry::build_cache::{self, CacheLocation, CacheMode, CacheTo, ImportedCache};

use crate::cli::{BuildArgs, ProgressMode};
use crate::progress::renderer;
use crate::registry::{self, Fetcher, ImportedCacheSource, Registries, UrlDownloads};
use crate::report::Failure;

/// Where the build's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    DockerArchive(PathBuf),
    OciArchive(PathBuf),
    LocalDir(PathBuf),
    RootfsTar(PathBuf),
}

/// Parses `-o` values: `type=docker,dest=F`, `type=oci,dest=F`,
/// `type=local,dest=D`, `type=tar,dest=F`, or a bare directory.
pub fn parse_output(spec: &str) -> Result<Output, Failure> {
    if !spec.contains('=') {
        return Ok(Output::LocalDir(PathBuf::from(spec)));
    }
    let mut kind = None;
    let mut dest = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            _ => {
                return Err(Failure::new(format!("unknown field {field:?} in --output {spec:?}"))
                    .hint("write type=docker|oci|tar|local,dest=PATH"));
            }
        }
    }
    let dest = dest.ok_or_else(|| Failure::new(format!("--output {spec:?} needs dest=PATH")))?;
    match kind.as_deref() {
        Some("docker") => Ok(Output::DockerArchive(dest)),
        Some("oci") => Ok(Output::OciArchive(dest)),
        Some("local") => Ok(Output::LocalDir(dest)),
        Some("tar") => Ok(Output::RootfsTar(dest)),
        Some(other) => {
            Err(Failure::new(format!("unknown output type {other:?}")).hint("use docker, oci, tar or local"))
        }
        None => Err(Failure::new(format!("--output {spec:?} needs type=…"))
            .hint("write type=docker|oci|tar|local,dest=PATH")),
    }
}

/// `-o type=image,name=REF[,push=true]`: name the result in the store, and
/// push it when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutput {
    pub names: Vec<Reference>,
    pub push: bool,
}

/// Parses `type=image,…`; `None` when `spec` is another kind of output.
pub fn parse_image_output(spec: &str) -> Option<Result<ImageOutput, Failure>> {
    if !spec.split(',').any(|f| f == "type=image" || f == "type=registry") {
        return None;
    }
    // `type=registry` is BuildKit's shorthand for an image output that pushes.
    let mut out = ImageOutput { names: Vec::new(), push: spec.split(',').any(|f| f == "type=registry") };
    for field in spec.split(',') {
        let parsed = match field.split_once('=') {
            Some(("type", _)) => Ok(()),
            Some(("name", names)) => names.split(';').try_for_each(|n| {
                let r = Reference::parse(n)
                    .map_err(|e| Failure::new(format!("invalid name {n:?} in --output {spec:?}: {e}")))?;
                out.names.push(r);
                Ok(())
            }),
            Some(("push", v)) => v
                .parse::<bool>()
                .map(|push| out.push = push)
                .map_err(|_| Failure::new(format!("push={v} in --output {spec:?} must be true or false"))),
            _ => Err(Failure::new(format!("unknown field {field:?} in --output {spec:?}"))
                .hint("write type=image,name=REGISTRY/NAME:TAG[,push=true]")),
        };
        if let Err(e) = parsed {
            return Some(Err(e));
        }
    }
    if out.names.is_empty() {
        return Some(Err(Failure::new(format!("--output {spec:?} needs name=REF"))
            .hint("write type=image,name=REGISTRY/NAME:TAG[,push=true]")));
    }
    Some(Ok(out))
}

/// Labels of the target stage and the stages it is built on (`FROM
/// stage`): the steps whose layers the final image holds.
fn target_chain(graph: &StepGraph) -> Vec<String> {
    let mut labels = Vec::new();
    let mut at = Some(graph.target);
    while let Some(i) = at {
        let stage = &graph.stages[i];
        labels.push(stage.label.clone());
        at = match stage.base {
            Base::Stage(parent) if !labels.contains(&graph.stages[parent].label) => Some(parent),
            _ => None,
        };
    }
    labels
}

fn parse_build_args(raw: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            // `--build-arg NAME` takes the value from the environment, as Docker does.
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    out
}

fn parse_secrets(raw: &[String]) -> Result<BTreeMap<String, Vec<u8>>, Failure> {
    let mut out = BTreeMap::new();
    for spec in raw {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", _)) => {}
                _ => {
                    return Err(Failure::new(format!("invalid --secret {spec:?}"))
                        .hint("write id=ID,src=FILE or id=ID,env=VAR"));
                }
            }
        }
        let id = id.ok_or_else(|| Failure::new(format!("--secret {spec:?} needs id=…")))?;
        let value = match (src, env) {
            (Some(path), _) => {
                fs::read(&path).map_err(|e| Failure::new(format!("cannot read secret file {path}: {e}")))?
            }
            (None, Some(var)) => std::env::var(&var)
                .map_err(|_| Failure::new(format!("secret {id}: environment variable {var} is not set")))?
                .into_bytes(),
            (None, None) => std::env::var(&id)
                .map_err(|_| Failure::new(format!("secret {id}: give src=FILE or env=VAR")))?
                .into_bytes(),
        };
        out.insert(id, value);
    }
    Ok(out)
}

/// Reads the Dockerfile named by `-f` (or CONTEXT/Dockerfile, or stdin for `-`).
fn read_dockerfile(args: &BuildArgs, context: &Path) -> Result<(PathBuf, String), Failure> {
    match &args.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::new(format!("cannot read the Dockerfile from stdin: {e}")))?;
            Ok((PathBuf::from("-"), text))
        }
        file => {
            let path = file.clone().unwrap_or_else(|| context.join("Dockerfile"));
            match fs::read_to_string(&path) {
                Ok(t) => Ok((path, t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(Failure::new(format!("cannot find the Dockerfile {}", path.display()))
                        .hint("name it with -f PATH, or create CONTEXT/Dockerfile"))
                }
                Err(e) => Err(Failure::new(format!("cannot read the Dockerfile {}: {e}", path.display()))),
            }
        }
    }
}

pub fn run(store: &Store, args: BuildArgs) -> Result<(), Failure> {
    let context = args.context.canonicalize().map_err(|e| {
        Failure::new(format!("cannot use build context {}: {e}", args.context.display()))
            .hint("the last argument is the context directory, e.g. `rbuild -t app .`")
    })?;
    if !context.is_dir() {
        return Err(Failure::new(format!("build context {} is not a directory", context.display())));
    }
    let mut outputs = Vec::new();
    let mut image_outputs = Vec::new();
    for o in &args.output {
        match parse_image_output(o) {
            Some(image) => image_outputs.push(image?),
            None => outputs.push(parse_output(o)?),
        }
    }
    let cache_to = args
        .cache_to
        .iter()
        .map(|s| CacheTo::parse(s).map_err(registry::failure))
        .collect::<Result<Vec<_>, _>>()?;
    let cache_from = args
        .cache_from
        .iter()
        .map(|s| build_cache::parse_cache_from(s).map_err(registry::failure))
        .collect::<Result<Vec<_>, _>>()?;
    if args.push && args.tags.is_empty() {
        return Err(Failure::new("--push needs a name to push to").hint("add -t REGISTRY/NAME:TAG"));
    }
    let quiet_transfers = args.quiet || args.progress == ProgressMode::Quiet;
    let registries = Registries::new(
        &args.registry.insecure_registry,
        registry::transfer_progress(quiet_transfers, args.progress == ProgressMode::Plain),
    );
    let mut tags = Vec::new();
    for t in &args.tags {
        let r = Reference::parse(t).map_err(|e| {
            Failure::new(format!("invalid tag {t:?}: {e}"))
                .hint("a tag looks like name:tag or registry/name:tag")
        })?;
        tags.push(r);
    }
    let (dockerfile_path, text) = read_dockerfile(&args, &context)?;
    let dockerfile_name = dockerfile_path.display().to_string();
    let ignore = match dockerignore::read_for_dockerfile(&context, &dockerfile_path)
        .map_err(|e| Failure::new(format!("cannot read .dockerignore: {e}")))?
    {
        Some((path, content)) => {
            DockerIgnore::parse(&content).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?
        }
        None => DockerIgnore::empty(),
    };
    let mut lower_opts = LowerOptions {
        build_args: parse_build_args(&args.build_args),
        target: args.target.clone(),
        platform: Platform::host(),
    };
    if let Some(p) = &args.platform
        && p != &lower_opts.platform.spec()
    {
        return Err(Failure::new(format!(
            "platform {p} is not supported: rbuild builds for the host platform {}",
            lower_opts.platform.spec()
        )));
    }
    lower_opts.platform = Platform::host();
    let render = |e: FrontendError| {
        let title = e.message.clone();
        let hint = e.hint.clone();
        let mut f =
            Failure::new(title).detail(FrontendError { hint: None, ..e }.render(&dockerfile_name, &text));
        f.hint = hint;
        f
    };
    let fetcher = Fetcher { registries: &registries, store };
    let planned =
        plan_with(store, &text, &lower_opts, &PlanOptions { fetcher: Some(&fetcher), refresh: args.pull })
            .map_err(render)?;
    let progress = renderer(args.progress, args.quiet);
    for w in &planned.graph.warnings {
        let at = w.span.map(|s| format!("{dockerfile_name}:{}: ", s.start.line)).unwrap_or_default();
        progress.line(&format!("warning: {at}{}", w.message));
    }
    let cache_key = Digest::of(context.to_string_lossy().as_bytes()).hex();
    let ctx = BuildContext::open(
        &context,
        &ignore,
        Some(store.state_path(&format!("statcache/{}.json", &cache_key[..16]))),
    )
    .map_err(|e| Failure::new(rbuild_builder::error::chain(&e)))?;
    let mut cache_sources: Vec<Arc<dyn CacheSource>> = Vec::new();
    for location in &cache_from {
        let session = match location {
            CacheLocation::Registry(_) => Some(registries.session().map_err(registry::failure)?),
            CacheLocation::Directory(_) => None,
        };
        // Like BuildKit, a cache that cannot be read is a warning: the
        // build still works, only slower.
        match ImportedCache::open(session.as_deref(), location) {
            Ok(cache) => {
                progress.line(&format!("importing cache from {location}: {} records", cache.len()));
                cache_sources.push(Arc::new(ImportedCacheSource { session, cache }));
            }
            Err(e) => progress.line(&format!(
                "warning: cannot import cache from {location}: {}",
                rbuild_builder::error::chain(&e)
            )),
        }
    }
    let opts = BuildOptions {
        no_cache: args.no_cache,
        isolation: Arc::new(NamespaceSandbox {
            exe: std::env::current_exe()
                .map_err(|e| Failure::new(format!("cannot find the rbuild executable: {e}")))?,
        }),
        snapshotter: Arc::new(OverlaySnapshotter),
        http: Arc::new(UrlDownloads::default()),
        source_date_epoch: crate::load::source_date_epoch(),
        secrets: parse_secrets(&args.secret)?,
        site_prefix: Digest::of(
            format!("{}\0{}", context.display(), absolute(&dockerfile_path).display()).as_bytes(),
        )
        .hex(),
        explain_only: args.explain,
        cache_sources,
    };
    let sink: &dyn Progress = progress.as_ref();
    // Held until the image is stored, tagged and exported: the solver's own
    // hold ends with the steps, and a prune in between would see the new
    // config blob and layers belonging to no image yet and remove them.
    let _gc = store.gc_guard(false)?;
    let mut out = solve::build(store, &planned.graph, &ctx, &planned.bases, &opts, sink).map_err(|e| {
        let mut detail = String::new();
        if let Some(span) = e.span {
            let fe = FrontendError { message: e.message.clone(), span, hint: None };
            detail.push_str(&fe.render(&dockerfile_name, &text));
        }
        if let Some(step) = &e.step {
            detail.push_str(&format!("failed step: {step}\n"));
        }
        if !e.tail.is_empty() {
            detail.push_str("last output lines:\n");
            for l in &e.tail {
                detail.push_str(&format!("  {l}\n"));
            }
        }
        let mut f = Failure::new(e.message.clone()).detail(detail);
        f.hint = e.hint.clone();
        f
    })?;
    if let Err(e) = ctx.save_cache() {
        tracing::warn!("could not save the stat cache: {e}");
    }
    if args.explain {
        progress.line(&format!("{} steps would run, {} are cached", out.steps_run, out.steps_cached));
        return Ok(());
    }
    if !args.labels.is_empty() {
        let labels = out.config.config.labels.get_or_insert_with(BTreeMap::new);
        for l in &args.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        out.config_json = out.config.to_json();
        out.image_id = Digest::of(&out.config_json);
    }
    let names: Vec<String> = tags.iter().map(Reference::canonical).collect();
    let id = store.put_image_tagged(&out.config_json, out.parent, &names)?;
    progress.line(&format!("writing image {id}"));
    for name in &names {
        progress.line(&format!("naming to {name}"));
    }
    for o in &outputs {
        crate::load::export(store, &id, &out.config, &tags, o, progress.as_ref())?;
    }
    let mut to_push: Vec<Reference> = if args.push { tags.clone() } else { Vec::new() };
    for image in &image_outputs {
        for name in &image.names {
            store.tag(&name.canonical(), &id)?;
            progress.line(&format!("naming to {}", name.canonical()));
            if image.push && !to_push.contains(name) {
                to_push.push(name.clone());
            }
        }
    }
    for target in &to_push {
        let session = registries.session().map_err(registry::failure)?;
        progress.line(&format!("pushing {}", target.familiar()));
        let pushed = rbuild_registry::push::push(&session, store, &id, target).map_err(registry::failure)?;
        progress.line(&format!("pushed {}@{}", target.familiar(), pushed.digest));
    }
    let chain = target_chain(&planned.graph);
    for export in &cache_to {
        let keys: Vec<Digest> = out
            .steps
            .iter()
            .filter(|s| export.mode == CacheMode::Max || chain.contains(&s.stage))
            .map(|s| s.key)
            .collect();
        let session = match export.location {
            CacheLocation::Registry(_) => Some(registries.session().map_err(registry::failure)?),
            CacheLocation::Directory(_) => None,
        };
        let summary = build_cache::export(session.as_deref(), store, &keys, &export.location)
            .map_err(registry::failure)?;
        progress.line(&format!(
            "exported cache to {}: {} records, {} layers",
            export.location, summary.records, summary.layers
        ));
    }
    if let Some(f) = &args.iidfile {
        fs::write(f, id.to_string())
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", f.display())))?;
    }
    if let Some(f) = &args.metadata_file {
        let meta = serde_json::json!({
            "containerimage.config.digest": id.to_string(),
            "image.name": tags.iter().map(|t| t.canonical()).collect::<Vec<_>>().join(","),
            "rbuild.steps": out.steps,
        });
        let text = serde_json::to_string_pretty(&meta).expect("metadata serializes");
        fs::write(f, text).map_err(|e| Failure::new(format!("cannot write {}: {e}", f.display())))?;
    }
    progress.line(&format!("{} steps run, {} cached", out.steps_run, out.steps_cached));
    progress.finish();
    if args.quiet {
        println!("{id}");
    }
    Ok(())
}

/// `path` made absolute against the current directory (for naming the
/// Dockerfile in a way that does not depend on where rbuild was started).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        assert_eq!(parse_output("type=docker,dest=a.tar").unwrap(), Output::DockerArchive("a.tar".into()));
        assert_eq!(parse_output("out").unwrap(), Output::LocalDir("out".into()));
        assert!(parse_output("type=zip,dest=x").is_err());
        assert!(parse_output("type=oci").is_err());
    }
}
