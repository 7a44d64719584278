//! Docker's credential file, `config.json` in `$DOCKER_CONFIG` (else
//! `~/.docker`), shared with the Docker CLI, so `docker login` and
//! `rbuild login` serve each other.
//!
//! * `auths`: server → `{"auth": base64("user:password")}`.
//! * `credHelpers`: server → helper name, and `credsStore`: the helper for
//!   every other server. A helper is the program `docker-credential-NAME`
//!   speaking Docker's protocol: `get` reads the server URL on stdin and
//!   prints `{"ServerURL","Username","Secret"}`; `store` reads that JSON;
//!   `erase` reads the server URL. A helper that is not installed is
//!   skipped with a warning and `auths` is used instead.
//!
//! Docker Hub's key is the historical `https://index.docker.io/v1/`; every
//! other registry's is its `host[:port]`. Keys written with a scheme or a
//! path by other tools are matched too. The rest of the file (proxies,
//! other tools' settings) is kept as it was, in its order.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rbuild_oci::io_error::{IoContext, IoError};
use serde_json::{Map, Value};

pub use super::error::CredentialsError;
use super::error::{RegistryError, Result};

/// Docker Hub's key in `auths` and in credential helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in debug logs.
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Where `login` put the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    File(PathBuf),
    Helper(String),
}

/// The key Docker uses for a registry (`docker.io` → [`DOCKER_HUB_SERVER`]).
pub fn server_key(registry: &str) -> String {
    if is_docker_hub(registry) { DOCKER_HUB_SERVER.to_string() } else { registry.to_string() }
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(registry, "docker.io" | "index.docker.io" | "registry-1.docker.io")
}

/// `https://host:port/v1/` → `host:port`, so keys written by other tools match.
fn bare_host(key: &str) -> &str {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = bare_host(key);
    host == registry || (is_docker_hub(host) && is_docker_hub(registry))
}

/// Docker's `config.json`, read whole and written back whole.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    value: Map<String, Value>,
    /// Where `docker-credential-*` programs are looked for (`$PATH`).
    helper_dirs: Vec<PathBuf>,
}

