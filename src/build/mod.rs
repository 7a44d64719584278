//! `rbuild build`, step by step: parse the flags ([`request`]), read the
//! Dockerfile and `.dockerignore`, plan (lower the Dockerfile and pull the
//! base images it lacks), open the context, import caches ([`cache`]),
//! solve (every `--platform` at once, after checking foreign RUN steps have
//! an emulator: [`emulation`]), then store and tag the image, write the `-o` outputs, push,
//! export caches and report ([`publish`]; a multi-platform image's index
//! in [`platforms`]).

mod annotations;
mod cache;
mod call;
mod checks;
mod emulation;
mod isolation;
mod named_contexts;
mod platforms;
mod publish;
mod request;
mod run_flags;
mod ssh_agents;

pub use annotations::Annotations;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use rbuild_builder::context::BuildContext;
use rbuild_builder::dockerignore::{self, DockerIgnore};
use rbuild_builder::error::BuildError;
use rbuild_builder::options::{BuildOptions, CacheSource};
use rbuild_builder::outcome::{BuildOutput, StepReport};
use rbuild_builder::plan::{Plan, PlanOptions, plan_with};
use rbuild_builder::snapshot::OverlaySnapshotter;
use rbuild_builder::snapshot::select::select as select_snapshotter;
use rbuild_builder::solve;
use rbuild_cache::Store;
use rbuild_frontend::error::FrontendError;
use rbuild_frontend::graph::StepGraph;
use rbuild_frontend::lower::{LowerOptions, Platform};
use rbuild_oci::digest::Digest;

use self::request::Request;
use crate::cli::{BuildArgs, ProgressMode};
use crate::dockerfile::Dockerfile;
use crate::output;
use crate::progress::renderer;
use crate::records::{self, Recorder, absolute};
use crate::registry::UrlDownloads;
use crate::registry::{self, Fetcher, Registries};
use crate::report::Failure;
use crate::source_date_epoch;

pub fn run(store: &Store, args: BuildArgs) -> Result<(), Failure> {
    let request = Request::parse(&args)?;
    let call = call::Call::from_args(&args)?;
    if call.method != call::Method::Build {
        return call::run(store, &args, &request, call);
    }
    let mut recorder = Recorder::start(&args);
    let result = build(store, &args, &request, &mut recorder);
    recorder.finish(store, result)
}

