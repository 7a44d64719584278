//! A build's flags as typed values, parsed and checked before any work
//! starts, so a mistyped flag fails at once with a hint: the context, the
//! outputs, the caches to import and export, the tags, build args and
//! secrets, and the flags every RUN gets ([`super::run_flags`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rbuild_oci::platform::Platform;
use rbuild_oci::reference::Reference;
use rbuild_registry::build_cache::{self, CacheFrom, CacheTo};

use super::annotations::Annotations;
use super::run_flags::RunFlags;
use crate::cli::BuildArgs;
use crate::output::{ImageOutput, Output, parse_image_output, parse_output};
use crate::registry;
use crate::report::Failure;

/// What a build was asked to read and where its result goes.
pub struct Request {
    /// The context directory, canonical.
    pub context: PathBuf,
    /// `-o` outputs written after the image is stored.
    pub outputs: Vec<Output>,
    /// `-o type=image|registry`: more names, pushed or not.
    pub image_outputs: Vec<ImageOutput>,
    pub cache_from: Vec<CacheFrom>,
    pub cache_to: Vec<CacheTo>,
    /// `-t` names.
    pub tags: Vec<Reference>,
    /// `--add-host`, `--ulimit`, `--shm-size`, `--network`, `--allow`.
    pub run: RunFlags,
    /// `--build-context`, checked for form.
    pub named_contexts: Vec<super::named_contexts::ContextSpec>,
    /// `--ssh` agents, checked for form only (agents start with the build).
    pub ssh: Vec<super::ssh_agents::SshSpec>,
    /// `--annotation`s, parsed for each of `platforms` (same order).
    pub annotations: Vec<Annotations>,
    /// `--platform`: the target platforms, the host's when not given.
    pub platforms: Vec<Platform>,
}

impl Request {
    /// Checks the flags in the order a user would fix them: context,
    /// outputs, caches, then names.
    pub fn parse(args: &BuildArgs) -> Result<Request, Failure> {
        let context = context_dir(&args.context)?;
        let platforms = match &args.platform {
            Some(list) => Platform::parse_list(list).map_err(|e| {
                Failure::new(format!("--platform: {e}")).hint(
                    "name platforms as os/arch[/variant], comma-separated: --platform linux/amd64,linux/arm64,linux/arm/v7",
                )
            })?,
            None => vec![Platform::host()],
        };
        let mut outputs = Vec::new();
        let mut image_outputs = Vec::new();
        for o in &args.output {
            match parse_image_output(o) {
                Some(image) => image_outputs.push(image?),
                None => outputs.push(parse_output(o)?),
            }
        }
        if platforms.len() > 1
            && let Some(Output::DockerArchive(_)) =
                outputs.iter().find(|o| matches!(o, Output::DockerArchive(_)))
        {
            let specs: Vec<String> = platforms.iter().map(Platform::spec).collect();
            return Err(Failure::new(format!(
                "-o type=docker holds one image, and this build is for {} platforms ({})",
                platforms.len(),
                specs.join(", ")
            ))
            .hint(format!(
                "build one platform for a docker archive (--platform {}), or use -o type=oci,dest=FILE, which holds an index of every platform",
                specs[0]
            )));
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
        let tags = args.tags.iter().map(|t| parse_tag(t)).collect::<Result<Vec<_>, _>>()?;
        let run = RunFlags::parse(args)?;
        let named_contexts = super::named_contexts::parse(&args.build_context)?;
        let ssh = super::ssh_agents::parse(&args.ssh)?;
        let annotations = platforms
            .iter()
            .map(|p| Annotations::parse(&args.annotations, p))
            .collect::<Result<Vec<_>, _>>()?;
        let pushes = args.push || image_outputs.iter().any(|o| o.push);
        for a in &annotations {
            a.check_outputs(&outputs, platforms.len() > 1, pushes)?;
        }
        Ok(Request {
            context,
            outputs,
            image_outputs,
            cache_from,
            cache_to,
            tags,
            run,
            named_contexts,
            ssh,
            annotations,
            platforms,
        })
    }
}

fn context_dir(given: &Path) -> Result<PathBuf, Failure> {
    let context = given.canonicalize().map_err(|e| {
        Failure::new(format!("cannot use build context {}: {e}", given.display()))
            .hint("the last argument is the context directory, e.g. `rbuild -t app .`")
    })?;
    if !context.is_dir() {
        return Err(Failure::new(format!("build context {} is not a directory", context.display())));
    }
    Ok(context)
}

fn parse_tag(tag: &str) -> Result<Reference, Failure> {
    Reference::parse(tag).map_err(|e| {
        Failure::new(format!("invalid tag {tag:?}: {e}"))
            .hint("a tag looks like name:tag or registry/name:tag")
    })
}

/// `--build-arg KEY=VALUE`, and `--build-arg KEY` with the value taken from
/// the environment (left out when unset), as Docker does.
pub fn build_args(raw: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    out
}

/// `--secret id=ID,src=FILE` or `id=ID,env=VAR` (or `id=ID` alone: the
/// variable named ID), read now so a missing secret fails before any step.
pub fn secrets(raw: &[String]) -> Result<BTreeMap<String, Vec<u8>>, Failure> {
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
            (Some(path), _) => std::fs::read(&path)
                .map_err(|e| Failure::new(format!("cannot read secret file {path}: {e}")))?,
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