impl DockerConfig {
    /// Reads `DIR/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let value = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) | Err(_) => return Err(CredentialsError::NotAnObject(path).into()),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(IoError::new("read", path, e).into()),
        };
        let helper_dirs =
            std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        Ok(DockerConfig { path, value, helper_dirs })
    }

    /// Looks for credential helpers in `dirs` instead of `$PATH`.
    pub fn with_helper_dirs(mut self, dirs: Vec<PathBuf>) -> DockerConfig {
        self.helper_dirs = dirs;
        self
    }

    fn helper_program(&self, name: &str) -> Option<PathBuf> {
        let program = format!("docker-credential-{name}");
        self.helper_dirs.iter().map(|d| d.join(&program)).find(|p| p.is_file())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper responsible for `registry`, if the config names one.
    fn helper_for(&self, registry: &str) -> Option<String> {
        if let Some(helpers) = self.value.get("credHelpers").and_then(Value::as_object) {
            for (key, name) in helpers {
                if same_registry(key, registry)
                    && let Some(name) = name.as_str()
                {
                    return Some(name.to_string());
                }
            }
        }
        self.value.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    }

    /// The helper for `registry` if it is installed; warns when it is not.
    fn usable_helper_for(&self, registry: &str) -> Option<Helper> {
        let name = self.helper_for(registry)?;
        if let Some(program) = self.helper_program(&name) {
            Some(Helper { name, program })
        } else {
            tracing::warn!(
                "{} names the credential helper {name:?}, but docker-credential-{name} is not installed; using the file",
                self.path.display()
            );
            None
        }
    }

    /// The credentials for `registry` (`host[:port]` or `docker.io`).
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.usable_helper_for(registry) {
            return helper.get(&server_key(registry));
        }
        let Some(auths) = self.value.get("auths").and_then(Value::as_object) else { return Ok(None) };
        for (key, entry) in auths {
            if !same_registry(key, registry) {
                continue;
            }
            if let Some(encoded) = entry.get("auth").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                return decode_auth(encoded).map(Some);
            }
            let user = entry.get("username").and_then(Value::as_str);
            let pass = entry.get("password").and_then(Value::as_str);
            if let (Some(u), Some(p)) = (user, pass) {
                return Ok(Some(Credentials { username: u.into(), secret: p.into() }));
            }
        }
        Ok(None)
    }

    /// Remembers credentials for `registry`: in its helper when there is
    /// one, else in `auths`. Call [`DockerConfig::save`] afterwards.
    pub fn store(&mut self, registry: &str, credentials: &Credentials) -> Result<StoredIn> {
        let key = server_key(registry);
        if let Some(helper) = self.usable_helper_for(registry) {
            let payload = serde_json::json!({
                "ServerURL": key,
                "Username": credentials.username,
                "Secret": credentials.secret,
            });
            helper.run("store", payload.to_string().as_bytes())?;
            // Docker leaves an empty entry so that `docker info` lists the registry.
            self.auths_mut().insert(key, Value::Object(Map::new()));
            return Ok(StoredIn::Helper(helper.name));
        }
        let encoded = BASE64.encode(format!("{}:{}", credentials.username, credentials.secret));
        let auths = self.auths_mut();
        auths.retain(|k, _| !same_registry(k, registry));
        auths.insert(key, serde_json::json!({ "auth": encoded }));
        Ok(StoredIn::File(self.path.clone()))
    }

    /// Forgets the credentials for `registry`; false when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let mut found = false;
        if let Some(helper) = self.usable_helper_for(registry) {
            // A helper that has nothing for this server says so with an
            // error; that is not a failure of logout.
            found |= helper.run("erase", server_key(registry).as_bytes()).is_ok();
        }
        let auths = self.auths_mut();
        let before = auths.len();
        auths.retain(|k, _| !same_registry(k, registry));
        found |= auths.len() != before;
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self.value.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("auths is an object")
    }

    /// Writes the file atomically, readable by its owner only (it holds
    /// passwords).
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).ctx("create", dir)?;
        let mut bytes =
            serde_json::to_vec_pretty(&Value::Object(self.value.clone())).expect("JSON serializes");
        bytes.push(b'\n');
        let tmp = dir.join(format!(".config.json.rbuild-{}", std::process::id()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            IoError::new("write", &self.path, e).into()
        })
    }
}

fn decode_auth(encoded: &str) -> Result<Credentials> {
    let bad = || RegistryError::from(CredentialsError::BadAuth);
    let bytes = BASE64.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (user, pass) = text.split_once(':').ok_or_else(bad)?;
    Ok(Credentials { username: user.to_string(), secret: pass.to_string() })
}

/// An installed `docker-credential-NAME` program.
struct Helper {
    name: String,
    program: PathBuf,
}

