//! The registry commands (`pull`, `push`, `login`, `logout`, `search`),
//! their progress display (a bar per layer on a terminal, plain lines
//! otherwise), and the glue that lets a build pull its base images, import
//! and export build cache, and push its result.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbuild_builder::download::{HttpAnswer, UrlFetcher};
use rbuild_builder::options::CacheSource;
use rbuild_builder::plan::ImageFetcher;
use rbuild_cache::Store;
use rbuild_cache::index::CacheRecord;
use rbuild_frontend::lower::ResolveError;
use rbuild_oci::digest::Digest;
use rbuild_oci::platform::Platform;
use rbuild_oci::reference::Reference;
use rbuild_registry::build_cache::ImportedCache;
use rbuild_registry::credentials::{Credentials, DockerConfig, StoredIn, server_key};
use rbuild_registry::http::HttpClient;
use rbuild_registry::login::{self, LoginResult};
use rbuild_registry::{
    NoProgress, RegistryError, RegistrySettings, Session, TransferProgress, pull, push, search,
};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, SearchArgs};
use crate::report::Failure;

/// A registry error as the user sees it: the message, the hint, exit 1.
pub fn failure(e: RegistryError) -> Failure {
    let hint = e.hint();
    let mut f = Failure::caused_by(&e);
    f.hint = hint;
    f
}

fn parse_reference(text: &str) -> Result<Reference, Failure> {
    Reference::parse(text).map_err(|e| {
        Failure::new(e.to_string())
            .hint("a reference looks like name[:tag], registry[:port]/name[:tag] or name@sha256:…")
    })
}

/// The progress display for transfers: bars on a terminal unless `plain`.
pub fn transfer_progress(quiet: bool, plain: bool) -> Arc<dyn TransferProgress> {
    if quiet {
        Arc::new(NoProgress)
    } else if !plain && std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines)
    }
}

/// Registry access opened on first use, so a build that touches no
/// registry starts no network runtime.
pub struct Registries {
    settings: RegistrySettings,
    progress: Arc<dyn TransferProgress>,
    session: OnceLock<Arc<Session>>,
}

impl Registries {
    pub fn new(insecure: &[String], progress: Arc<dyn TransferProgress>) -> Registries {
        Registries {
            settings: RegistrySettings::from_environment(insecure),
            progress,
            session: OnceLock::new(),
        }
    }

    pub fn session(&self) -> Result<Arc<Session>, RegistryError> {
        if let Some(s) = self.session.get() {
            return Ok(s.clone());
        }
        let session = Arc::new(Session::new(self.settings.clone(), self.progress.clone())?);
        Ok(self.session.get_or_init(|| session).clone())
    }
}

/// Pulls the images a build names when the store lacks them (or, with
/// `--pull`, always).
pub struct Fetcher<'a> {
    pub registries: &'a Registries,
    pub store: &'a Store,
}

impl ImageFetcher for Fetcher<'_> {
    fn fetch(&self, reference: &Reference, platform: &Platform) -> Result<Digest, ResolveError> {
        let to_resolve_error = |e: RegistryError| ResolveError { hint: e.hint(), message: e.to_string() };
        let session = self.registries.session().map_err(to_resolve_error)?;
        session.progress().note(&format!("pulling {}", reference.familiar()));
        pull::pull(&session, self.store, reference, platform).map(|o| o.id).map_err(to_resolve_error)
    }
}

/// An imported cache as the solver's second place to look.
#[derive(Debug)]
pub struct ImportedCacheSource {
    pub session: Option<Arc<Session>>,
    pub cache: ImportedCache,
}

impl CacheSource for ImportedCacheSource {
    fn lookup(&self, store: &Store, key: &Digest) -> Result<Option<CacheRecord>, String> {
        self.cache
            .lookup(self.session.as_deref(), store, key)
            .map_err(|e| format!("{}: {}", self.cache.location(), rbuild_builder::error::chain(&e)))
    }

    fn seed_cache_mount(&self, store: &Store, id: &str) -> Result<Option<String>, String> {
        self.cache
            .seed_mount(self.session.as_deref(), store, id)
            .map_err(|e| format!("{}: {}", self.cache.location(), rbuild_builder::error::chain(&e)))
    }
}

/// `ADD <url>` downloads through the registry crate's HTTP client, made on
/// the first download (most builds have none).
#[derive(Debug, Default)]
pub struct UrlDownloads {
    client: OnceLock<Result<HttpClient, String>>,
}

