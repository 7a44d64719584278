//! One command's connection to registries: an async runtime driving
//! `oci-client` under a blocking interface, one client per registry with
//! its scheme and credentials, and retries with backoff.
//!
//! Everything above this module is plain blocking code on ordinary threads
//! (the store is synchronous); each network call is `block_on` of one
//! `oci-client` future. Blob bodies stream through [`BlobReader`], a
//! `Read` that pulls chunks from the response as the store consumes them,
//! so a layer is never held in memory.
//!
//! Retries: a request that fails by timing out, by a refused or reset
//! connection, or with a 5xx or 429 answer is tried again after 0.25 s,
//! 0.5 s and 1 s; anything else (not found, unauthorized, a digest that
//! does not match) fails at once. So a registry that is down fails within
//! about two seconds plus the connect timeouts.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use reqwest::header::HeaderValue;

use super::credentials::DockerConfig;
use super::error::{RegistryError, Result};
use super::progress::{NoProgress, TransferProgress};
use super::settings::RegistrySettings;
use rbuild_oci::digest::Digest;
use rbuild_oci::io_error::{IoContext, IoError};
use rbuild_oci::reference::Reference;

/// Attempts per request for transient failures.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading a response before the request fails.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Every manifest kind rbuild reads.
pub(crate) const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A registry's client, reached over `scheme` with the user's credentials.
struct Endpoint {
    client: oci_client::Client,
    auth: RegistryAuth,
    /// `http` or `https`.
    scheme: &'static str,
}

/// Connections to registries for one command.
pub struct Session {
    settings: RegistrySettings,
    runtime: tokio::runtime::Runtime,
    progress: Arc<dyn TransferProgress>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(settings: RegistrySettings, progress: Arc<dyn TransferProgress>) -> Result<Session> {
        // reqwest is built without a default TLS provider so that only one
        // (ring) is compiled in; it must be installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rbuild-registry")
            .enable_all()
            .build()
            .ctx("start", "async runtime")?;
        Ok(Session { settings, runtime, progress, endpoints: Mutex::new(HashMap::new()) })
    }