impl Helper {
    fn get(&self, server: &str) -> Result<Option<Credentials>> {
        match self.run("get", server.as_bytes()) {
            Ok(out) => {
                #[derive(serde::Deserialize)]
                struct Reply {
                    #[serde(rename = "Username")]
                    username: String,
                    #[serde(rename = "Secret")]
                    secret: String,
                }
                let reply: Reply = serde_json::from_slice(&out).map_err(|source| {
                    CredentialsError::InvalidReply { program: self.shown("get"), source }
                })?;
                Ok(Some(Credentials { username: reply.username, secret: reply.secret }))
            }
            Err(CredentialsError::NoCredentials { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `docker-credential-NAME ACTION`, for messages.
    fn shown(&self, action: &str) -> String {
        format!("docker-credential-{} {action}", self.name)
    }

    fn run(&self, action: &str, input: &[u8]) -> std::result::Result<Vec<u8>, CredentialsError> {
        let cannot_run = |source| CredentialsError::CannotRun { program: self.shown(action), source };
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(cannot_run)?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().map_err(cannot_run)?;
        if !out.status.success() {
            let said = format!(
                "{} {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            let (program, said) = (self.shown(action), said.trim().to_string());
            // The protocol has no exit code for "nothing stored": Docker's
            // helpers print "credentials not found in native keychain" and
            // others word it their own way, so this one place reads what
            // the helper printed.
            return Err(if said.contains("not found") {
                CredentialsError::NoCredentials { program, said }
            } else {
                CredentialsError::HelperFailed { program, said }
            });
        }
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials { username: u.into(), secret: p.into() }
    }

    #[test]
    fn store_then_read_then_erase_keeps_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"proxies": {"default": {}}, "auths": {}}"#)
            .unwrap();
        let mut config = DockerConfig::load(dir.path()).unwrap();
        config.store("127.0.0.1:5000", &creds("alice", "s3cr:et")).unwrap();
        config.store("docker.io", &creds("bob", "pw")).unwrap();
        config.save().unwrap();

        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert!(json.get("proxies").is_some(), "other settings survive: {text}");
        assert_eq!(json["auths"]["127.0.0.1:5000"]["auth"], BASE64.encode("alice:s3cr:et"));
        assert!(json["auths"].get(DOCKER_HUB_SERVER).is_some(), "Docker Hub uses Docker's key: {text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("config.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let config = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(config.credentials_for("127.0.0.1:5000").unwrap(), Some(creds("alice", "s3cr:et")));
        assert_eq!(config.credentials_for("index.docker.io").unwrap(), Some(creds("bob", "pw")));
        assert_eq!(config.credentials_for("other:5000").unwrap(), None);

        let mut config = DockerConfig::load(dir.path()).unwrap();
        assert!(config.erase("127.0.0.1:5000").unwrap());
        assert!(!config.erase("127.0.0.1:5000").unwrap());
        config.save().unwrap();
        assert_eq!(DockerConfig::load(dir.path()).unwrap().credentials_for("127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn keys_written_with_a_scheme_match() {
        let dir = tempfile::tempdir().unwrap();
        let auth = BASE64.encode("u:p");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths": {{"https://reg.example:443/v2/": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let config = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(config.credentials_for("reg.example:443").unwrap(), Some(creds("u", "p")));
    }

    #[test]
    fn a_credential_helper_is_used_when_installed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let store_file = dir.path().join("helper-store");
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) rm -f {s} ;;\nesac\n",
            s = store_file.display()
        );
        let helper = bin.join("docker-credential-rbuildtest");
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore": "rbuildtest"}"#).unwrap();
        let load = || DockerConfig::load(dir.path()).unwrap().with_helper_dirs(vec![bin.clone()]);
        let mut config = load();
        assert_eq!(config.credentials_for("reg.lan:5000").unwrap(), None);
        let stored = config.store("reg.lan:5000", &creds("carol", "pw2")).unwrap();
        assert_eq!(stored, StoredIn::Helper("rbuildtest".into()));
        config.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(!text.contains("pw2"), "the password stays out of the file: {text}");
        assert_eq!(load().credentials_for("reg.lan:5000").unwrap(), Some(creds("carol", "pw2")));
        let mut config = load();
        assert!(config.erase("reg.lan:5000").unwrap());
        assert_eq!(load().credentials_for("reg.lan:5000").unwrap(), None);
    }

    #[test]
    fn a_helper_that_fails_for_another_reason_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-locked");
        std::fs::write(&helper, "#!/bin/sh\necho 'keychain is locked' >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore": "locked"}"#).unwrap();
        let config = DockerConfig::load(dir.path()).unwrap().with_helper_dirs(vec![bin]);
        let err = config.credentials_for("reg.lan:5000").unwrap_err();
        assert!(matches!(&err, RegistryError::Credentials(CredentialsError::HelperFailed { .. })), "{err:?}");
        assert_eq!(err.to_string(), "credentials: docker-credential-locked get failed: keychain is locked");
    }
}
