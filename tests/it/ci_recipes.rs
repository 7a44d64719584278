//! The CI recipes of `docs/ci/`, taken from their files and run as far as
//! this machine allows: no Kubernetes cluster, no GitLab runner, no GitHub
//! runner, but what each would start: a container of rbuild's own image
//! (the repository's `Dockerfile`, built by rbuild) with the recipe's
//! command, environment, volumes and security settings translated to
//! `docker run` flags (`seccompProfile: RuntimeDefault` is Docker's default
//! profile, `allowPrivilegeEscalation: false` is no-new-privileges, an
//! `emptyDir` a fresh empty directory). Each builds the app-like fixture,
//! pushes it to a registry on loopback that asks for a password, with
//! `--cache-to`/`--cache-from type=registry`, and writes a tarball that
//! Docker loads and runs; a second run in a fresh container with a fresh
//! store runs no step. A recipe that drops what the build needs (a flag,
//! the credentials, a capability) fails here, and so does one whose
//! securityContext asks for more than Docker's default.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_norway::Value;

use crate::containers::{build_rbuild_image, docker_cli, ok};
use crate::harness::*;
use crate::registry::{app_context, publish_busybox, rb_stdin};

const USER: &str = "ci";
const PASSWORD: &str = "ci-s3cret";

/// rbuild's own image, built once per run of the tests and shared by the
/// recipes; its tag is fixed, so runs do not pile images up.
fn rbuild_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let tag = "rbuild-it-ci-recipes:latest".to_string();
        build_rbuild_image(&Env::new(), &tag);
        tag
    })
}