    /// A session that reports nothing (for tests and quiet commands).
    pub fn quiet(settings: RegistrySettings) -> Result<Session> {
        Session::new(settings, Arc::new(NoProgress))
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    pub fn progress(&self) -> &dyn TransferProgress {
        self.progress.as_ref()
    }

    /// Runs a future to completion on the session's runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }

    fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>> {
        if let Some(e) = self.endpoints.lock().expect("endpoints lock").get(registry) {
            return Ok(e.clone());
        }
        let insecure = self.settings.is_insecure(registry);
        let plain_http = insecure && !self.speaks_https(registry);
        let protocol = if plain_http {
            ClientProtocol::HttpsExcept(vec![oci_ref_for(registry, "x", None).resolve_registry().to_string()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            accept_invalid_certificates: insecure,
            // One PUT per blob, streamed: registries need no chunk
            // bookkeeping and a layer is sent in a single request.
            use_monolithic_push: true,
            platform_resolver: None,
            max_concurrent_upload: self.settings.parallel_transfers,
            max_concurrent_download: self.settings.parallel_transfers,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: concat!("rbuild/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        // oci-client makes a default reqwest client beside the configured
        // one, and that panics where the system has no CA certificates (a
        // bare container), even for a registry on plain HTTP: asked first.
        system_trust_roots()?;
        let client =
            oci_client::Client::try_from(config).map_err(|e| RegistryError::NoTrustRoots(error_chain(&e)))?;
        let auth = match DockerConfig::load(&self.settings.docker_config_dir)?.credentials_for(registry)? {
            Some(c) => RegistryAuth::Basic(c.username, c.secret),
            None => RegistryAuth::Anonymous,
        };
        let resolved = oci_ref_for(registry, "x", None).resolve_registry().to_string();
        let scheme = if plain_http { "http" } else { "https" };
        // oci-client asks `/v2/` for an auth challenge before every request
        // it has no token for; a registry that needs no auth at all would
        // cost a second round trip per request, so it is told nothing.
        if !matches!(auth, RegistryAuth::Anonymous)
            || self.asks_for_auth(&format!("{scheme}://{resolved}/v2/"), insecure)
        {
            self.block_on(client.store_auth_if_needed(&resolved, &auth));
        }
        let endpoint = Arc::new(Endpoint { client, auth, scheme });
        self.endpoints.lock().expect("endpoints lock").insert(registry.to_string(), endpoint.clone());
        Ok(endpoint)
    }

    /// `http://host:port` or `https://host:port`: how this session reaches
    /// the registry.
    pub(crate) fn base_url(&self, registry: &str) -> Result<String> {
        let endpoint = self.endpoint(registry)?;
        let host = oci_ref_for(registry, "x", None).resolve_registry().to_string();
        Ok(format!("{}://{host}", endpoint.scheme))
    }

    /// Whether the registry challenges an anonymous request (any answer
    /// but a plain success counts, so oci-client gets to handle it).
    fn asks_for_auth(&self, url: &str, insecure: bool) -> bool {
        let Ok(client) = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(Duration::from_secs(30))
            .build()
        else {
            return true;
        };
        self.block_on(async { !client.get(url).send().await.is_ok_and(|r| r.status().is_success()) })
    }

    /// Whether an insecure registry answers HTTPS (self-signed) rather
    /// than plain HTTP. Docker tries HTTPS first too.
    fn speaks_https(&self, registry: &str) -> bool {
        let Ok(client) = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
        else {
            return false;
        };
        let url = format!("https://{registry}/v2/");
        self.block_on(async { client.get(&url).send().await.is_ok() })
    }

    /// Runs `op` with retries; `what` names the object for errors.
    fn retry<T, F, Fut>(&self, registry: &str, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.block_on(op()) {
                Ok(v) => return Ok(v),
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    tracing::debug!("{what}: attempt {attempt} failed ({e}); retrying in {delay:?}");
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(classify(registry, what, e)),
            }
        }
    }

    /// A manifest (or index) by tag or digest: its bytes and digest. The
    /// digest is checked against the reference's digest when it has one.
    pub(crate) fn fetch_manifest(&self, reference: &Reference) -> Result<(Vec<u8>, Digest)> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let what = format!("manifest {}", reference.familiar());
        let (bytes, digest) = self.retry(&reference.registry, &what, || {
            endpoint.client.pull_manifest_raw(&target, &endpoint.auth, MANIFEST_MEDIA_TYPES)
        })?;
        let computed = Digest::of(&bytes);
        if let Ok(named) = Digest::parse(&digest)
            && named != computed
        {
            return Err(RegistryError::digest_mismatch(&reference.registry, what, &named, &computed));
        }
        if let Some(expected) = &reference.digest
            && *expected != computed
        {
            return Err(RegistryError::digest_mismatch(&reference.registry, what, expected, &computed));
        }
        Ok((bytes.to_vec(), computed))
    }

    /// A small blob (a config) in memory, verified against `digest`.
    pub(crate) fn fetch_small_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>> {
        const LIMIT: u64 = 64 << 20;
        if size > LIMIT {
            return Err(RegistryError::Unsupported(format!(
                "blob {digest} is {size} bytes; JSON blobs over 64 MiB are refused"
            )));
        }
        let mut reader = self.open_blob(reference, digest, size, None)?;
        let mut bytes = Vec::with_capacity(size as usize);
        let read = (&mut reader).take(LIMIT + 1).read_to_end(&mut bytes);
        reader.check(read.map(|_| ()))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::digest_mismatch(
                &reference.registry,
                format!("blob {digest}"),
                digest,
                &actual,
            ));
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming. `item` names it for progress reports.
    pub(crate) fn open_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        item: Option<&str>,
    ) -> Result<BlobReader<'_>> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let descriptor =
            OciDescriptor { digest: digest.to_string(), size: size as i64, ..Default::default() };
        let what = format!("blob {digest} of {}", reference.name());
        let stream = self
            .retry(&reference.registry, &what, || endpoint.client.pull_blob_stream(&target, &descriptor))?;
        Ok(BlobReader {
            session: self,
            expected: *digest,
            registry: reference.registry.clone(),
            what,
            stream: stream.stream,
            pending: bytes::Bytes::new(),
            item: item.map(str::to_string),
            failure: None,
        })
    }

    /// Whether the repository of `reference` has the blob.
    pub(crate) fn has_blob(&self, reference: &Reference, digest: &Digest) -> Result<bool> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let digest = digest.to_string();
        self.retry(&reference.registry, &format!("blob {digest}"), || {
            endpoint.client.blob_exists(&target, &digest)
        })
    }

    /// Asks the registry to link a blob from another of its repositories
    /// into this one; false when it would not (then upload instead).
    pub(crate) fn mount_blob(&self, reference: &Reference, from_repository: &str, digest: &Digest) -> bool {
        let Ok(endpoint) = self.endpoint(&reference.registry) else { return false };
        let target = oci_ref(reference);
        let source = oci_ref_for(&reference.registry, from_repository, None);
        let digest = digest.to_string();
        self.block_on(endpoint.client.mount_blob(&target, &source, &digest)).is_ok()
    }