impl UrlFetcher for UrlDownloads {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, String> {
        let client = self
            .client
            .get_or_init(|| HttpClient::new().map_err(|e| format!("cannot start an HTTP client: {e}")))
            .as_ref()?;
        let answer = client.get(url, headers).map_err(|e| rbuild_builder::error::chain(&e))?;
        Ok(HttpAnswer {
            status: answer.status,
            etag: answer.etag,
            last_modified: answer.last_modified,
            body: Box::new(answer.body),
        })
    }
}

pub fn pull_command(store: &Store, args: PullArgs) -> Result<(), Failure> {
    let reference = parse_reference(&args.image)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).map_err(|e| {
            Failure::new(format!("--platform: {e}"))
                .hint("name a platform as os/arch[/variant], e.g. linux/arm64")
        })?,
        None => Platform::host(),
    };
    let registries = Registries::new(&args.registry.insecure_registry, transfer_progress(args.quiet, false));
    let session = registries.session().map_err(failure)?;
    let outcome = pull::pull(&session, store, &reference, &platform).map_err(failure)?;
    if !args.quiet {
        let status = if outcome.layers_downloaded == 0 && outcome.replaced.is_none() {
            format!("Status: Image is up to date for {}", reference.familiar())
        } else {
            format!("Status: Downloaded newer image for {}", reference.familiar())
        };
        eprintln!("{status}");
    }
    println!("{}", reference.canonical());
    Ok(())
}

pub fn push_command(store: &Store, args: PushArgs) -> Result<(), Failure> {
    let reference = if args.all_tags {
        Reference::parse_without_default_tag(&args.image)
    } else {
        Reference::parse(&args.image)
    }
    .map_err(|e| Failure::new(e.to_string()).hint("push takes a name[:tag] of an image in the store"))?;
    let targets: Vec<(Reference, Digest)> = if args.all_tags {
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(Failure::new(format!(
                "--all-tags takes a repository name without a tag, not {}",
                args.image
            ))
            .hint(format!("write `rbuild push -a {}`", reference.familiar_name())));
        }
        let name = reference.name();
        let tagged: Vec<(Reference, Digest)> = store
            .refs()?
            .refs
            .into_iter()
            .filter_map(|(tag, id)| Reference::parse(&tag).ok().map(|r| (r, id)))
            .filter(|(r, _)| r.name() == name && r.tag.is_some())
            .collect();
        if tagged.is_empty() {
            return Err(Failure::new(format!("no tags of {} are in the store", reference.familiar_name()))
                .hint("tag an image first: rbuild tag IMAGE NAME:TAG"));
        }
        tagged
    } else {
        if reference.digest.is_some() {
            return Err(Failure::new("cannot push a digest reference").hint("push a name:tag"));
        }
        let id = store.resolve_image(&args.image, Some(&reference.canonical())).map_err(|_| {
            Failure::new(format!("no such image: {}", reference.familiar()))
                .hint(format!("build or tag an image as {} first", reference.familiar()))
        })?;
        vec![(reference, id)]
    };
    let registries = Registries::new(&args.registry.insecure_registry, transfer_progress(args.quiet, false));
    let session = registries.session().map_err(failure)?;
    for (target, id) in &targets {
        let outcome = push::push(&session, store, id, target).map_err(failure)?;
        println!("{}@{}", target.familiar(), outcome.digest);
    }
    Ok(())
}

/// The registry `login`/`logout` act on: the argument, or Docker Hub.
fn registry_of(server: Option<&str>) -> Result<String, Failure> {
    let Some(server) = server else { return Ok("docker.io".to_string()) };
    let bare = server.split_once("://").map_or(server, |(_, rest)| rest).trim_end_matches('/');
    let host = bare.split('/').next().unwrap_or(bare);
    let parsed = Reference::parse(&format!("{host}/x")).map_err(|e| {
        Failure::new(format!("{server:?} is not a registry: {e}")).hint("name a registry as HOST[:PORT]")
    })?;
    Ok(parsed.registry)
}