fn build(store: &Store, args: &BuildArgs, request: &Request, recorder: &mut Recorder) -> Result<(), Failure> {
    let quiet_transfers = args.quiet || args.progress == ProgressMode::Quiet;
    let registries = Registries::new(
        &args.registry.insecure_registry,
        registry::transfer_progress(quiet_transfers, args.progress == ProgressMode::Plain),
    );
    let dockerfile = Dockerfile::for_build(args.file.as_deref(), &request.context)?;
    let ignore = read_dockerignore(&request.context, &dockerfile.path)?;
    let multi = request.platforms.len() > 1;
    let mut plans = Vec::new();
    for platform in &request.platforms {
        let mut planned = plan(store, args, request, &dockerfile, &registries, platform)?;
        if multi {
            platforms::label_stages(&mut planned.graph);
        }
        plans.push(planned);
    }
    emulation::check(&plans.iter().map(|p| &p.graph).collect::<Vec<_>>())?;
    // The checks read the Dockerfile; which stages a build needs does not
    // depend on the platform, so the first graph says.
    let lint = lint(store, args, request, &dockerfile, &plans[0], &ignore, &registries)?;
    recorder.check_warnings(
        lint.violations
            .iter()
            .map(|v| format!("{}: {}: {}", v.span.start.line, v.rule.name, v.message))
            .collect(),
    );
    let progress = renderer(args.progress, args.quiet);
    let chosen = isolation::choose(args.isolation.as_deref())?;
    progress.line(&chosen.banner);
    for caveat in &chosen.caveats {
        progress.line(caveat);
    }
    for w in &plans[0].graph.warnings {
        progress.line(&dockerfile.warning(w));
    }
    let context = open_context(store, &request.context, &ignore)?;
    let cache_sources = cache::import(&request.cache_from, &registries, progress.as_ref())?;
    let epoch = source_date_epoch::for_build(
        &request::build_args(&args.build_args),
        plans[0].graph.source_date_epoch.as_deref(),
    )?;
    // Stage indexes are the same in every platform's graph (one Dockerfile).
    let no_cache = run_flags::no_cache_stages(&args.no_cache_filter, &plans[0].graph)?;
    for name in &no_cache.unknown {
        progress.line(&run_flags::unknown_stage_warning(name, &plans[0].graph));
    }
    let snapshots = select_snapshotter(args.snapshotter, store, &helper_exe()?);
    progress.line(&snapshots.describe());
    let mut options = Vec::new();
    let in_flight = Arc::new(rbuild_builder::options::InFlight::default());
    for platform in &request.platforms {
        let mut opts = build_options(
            args,
            request,
            &dockerfile,
            no_cache.stages.clone(),
            cache_sources.clone(),
            epoch,
            chosen.isolation.clone(),
        )?;
        opts.snapshotter = snapshots.snapshotter.clone();
        opts.in_flight = in_flight.clone();
        if multi {
            // Each platform explains its misses against its own last build.
            opts.site_prefix = Digest::of(format!("{}\0{platform}", opts.site_prefix).as_bytes()).hex();
        }
        options.push(opts);
    }
    // Held until the image is stored, tagged and exported: the solver's own
    // hold ends with the steps, and a prune in between would see the new
    // config blob and layers belonging to no image yet and remove them.
    let _gc = store.gc_guard(false)?;
    // The records a build writes are made durable together once it is
    // stored and tagged, not one fsync each (see SyncBatch).
    let durable = rbuild_cache::store::SyncBatch::begin();
    // Started once the Dockerfile is known good; stopped when the build ends.
    let ssh_agents = ssh_agents::SshAgents::start(&request.ssh)?;
    for opts in &mut options {
        opts.ssh = ssh_agents.sockets.clone();
    }
    // Every platform's graph at once; steps they share run once (see
    // rbuild_builder::in_flight).
    let solve_platform = |planned: &Plan, opts: &BuildOptions| {
        let mut finished = Vec::new();
        let r = solve::build(
            store,
            &planned.graph,
            &context,
            &planned.bases,
            opts,
            progress.as_ref(),
            &mut finished,
        );
        (r, finished)
    };
    // One platform solves on this thread: a thread of its own would only
    // add its start to a no-op rebuild.
    let solved: Vec<(Result<BuildOutput, BuildError>, Vec<StepReport>)> = if plans.len() == 1 {
        vec![solve_platform(&plans[0], &options[0])]
    } else {
        std::thread::scope(|scope| {
            let running: Vec<_> = plans
                .iter()
                .zip(&options)
                .map(|(planned, opts)| scope.spawn(move || solve_platform(planned, opts)))
                .collect();
            running.into_iter().map(|h| h.join().expect("a platform's solver panicked")).collect()
        })
    };
    recorder.steps(&solved.iter().flat_map(|(_, f)| f.iter().cloned()).collect::<Vec<_>>());
    let mut builds = Vec::new();
    for (result, _) in solved {
        builds.push(result.map_err(|e| step_failure(&dockerfile, &e))?);
    }
    if let Err(e) = context.save_cache() {
        tracing::warn!("could not save the stat cache: {e}");
    }
    let (run, cached) = builds.iter().fold((0, 0), |(r, c), b| (r + b.steps_run, c + b.steps_cached));
    if args.explain {
        progress.line(&format!("{run} steps would run, {cached} are cached"));
        return Ok(());
    }
    for built in &mut builds {
        publish::add_labels(built, &args.labels);
    }
    let id = if multi {
        let images = platforms::store(store, request, &builds, progress.as_ref())?;
        durable
            .finish()
            .map_err(|e| Failure::new(format!("cannot make the build's records durable: {e}")))?;
        recorder.image(images.representative());
        platforms::export(store, &images, request, progress.as_ref())?;
        platforms::name_and_push(store, &registries, &images, request, args.push, progress.as_ref())?;
        images.representative()
    } else {
        let built = &builds[0];
        let id = publish::store_and_tag(
            store,
            built,
            &request.tags,
            &request.annotations[0].manifest,
            progress.as_ref(),
        )?;
        durable
            .finish()
            .map_err(|e| Failure::new(format!("cannot make the build's records durable: {e}")))?;
        recorder.image(id);
        for o in &request.outputs {
            output::export(
                store,
                &id,
                &built.config,
                &request.tags,
                &request.annotations[0],
                o,
                progress.as_ref(),
            )?;
        }
        publish::name_and_push(store, &registries, &id, request, args.push, progress.as_ref())?;
        id
    };
    let exported: Vec<(&BuildOutput, &StepGraph)> =
        builds.iter().zip(plans.iter().map(|p| &p.graph)).collect();
    cache::export(store, &registries, &exported, &request.cache_to, progress.as_ref())?;
    if let Some(path) = &args.iidfile {
        publish::write_iidfile(path, &id)?;
    }
    if let Some(path) = &args.metadata_file {
        publish::write_metadata(path, &id, &request.tags, &builds[0])?;
    }
    for v in &lint.violations {
        progress.line(&format!("warning: {}", checks::render(&dockerfile, v).trim_end()));
    }
    let steps: Vec<StepReport> = builds.iter().flat_map(|b| b.steps.iter().cloned()).collect();
    progress.line(&format!("{run} steps run, {cached} cached{}", records::cache_saved_note(&steps)));
    progress.finish();
    if args.quiet {
        println!("{id}");
    }
    Ok(())
}