    /// Uploads a file as the blob `digest` to the repository of `reference`.
    pub(crate) fn upload_file(
        &self,
        reference: &Reference,
        path: &Path,
        digest: &Digest,
        size: u64,
        item: Option<&str>,
    ) -> Result<()> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let digest_text = digest.to_string();
        let progress = self.progress.clone();
        let item = item.map(str::to_string);
        self.retry(&reference.registry, &format!("upload of blob {digest}"), || {
            let path = path.to_path_buf();
            let progress = progress.clone();
            let item = item.clone();
            let endpoint = &endpoint;
            let target = &target;
            let digest_text = &digest_text;
            async move {
                let file = tokio::fs::File::open(&path).await?;
                let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
                    if let (Ok(bytes), Some(item)) = (&chunk, &item) {
                        progress.advance(item, bytes.len() as u64);
                    }
                    chunk.map_err(OciDistributionError::from)
                });
                endpoint.client.push_blob_stream(target, body, digest_text, Some(size)).await
            }
        })?;
        Ok(())
    }

    /// Uploads a small blob from memory, unless the registry has it.
    pub(crate) fn upload_bytes(&self, reference: &Reference, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.has_blob(reference, &digest)? {
            return Ok(digest);
        }
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let digest_text = digest.to_string();
        let data = bytes::Bytes::copy_from_slice(bytes);
        self.retry(&reference.registry, &format!("upload of blob {digest}"), || {
            endpoint.client.push_blob(&target, data.clone(), &digest_text)
        })?;
        Ok(digest)
    }

    /// Stores a manifest under the reference's tag (or digest).
    pub(crate) fn put_manifest(&self, reference: &Reference, json: &[u8], media_type: &str) -> Result<()> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let body = bytes::Bytes::copy_from_slice(json);
        let content_type = HeaderValue::from_str(media_type)
            .map_err(|_| RegistryError::Unsupported(format!("media type {media_type:?}")))?;
        self.retry(&reference.registry, &format!("manifest {}", reference.familiar()), || {
            endpoint.client.push_manifest_raw(&target, body.clone(), content_type.clone())
        })?;
        Ok(())
    }

    /// One page of the registry's repository list.
    pub(crate) fn catalog_page(
        &self,
        registry: &str,
        page: usize,
        last: Option<&str>,
    ) -> Result<Vec<String>> {
        let endpoint = self.endpoint(registry)?;
        let target = oci_ref_for(registry, "x", None);
        let response = self.retry(registry, "repository catalog", || {
            endpoint.client.catalog(&target, &endpoint.auth, Some(page), last)
        })?;
        Ok(response.repositories)
    }

    /// The tags of a repository (`reference`'s tag is ignored).
    pub(crate) fn tags(&self, reference: &Reference, limit: Option<usize>) -> Result<Vec<String>> {
        let endpoint = self.endpoint(&reference.registry)?;
        let target = oci_ref(reference);
        let response = self.retry(&reference.registry, &format!("tags of {}", reference.name()), || {
            endpoint.client.list_tags(&target, &endpoint.auth, limit, None)
        })?;
        Ok(response.tags)
    }
}

/// A blob's body as a `Read`, pulling chunks from the response on demand.
pub(crate) struct BlobReader<'a> {
    session: &'a Session,
    expected: Digest,
    registry: String,
    what: String,
    stream: futures_util::stream::BoxStream<'static, std::result::Result<bytes::Bytes, io::Error>>,
    pending: bytes::Bytes,
    item: Option<String>,
    /// Why the stream failed, kept to report it as a registry error rather
    /// than as a failed write into the store.
    pub(crate) failure: Option<RegistryError>,
}

impl BlobReader<'_> {
    /// Turns the outcome of consuming the reader into a registry error when
    /// the network (not the store) was at fault.
    pub(crate) fn check<T>(
        &mut self,
        outcome: std::result::Result<T, impl Into<RegistryError>>,
    ) -> Result<T> {
        match (outcome, self.failure.take()) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(network)) => Err(network),
            (Err(e), None) => Err(e.into()),
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match self.session.block_on(self.stream.next()) {
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(e)) => {
                    let message = error_chain(&e);
                    self.failure = Some(stream_failure(&self.registry, &self.what, &self.expected, &e));
                    return Err(io::Error::other(message));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        if let Some(item) = &self.item {
            self.session.progress.advance(item, n as u64);
        }
        Ok(n)
    }
}

impl From<io::Error> for RegistryError {
    fn from(e: io::Error) -> RegistryError {
        IoError::new("read", "<network>", e).into()
    }
}