pub fn login_command(args: LoginArgs) -> Result<(), Failure> {
    let registry = registry_of(args.server.as_deref())?;
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(format!("cannot read the password from stdin: {e}")))?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        prompt("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        return Err(
            Failure::new("a user name and a password are needed").hint("use -u USER --password-stdin")
        );
    }
    let credentials = Credentials { username, secret: password };
    let registries = Registries::new(&args.registry.insecure_registry, Arc::new(NoProgress));
    let session = registries.session().map_err(failure)?;
    let result = login::verify(&session, &registry, &credentials).map_err(failure)?;
    let mut config = DockerConfig::load(&session.settings().docker_config_dir).map_err(failure)?;
    let stored = config.store(&registry, &credentials).map_err(failure)?;
    config.save().map_err(failure)?;
    match stored {
        StoredIn::File(path) => eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning.",
            path.display()
        ),
        StoredIn::Helper(name) => eprintln!("credentials stored by docker-credential-{name}"),
    }
    if result == LoginResult::NotRequired {
        eprintln!("note: {registry} does not ask for credentials; they were stored anyway");
    }
    println!("Login Succeeded");
    Ok(())
}

/// Reads one line from the terminal (the password without echo).
fn prompt(label: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(format!(
            "{} not given and stdin is not a terminal",
            label.trim_end_matches(": ")
        ))
        .hint("use -u USER and --password-stdin"));
    }
    eprint!("{label}");
    let hide = label.starts_with("Password");
    let saved = if hide { echo_off() } else { None };
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if let Some(termios) = saved {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &termios);
        eprintln!();
    }
    read.map_err(|e| Failure::new(format!("cannot read from the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns terminal echo off; returns the settings to restore.
fn echo_off() -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let saved = tcgetattr(std::io::stdin()).ok()?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &quiet).ok()?;
    Some(saved)
}

pub fn logout_command(args: LogoutArgs) -> Result<(), Failure> {
    let registry = registry_of(args.server.as_deref())?;
    let settings = RegistrySettings::from_environment(&[]);
    let mut config = DockerConfig::load(&settings.docker_config_dir).map_err(failure)?;
    if config.erase(&registry).map_err(failure)? {
        config.save().map_err(failure)?;
        println!("Removing login credentials for {}", server_key(&registry));
    } else {
        println!("Not logged in to {}", server_key(&registry));
    }
    Ok(())
}

pub fn search_command(args: SearchArgs) -> Result<(), Failure> {
    let (registry, term) = search::split_query(&args.query).map_err(failure)?;
    let registries = Registries::new(&args.registry.insecure_registry, Arc::new(NoProgress));
    let session = registries.session().map_err(failure)?;
    let found = search::search(&session, &registry, &term, args.limit).map_err(|e| {
        let mut f = failure(e);
        f.hint = Some(format!(
            "search reads the registry's catalog (/v2/_catalog); {} may not offer it",
            registry
        ));
        f
    })?;
    println!("{:<50} TAGS", "NAME");
    for repo in &found {
        println!("{:<50} {}", repo.name, repo.tags.join(", "));
    }
    Ok(())
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{n}B") } else { format!("{value:.1}{}", UNITS[unit]) }
}

/// Plain progress: one line when a blob starts and one when it ends.
struct Lines;

impl TransferProgress for Lines {
    fn begin(&self, item: &str, action: &str, total: Option<u64>) {
        match total {
            Some(t) => eprintln!("{item}: {action} {}", bytes(t)),
            None => eprintln!("{item}: {action}"),
        }
    }
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, item: &str, outcome: &str) {
        eprintln!("{item}: {outcome}");
    }
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// A bar per blob on a terminal.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl TransferProgress for Bars {
    fn begin(&self, item: &str, action: &str, total: Option<u64>) {
        let mut bars = self.bars.lock().expect("bars lock");
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
            None => ProgressStyle::with_template("{prefix}: {msg} {spinner}").expect("valid template"),
        };
        // Styled and named before it is shown, so no half-drawn line flashes.
        let bar = ProgressBar::new(total.unwrap_or(0))
            .with_style(style)
            .with_prefix(item.to_string())
            .with_message(action.to_string());
        if total.is_none() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        let bar = match bars.remove(item) {
            Some(old) => {
                let replacement = self.multi.insert_after(&old, bar);
                self.multi.remove(&old);
                replacement
            }
            None => self.multi.add(bar),
        };
        bars.insert(item.to_string(), bar);
    }

    fn advance(&self, item: &str, bytes: u64) {
        if let Some(bar) = self.bars.lock().expect("bars lock").get(item) {
            bar.inc(bytes);
        }
    }

    fn end(&self, item: &str, outcome: &str) {
        let mut bars = self.bars.lock().expect("bars lock");
        let bar = bars.remove(item).unwrap_or_else(|| self.multi.add(ProgressBar::new(0)));
        bar.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"));
        bar.set_prefix(item.to_string());
        bar.finish_with_message(outcome.to_string());
    }

    fn note(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}