fn recipe(name: &str) -> Value {
    let path = rbuild_test_support::prereq::workspace_root().join("docs/ci").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a CI system would be connected to: a registry on loopback that
/// asks for a password and holds the app's base image, the credentials
/// (a Docker `config.json`), and the app's source.
struct Site {
    registry: TestRegistry,
    host: Env,
    runs: std::cell::Cell<u32>,
}

impl Site {
    fn new() -> Site {
        let registry = TestRegistry::start_with_user(USER, PASSWORD);
        let host = Env::with_busybox();
        rb_stdin(
            &host,
            &["login", "-u", USER, "--password-stdin", &registry.addr],
            Some(PASSWORD.as_bytes()),
        )
        .ok();
        let base = publish_busybox(&host, &registry);
        app_context(&host, &base);
        Site { registry, host, runs: std::cell::Cell::new(0) }
    }

    /// A directory holding `config.json` with the registry's credentials.
    fn docker_config(&self) -> PathBuf {
        self.host.path("docker-config")
    }

    /// A fresh directory for one run (an emptyDir, a fresh checkout).
    fn fresh_dir(&self, name: &str) -> PathBuf {
        let dir = self.host.path(&format!("run-{}/{name}", self.runs.get()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A fresh copy of the app's source, as a checkout would make.
    fn checkout(&self) -> PathBuf {
        let dir = self.fresh_dir("source");
        sh(&format!("cp -a {}/. {}", self.host.path("app").display(), dir.display()));
        dir
    }

    fn next_run(&self) {
        self.runs.set(self.runs.get() + 1);
    }

    /// `REGISTRY` (the docs' placeholder) replaced by the test registry.
    fn place(&self, text: &str) -> String {
        text.replace("REGISTRY", &self.registry.addr)
    }

    /// The recipe's image must be rbuild's own: the test runs the one it built.
    fn image(&self, recipe_image: &Value) -> &'static str {
        assert_eq!(
            recipe_image.as_str(),
            Some("REGISTRY/rbuild:latest"),
            "the recipe runs rbuild's own image"
        );
        rbuild_image()
    }
}

/// `docker run` flags for a Kubernetes `securityContext`. A field the test
/// cannot translate stops it: nothing the recipe says is ignored.
fn security_flags(context: &Value) -> Vec<String> {
    let Some(fields) = context.as_mapping() else { return Vec::new() };
    let mut flags = Vec::new();
    for (key, value) in fields {
        match key.as_str().unwrap() {
            "runAsUser" => flags.push(format!("--user={}", value.as_u64().unwrap())),
            "allowPrivilegeEscalation" if value.as_bool() == Some(false) => {
                flags.push("--security-opt=no-new-privileges".into())
            }
            "allowPrivilegeEscalation" => {}
            "privileged" if value.as_bool() == Some(true) => flags.push("--privileged".into()),
            "readOnlyRootFilesystem" if value.as_bool() == Some(true) => flags.push("--read-only".into()),
            "seccompProfile" => match value["type"].as_str() {
                Some("RuntimeDefault") => {} // Docker's default profile
                Some("Unconfined") => flags.push("--security-opt=seccomp=unconfined".into()),
                other => panic!("seccompProfile type {other:?}: the test cannot give it to docker"),
            },
            "capabilities" => {
                for (list, flag) in [("drop", "--cap-drop"), ("add", "--cap-add")] {
                    for cap in value[list].as_sequence().into_iter().flatten() {
                        flags.push(format!("{flag}={}", cap.as_str().unwrap()));
                    }
                }
            }
            other => panic!("securityContext.{other}: the test cannot give it to docker"),
        }
    }
    flags
}

/// The recipes promise the runtime's default and nothing more: no
/// privileged mode, no added capability, the default seccomp profile
/// asked for explicitly (a cluster's own default may be Unconfined), and
/// no privilege escalation.
fn assert_asks_for_nothing_beyond_the_default(context: &Value) {
    assert_ne!(context["privileged"].as_bool(), Some(true), "privileged: {context:?}");
    assert!(context["capabilities"]["add"].is_null(), "a capability added: {context:?}");
    assert_eq!(context["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{context:?}");
    assert_eq!(context["allowPrivilegeEscalation"].as_bool(), Some(false), "{context:?}");
}

/// `-e NAME=VALUE` for a Kubernetes `env` list.
fn env_flags(env: &Value) -> Vec<String> {
    env.as_sequence()
        .into_iter()
        .flatten()
        .map(|var| format!("--env={}={}", var["name"].as_str().unwrap(), var["value"].as_str().unwrap()))
        .collect()
}

/// Where `-o type=docker,dest=PATH` in a command line writes.
fn tarball_dest(command: &str) -> String {
    let at = command.find("type=docker,dest=").expect("the recipe writes a tarball (-o type=docker,dest=…)");
    let rest = &command[at + "type=docker,dest=".len()..];
    rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap().to_string()
}

/// The host's path for `path` in a container with `mounted` (host, target)
/// directories.
fn on_host(mounted: &[(PathBuf, String)], path: &str) -> PathBuf {
    mounted
        .iter()
        .find_map(|(host, target)| Some(host.join(Path::new(path).strip_prefix(target).ok()?)))
        .unwrap_or_else(|| panic!("{path} is on no volume: it would be lost with the container"))
}

/// What one run of a recipe produced.
struct Outcome {
    run: Run,
    /// Where the recipe's tarball artifact is on the host.
    artifact: PathBuf,
}

/// Checks what every recipe promises: the first run builds every step,
/// pushes the image (skopeo reads it with the credentials) and writes a
/// tarball Docker loads and runs; the second, in a fresh container with a
/// fresh store, takes every RUN step from the registry cache.
fn assert_builds_pushes_and_caches(site: &Site, image: &str, mut run_recipe: impl FnMut() -> Outcome) {
    let first = run_recipe();
    let first_run = ok(first.run);
    assert_eq!(first_run.run_lines().len(), 4, "the first run builds every step: {}", first_run.stderr);
    let inspect =
        sh(&format!("skopeo inspect --tls-verify=false --creds {USER}:{PASSWORD} docker://{image}"));
    let info: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(3), "the pushed image: {inspect}");
    let tag = DockerTag::new("ci-recipe-artifact");
    let loaded = sh(&format!("docker load -i {}", first.artifact.display()));
    let name = loaded.trim().strip_prefix("Loaded image: ").unwrap_or_else(|| panic!("{loaded}")).to_string();
    sh(&format!("docker tag {name} {} && docker rmi {name}", tag.0));
    assert_eq!(sh(&format!("docker run --rm {}", tag.0)), "alpha\nbeta\nbuilt-42\n");

    site.next_run();
    let second = ok(run_recipe().run);
    assert!(second.run_lines().is_empty(), "no step runs the second time: {}", second.stderr);
    let cached_runs = second.cached_lines().iter().filter(|l| l.contains(" RUN ")).count();
    assert_eq!(cached_runs, 2, "both RUN steps come from the registry cache: {}", second.stderr);
}

fn requirements() -> Need<()> {
    root()?;
    busybox_static()?;
    docker()?;
    registry()?;
    tool("skopeo")?;
    crate::containers::debian_in_docker()?;
    reachable("deb.debian.org", 80)?;
    Ok(())
}

/// A `docker run` being put together from a recipe.
struct DockerRun {
    flags: Vec<String>,
    workdir: String,
    /// (host directory, path in the container)
    mounted: Vec<(PathBuf, String)>,
}

impl DockerRun {
    /// Under Docker's default profile, on the host's network (the registry
    /// is on loopback), with the securityContext of the pod (`pod`) and
    /// its container.
    fn new(pod: &Value, container: &Value) -> DockerRun {
        let mut flags: Vec<String> = vec!["run".into(), "--rm".into(), "--network=host".into()];
        flags.extend(security_flags(&pod["securityContext"]));
        flags.extend(security_flags(&container["securityContext"]));
        flags.extend(env_flags(&container["env"]));
        DockerRun { flags, workdir: "/".into(), mounted: Vec::new() }
    }

    fn mount(&mut self, host: PathBuf, target: &str, read_only: bool) {
        self.flags.push(format!(
            "--volume={}:{target}{}",
            host.display(),
            if read_only { ":ro" } else { "" }
        ));
        self.mounted.push((host, target.to_string()));
    }

    fn env(&mut self, name: &str, value: &str) {
        self.flags.push(format!("--env={name}={value}"));
    }

    /// Mounts the pod volume named by each of `mounts` (volumeMounts).
    fn mount_volumes(&mut self, site: &Site, mounts: &Value, volumes: &Value) {
        for mount in mounts.as_sequence().into_iter().flatten() {
            let name = mount["name"].as_str().unwrap();
            let volume =
                volumes.as_sequence().into_iter().flatten().find(|v| v["name"].as_str() == Some(name));
            let host =
                kubernetes_volume(site, volume.unwrap_or_else(|| panic!("volume {name} is not defined")));
            self.mount(host, mount["mountPath"].as_str().unwrap(), mount["readOnly"].as_bool() == Some(true));
        }
    }

    fn workdir(&mut self, dir: Option<&str>) {
        if let Some(dir) = dir {
            self.flags.push(format!("--workdir={dir}"));
            self.workdir = dir.into();
        }
    }

    /// Runs `image` with `args`; `command` is the command line whose
    /// `-o type=docker,dest=…` names the artifact.
    fn run(mut self, image: &str, args: &[String], command: &str) -> Outcome {
        let dest = Path::new(&self.workdir).join(tarball_dest(command));
        let artifact = on_host(&self.mounted, dest.to_str().unwrap());
        self.flags.push(image.into());
        self.flags.extend(args.iter().cloned());
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        Outcome { run: docker_cli(&flags), artifact }
    }
}

/// The host directory standing for a pod volume.
fn kubernetes_volume(site: &Site, volume: &Value) -> PathBuf {
    if volume.get("emptyDir").is_some() {
        site.fresh_dir(volume["name"].as_str().unwrap())
    } else if volume.get("persistentVolumeClaim").is_some() {
        site.checkout()
    } else if volume.get("secret").is_some() {
        assert_eq!(volume["secret"]["items"][0]["path"].as_str(), Some("config.json"), "{volume:?}");
        site.docker_config()
    } else {
        panic!("volume {volume:?}: the test cannot give it to docker");
    }
}

#[test]
fn kubernetes_job_recipe_builds_pushes_and_caches_in_its_container() {
    require!(requirements());
    let job = recipe("k8s-job.yaml");
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_asks_for_nothing_beyond_the_default(&container["securityContext"]);
    if let Some(command) = container["command"].as_sequence() {
        panic!("the Job overrides the image's entrypoint ({command:?}): the test runs rbuild's");
    }
    let site = Site::new();
    let image = site.image(&container["image"]);
    let args: Vec<String> =
        container["args"].as_sequence().unwrap().iter().map(|a| site.place(a.as_str().unwrap())).collect();
    let pushed = site.place("REGISTRY/app:latest");
    assert!(args.contains(&pushed), "the Job pushes REGISTRY/app:latest: {args:?}");
    assert_builds_pushes_and_caches(&site, &pushed, || {
        let mut run = DockerRun::new(pod, container);
        run.workdir(container["workingDir"].as_str());
        run.mount_volumes(&site, &container["volumeMounts"], &pod["volumes"]);
        run.run(image, &args, &args.join(" "))
    });
}

#[test]
fn tekton_task_recipe_builds_pushes_and_caches_in_its_step_container() {
    require!(requirements());
    let task = recipe("tekton-task.yaml");
    let spec = &task["spec"];
    let step = &spec["steps"][0];
    assert_asks_for_nothing_beyond_the_default(&step["securityContext"]);
    let site = Site::new();
    let image = site.image(&step["image"]);
    let pushed = site.registry.at("ci/app:1");
    let params = [("image", pushed.clone()), ("cache", site.registry.at("ci/app/cache:main"))];
    let declared: Vec<&str> =
        spec["params"].as_sequence().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(declared, ["image", "cache"]);
    // Tekton mounts a workspace at /workspace/NAME unless it says where.
    let workspaces: Vec<(String, String)> = spec["workspaces"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|w| {
            let name = w["name"].as_str().unwrap().to_string();
            let path = w["mountPath"].as_str().map_or(format!("/workspace/{name}"), str::to_string);
            (name, path)
        })
        .collect();
    let substitute = |text: &str| {
        let mut text = text.to_string();
        for (name, value) in &params {
            text = text.replace(&format!("$(params.{name})"), value);
        }
        for (name, path) in &workspaces {
            text = text.replace(&format!("$(workspaces.{name}.path)"), path);
        }
        assert!(!text.contains("$("), "a Tekton variable the test does not know: {text}");
        text
    };
    let script = substitute(step["script"].as_str().unwrap());
    assert_builds_pushes_and_caches(&site, &pushed, || {
        let mut run = DockerRun::new(&Value::Null, step);
        run.workdir(step["workingDir"].as_str().map(&substitute).as_deref());
        for (name, path) in &workspaces {
            let host = match name.as_str() {
                "source" => site.checkout(),
                "dockerconfig" => site.docker_config(),
                other => panic!("workspace {other}: the test cannot give it to docker"),
            };
            run.mount(host, path, false);
        }
        run.mount_volumes(&site, &step["volumeMounts"], &spec["volumes"]);
        run.flags.push("--entrypoint=/bin/sh".into());
        run.run(image, &["-ec".into(), script.clone()], &script)
    });
}

#[test]
fn gitlab_job_recipe_builds_pushes_and_caches_as_the_docker_executor_runs_it() {
    require!(requirements());
    let pipeline = recipe("gitlab-ci.yml");
    let job = &pipeline["build-image"];
    let site = Site::new();
    let image = site.image(&job["image"]);
    let project_dir = "/builds/group/app";
    let registry_image = site.registry.at("group/app");
    let predefined = [
        ("CI_PROJECT_DIR", project_dir),
        ("CI_REGISTRY", &site.registry.addr),
        ("CI_REGISTRY_USER", USER),
        ("CI_REGISTRY_PASSWORD", PASSWORD),
        ("CI_REGISTRY_IMAGE", &registry_image),
        ("CI_COMMIT_SHORT_SHA", "0123abcd"),
    ];
    // The job's variables, with the predefined ones expanded in them as
    // GitLab does.
    let variables: Vec<(String, String)> = job["variables"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let mut value = value.as_str().unwrap().to_string();
            for (predefined, its) in &predefined {
                value = value.replace(&format!("${predefined}"), its);
            }
            (name.as_str().unwrap().to_string(), value)
        })
        .collect();
    let script: Vec<&str> =
        job["script"].as_sequence().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let script = script.join("\n");
    let kept: Vec<&str> =
        job["artifacts"]["paths"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(kept, [tarball_dest(&script)], "the job keeps the tarball it writes");
    let pushed = format!("{registry_image}:0123abcd");
    assert_builds_pushes_and_caches(&site, &pushed, || {
        // The docker executor: the job's image under Docker's default
        // profile as the image's user, a fresh checkout at CI_PROJECT_DIR,
        // the script run by a shell that stops at the first failure.
        let mut run = DockerRun::new(&Value::Null, &Value::Null);
        for (name, value) in predefined
            .iter()
            .map(|(n, v)| (*n, *v))
            .chain(variables.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            run.env(name, value);
        }
        run.workdir(Some(project_dir));
        run.mount(site.checkout(), project_dir, false);
        run.flags.push("--entrypoint=/bin/sh".into());
        run.run(image, &["-ec".into(), script.clone()], &script)
    });
}

#[test]
fn github_workflow_recipe_builds_pushes_and_caches_as_a_container_job_runs_it() {
    require!(requirements());
    let workflow = recipe("github-workflow.yml");
    let job = &workflow["jobs"]["image"];
    let site = Site::new();
    let image = site.image(&job["container"]["image"]);
    assert!(job["container"]["options"].is_null(), "the job adds no docker option: {job:?}");
    let workspace = "/__w/app/app";
    let (repository, sha) = ("owner/app", "0123abcd0123abcd0123abcd0123abcd0123abcd");
    // The expressions the runner fills in; ghcr.io is the test's registry.
    let fill = |text: &str| {
        let text = text
            .replace("${{ secrets.GITHUB_TOKEN }}", PASSWORD)
            .replace("${{ github.actor }}", USER)
            .replace("${{ github.repository }}", repository)
            .replace("${{ github.sha }}", sha)
            .replace("ghcr.io", &site.registry.addr);
        assert!(!text.contains("${{"), "an expression the test does not know: {text}");
        text
    };
    let mut scripts = Vec::new();
    let mut checked_out = false;
    let mut uploaded = None;
    for step in job["steps"].as_sequence().unwrap() {
        match (step["uses"].as_str(), step["run"].as_str()) {
            (Some(action), None) if action.starts_with("actions/checkout@") => checked_out = true,
            (Some(action), None) if action.starts_with("actions/upload-artifact@") => {
                uploaded = step["with"]["path"].as_str().map(str::to_string)
            }
            (None, Some(run)) => scripts.push(fill(run)),
            _ => panic!("a step the test cannot run: {step:?}"),
        }
    }
    assert!(checked_out, "the job checks the source out");
    // Each `run` step is `sh -e` in the job's container; here one after
    // the other in one shell, which stops at the first failure.
    let script = scripts.join("\n");
    assert_eq!(uploaded, Some(tarball_dest(&script)), "the job uploads the tarball it writes");
    let pushed = site.registry.at(&format!("{repository}:{sha}"));
    assert_builds_pushes_and_caches(&site, &pushed, || {
        let mut run = DockerRun::new(&Value::Null, &Value::Null);
        run.workdir(Some(workspace));
        run.mount(site.checkout(), workspace, false);
        run.flags.push("--entrypoint=/bin/sh".into());
        run.run(image, &["-ec".into(), script.clone()], &script)
    });
}