/// The `.dockerignore` that goes with the Dockerfile (`NAME.dockerignore`
/// beside it, else the context's), or nothing ignored.
fn read_dockerignore(context: &Path, dockerfile: &Path) -> Result<DockerIgnore, Failure> {
    match dockerignore::read_for_dockerfile(context, dockerfile)
        .map_err(|e| Failure::new(format!("cannot read .dockerignore: {e}")))?
    {
        Some((path, content)) => {
            DockerIgnore::parse(&content).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
        }
        None => Ok(DockerIgnore::empty()),
    }
}

/// Lowers the Dockerfile for `platform` (the host being the build
/// platform) and resolves its base images, pulling those the store lacks
/// (all of them with `--pull`).
fn plan(
    store: &Store,
    args: &BuildArgs,
    request: &Request,
    dockerfile: &Dockerfile,
    registries: &Registries,
    platform: &Platform,
) -> Result<Plan, Failure> {
    plan_frontend(store, args, request, dockerfile, registries, platform)?.map_err(|e| dockerfile.failure(e))
}

/// [`plan`], with an error in the Dockerfile kept as the frontend's (the
/// outer error is one of the flags).
fn plan_frontend(
    store: &Store,
    args: &BuildArgs,
    request: &Request,
    dockerfile: &Dockerfile,
    registries: &Registries,
    platform: &Platform,
) -> Result<Result<Plan, FrontendError>, Failure> {
    let lower_opts = LowerOptions {
        build_args: request::build_args(&args.build_args),
        target: args.target.clone(),
        platform: platform.clone(),
        build_platform: Platform::host(),
        allow_insecure: request.run.entitlements.insecure,
        allow_network_host: request.run.entitlements.network_host,
        default_network: request.run.network,
        named_contexts: named_contexts::prepare(store, &request.named_contexts)?,
    };
    let fetcher = Fetcher { registries, store };
    let images = PlanOptions { fetcher: Some(&fetcher), refresh: args.pull };
    Ok(plan_with(store, &dockerfile.text, &lower_opts, &images))
}

