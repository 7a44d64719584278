//! What can go wrong talking to a registry, each with the hint a user needs.

use std::io;
use std::path::PathBuf;

use rbuild_cache::store::StoreError;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::IoError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("unauthorized: {registry} refused the credentials{detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("{what} not found in {registry}")]
    NotFound { registry: String, what: String },
    #[error("{what} from {registry} has digest {actual}, but {expected} was asked for")]
    DigestMismatch { registry: String, what: String, expected: String, actual: String },
    #[error("{reference} has no image for {wanted}; it has: {available}")]
    NoPlatform { reference: String, wanted: String, available: String },
    #[error("registry {registry} answered with an error: {message}")]
    Protocol { registry: String, message: String },
    #[error("cannot set up TLS for registries: {0}")]
    NoTrustRoots(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A cache mount that could not be installed (in use, a bad tar).
    #[error("{0}")]
    CacheMount(String),
    #[error("invalid reference {input:?}: {message}")]
    InvalidReference { input: String, message: String },
    #[error("credentials: {0}")]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// What the user can do about it. Each kind of failure has one hint,
    /// the most specific one there is for it; a caller that has one of its
    /// own should add it only when this gives none (the rule of
    /// `BuildError::hint`: the first hint, closest to the failure, wins).
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Unreachable { registry, .. } => Some(format!(
                "check that the registry at {registry} is running; a registry that speaks plain HTTP (or uses a self-signed certificate) must be named with --insecure-registry {registry} unless it is on this machine"
            )),
            RegistryError::Unauthorized { registry, .. } => {
                Some(format!("log in with `rbuild login {registry}` (credentials go to Docker's config.json)"))
            }
            RegistryError::NotFound { .. } => {
                Some("check the repository and tag (`rbuild search REGISTRY/NAME` lists them)".into())
            }
            RegistryError::DigestMismatch { .. } => Some(
                "the registry served content that does not match its digest; nothing was stored. Try again, or report it to the registry's operator".into(),
            ),
            RegistryError::NoPlatform { .. } => {
                Some("choose one of the platforms it has with --platform, or push an image built for the one you want".into())
            }
            RegistryError::NoTrustRoots(_) => Some(
                "install the system's CA certificates (apt-get install ca-certificates; in a container, \
                 into its image or by mounting the host's /etc/ssl/certs), or point SSL_CERT_FILE or \
                 SSL_CERT_DIR at a bundle (every registry needs them, even one on plain HTTP)"
                    .into(),
            ),
            RegistryError::Credentials(_) => {
                Some("check ~/.docker/config.json (or $DOCKER_CONFIG/config.json) and its credential helpers".into())
            }
            _ => None,
        }
    }

    /// Whether this failed because the disk (or the quota) is full.
    pub fn is_storage_full(&self) -> bool {
        rbuild_oci::io_error::is_storage_full(self)
    }

    pub(crate) fn digest_mismatch(registry: &str, what: String, expected: &Digest, actual: &Digest) -> Self {
        RegistryError::DigestMismatch {
            registry: registry.to_string(),
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What is wrong with the credential file or a credential helper.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{} is not a JSON object", .0.display())]
    NotAnObject(PathBuf),
    #[error("an `auth` entry is not base64 of user:password")]
    BadAuth,
    /// `program` is the helper and its action: `docker-credential-NAME get`.
    #[error("cannot run {program}: {source}")]
    CannotRun {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The helper exited with a failure; `said` is what it printed.
    #[error("{program} failed: {said}")]
    HelperFailed { program: String, said: String },
    /// The helper has nothing for this server: it failed saying so, which
    /// is how Docker's helper protocol answers a `get` for unknown
    /// credentials. Worded like any other failure.
    #[error("{program} failed: {said}")]
    NoCredentials { program: String, said: String },
    #[error("{program} printed invalid JSON: {source}")]
    InvalidReply {
        program: String,
        #[source]
        source: serde_json::Error,
    },
}
