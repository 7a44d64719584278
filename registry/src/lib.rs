//! Registries: moving images and build cache between the store and an OCI
//! Distribution (v2) registry, and the credentials that go with it.
//!
//! The HTTP side (auth challenges, Bearer tokens, basic auth, blob and
//! manifest requests) is `oci-client`'s; this module decides what to send
//! and checks what comes back:
//!
//! * [`session`]: one [`Session`] per command: the async runtime, a client
//!   per registry (plain HTTP for this machine and `--insecure-registry`
//!   hosts), credentials from Docker's `config.json`, retries with backoff.
//! * [`pull`]: manifest (or the host's entry of a manifest list / image
//!   index), config, then the layers in parallel, every blob verified
//!   before it enters the store; the image and its tag appear last.
//! * [`push`]: layers gzip-compressed in parallel
//!   ([`rbuild_oci::compress::parallel_gzip`]), skipped when the registry
//!   has them, mounted from another repository when it can, then config
//!   and manifest.
//! * [`build_cache`]: build cache records and their layers exported to a
//!   registry or an OCI layout directory, and imported lazily;
//!   [`cache_mounts`]: the cache mounts such a cache can carry.
//! * [`credentials`] and [`login`]: `~/.docker/config.json`, credential
//!   helpers, and checking a user name and password against a registry.
//! * [`search`]: repositories and tags of a registry's catalog.
//! * [`known_blobs`]: the compressed forms a layer is known by, so pushing
//!   it a second time costs one HEAD request.

pub mod build_cache;
pub mod cache_mounts;
pub mod credentials;
mod error;
pub mod http;
pub mod known_blobs;
pub mod login;
mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
pub mod session;
pub mod settings;
mod transfers;

pub use error::RegistryError;
pub use progress::{NoProgress, TransferProgress};
pub use session::Session;
pub use settings::RegistrySettings;