/// The build checks over the stages the build needs; with
/// `# check=error=true` a violation fails the build here, before any step.
fn lint(
    store: &Store,
    args: &BuildArgs,
    request: &Request,
    dockerfile: &Dockerfile,
    planned: &Plan,
    ignore: &DockerIgnore,
    registries: &Registries,
) -> Result<rbuild_frontend::checks::CheckReport, Failure> {
    let fetcher = Fetcher { registries, store };
    let images = PlanOptions { fetcher: Some(&fetcher), refresh: false };
    let build_args = request::build_args(&args.build_args);
    let run = checks::CheckRun {
        store,
        images: &images,
        build_args: &build_args,
        target: args.target.as_deref(),
        ignore,
        named_contexts: request.named_contexts.iter().map(|c| c.name.clone()).collect(),
    };
    let config = run.config(&planned.ast, dockerfile)?;
    let error_on_violation = config.error;
    let needed = planned.graph.stages.iter().filter(|s| s.needed).map(|s| s.index).collect();
    let report = run.run(&planned.ast, config, Some(&needed));
    if error_on_violation && !report.violations.is_empty() {
        return Err(checks::violations_failure(dockerfile, &report));
    }
    Ok(report)
}

/// The context directory, with its stat cache in the store so a rebuild
/// re-reads no file that did not change.
fn open_context(store: &Store, context: &Path, ignore: &DockerIgnore) -> Result<BuildContext, Failure> {
    let cache_key = Digest::of(context.to_string_lossy().as_bytes()).hex();
    let stat_cache = store.state_path(&format!("statcache/{}.bin", &cache_key[..16]));
    BuildContext::open(context, ignore, Some(stat_cache))
        .map(|ctx| ctx.with_mtime_clamp(source_date_epoch::from_env()))
        .map_err(|e| Failure::caused_by(&e))
}

fn build_options(
    args: &BuildArgs,
    request: &Request,
    dockerfile: &Dockerfile,
    no_cache_stages: BTreeSet<usize>,
    cache_sources: Vec<Arc<dyn CacheSource>>,
    source_date_epoch: Option<i64>,
    isolation: Arc<dyn rbuild_builder::sandbox::Isolation>,
) -> Result<BuildOptions, Failure> {
    Ok(BuildOptions {
        no_cache: args.no_cache,
        emptied_cache_mounts: Default::default(),
        no_cache_stages,
        source_date_epoch,
        secrets: request::secrets(&args.secret)?,
        ssh: Default::default(),
        // This build's place (context + Dockerfile), so a miss is explained
        // against the last build from the same place, wherever rbuild was
        // started from.
        site_prefix: Digest::of(
            format!("{}\0{}", request.context.display(), absolute(&dockerfile.path).display()).as_bytes(),
        )
        .hex(),
        build_name: args
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| absolute(&request.context).display().to_string()),
        explain_only: args.explain,
        cache_sources,
        isolation,
        snapshotter: Arc::new(OverlaySnapshotter),
        http: Arc::new(UrlDownloads::default()),
        git: Arc::new(crate::git_remote::GitCli::default()),
        run: request.run.settings.clone(),
        in_flight: Default::default(),
    })
}

/// rbuild itself, which runs the sandbox helper and the overlay probe.
fn helper_exe() -> Result<std::path::PathBuf, Failure> {
    std::env::current_exe().map_err(|e| Failure::new(format!("cannot find the rbuild executable: {e}")))
}

/// A failed step: the instruction's source line, the step, and the last
/// lines it printed.
fn step_failure(dockerfile: &Dockerfile, e: &BuildError) -> Failure {
    let mut detail = String::new();
    if let Some(span) = e.span {
        let fe = FrontendError { message: e.message.clone(), span, hint: None };
        detail.push_str(&fe.render(&dockerfile.name, &dockerfile.text));
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
    f.storage_full = e.is_storage_full();
    f
}