/// What a failed read of a blob's body means: `oci-client` checks the
/// digest as the body streams and reports a mismatch (or a digest it cannot
/// check) as a `DigestError` inside the io error; anything else is the
/// connection failing.
fn stream_failure(registry: &str, what: &str, expected: &Digest, e: &io::Error) -> RegistryError {
    let message = error_chain(e);
    if e.get_ref().is_some_and(|inner| inner.is::<DigestError>()) {
        RegistryError::DigestMismatch {
            registry: registry.to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            actual: format!("other content ({message})"),
        }
    } else {
        RegistryError::Unreachable { registry: registry.to_string(), message }
    }
}

/// `oci-client`'s reference for ours.
pub(crate) fn oci_ref(reference: &Reference) -> oci_client::Reference {
    oci_ref_for(&reference.registry, &reference.repository, Some(reference))
}

fn oci_ref_for(registry: &str, repository: &str, reference: Option<&Reference>) -> oci_client::Reference {
    let (registry, repository) = (registry.to_string(), repository.to_string());
    match reference {
        Some(Reference { digest: Some(d), .. }) => {
            oci_client::Reference::with_digest(registry, repository, d.to_string())
        }
        Some(Reference { tag: Some(t), .. }) => {
            oci_client::Reference::with_tag(registry, repository, t.clone())
        }
        _ => oci_client::Reference::with_tag(registry, repository, "latest".into()),
    }
}

fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_timeout()
                || r.is_connect()
                || r.is_request()
                || r.is_body()
                || r.status().is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
        }
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| e.code == OciErrorCode::Toomanyrequests)
        }
        OciDistributionError::IoError(io) => {
            matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            )
        }
        _ => false,
    }
}

/// Whether the system has CA certificates (as reqwest's platform verifier
/// loads them: /etc/ssl/certs, or SSL_CERT_FILE / SSL_CERT_DIR), asked once.
fn system_trust_roots() -> Result<()> {
    static FOUND: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.certs.is_empty() {
            return Ok(());
        }
        let why = loaded.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
        Err(format!("no CA certificates were found on this system{why}"))
    });
    found.clone().map_err(RegistryError::NoTrustRoots)
}

/// Every message of an error and its sources, joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Maps `oci-client`'s error to ours.
fn classify(registry: &str, what: &str, e: OciDistributionError) -> RegistryError {
    let registry = registry.to_string();
    let not_found = |registry: String| RegistryError::NotFound { registry, what: what.to_string() };
    match e {
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() || r.is_request() => {
            RegistryError::Unreachable { registry, message: error_chain(&r) }
        }
        OciDistributionError::RequestError(r) if r.status().is_some() => {
            let status = r.status().expect("checked");
            match status.as_u16() {
                401 | 403 => RegistryError::Unauthorized { registry, detail: format!(" (HTTP {status})") },
                404 => not_found(registry),
                _ => RegistryError::Protocol { registry, message: format!("{what}: HTTP {status}") },
            }
        }
        OciDistributionError::UnauthorizedError { .. } => {
            RegistryError::Unauthorized { registry, detail: String::new() }
        }
        OciDistributionError::AuthenticationFailure(m) => {
            RegistryError::Unauthorized { registry, detail: format!(": {}", m.trim()) }
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = envelope.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found(registry)
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                RegistryError::Unauthorized { registry, detail: format!(": {message}") }
            } else {
                RegistryError::Protocol { registry, message: format!("{what}: {message}") }
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => not_found(registry),
        OciDistributionError::ServerError { code: 401 | 403, message, .. } => {
            RegistryError::Unauthorized { registry, detail: format!(": {}", message.trim()) }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            RegistryError::Protocol { registry, message: format!("{what}: HTTP {code} {}", message.trim()) }
        }
        OciDistributionError::DigestError(d) => RegistryError::DigestMismatch {
            registry,
            what: what.to_string(),
            expected: "the digest it is named by".into(),
            actual: d.to_string(),
        },
        other => RegistryError::Protocol { registry, message: format!("{what}: {}", error_chain(&other)) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_error_in_the_body_is_a_mismatch_and_anything_else_unreachable() {
        let expected = Digest::of(b"wanted");
        let lying = io::Error::other(DigestError::VerificationError {
            expected: expected.to_string(),
            actual: Digest::of(b"served").to_string(),
        });
        let err = stream_failure("reg:5000", "blob x", &expected, &lying);
        assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err:?}");

        // A message that merely mentions a digest is not a digest error.
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset while reading digest sha256:…");
        let err = stream_failure("reg:5000", "blob x", &expected, &reset);
        assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    }
}
