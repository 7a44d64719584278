//! Image archives: the files images travel in outside a registry.
//!
//! * [`write_docker_archive`] writes what `docker save` writes: `manifest.json`
//!   and `repositories` for `docker load`, laid out as Docker 25 does, with
//!   every file under `blobs/sha256/` plus `oci-layout` and `index.json`, so
//!   the same tar is also an OCI image layout.
//! * [`write_oci_archive`] writes an OCI image layout as a tar, tagged with
//!   `org.opencontainers.image.ref.name` annotations.
//! * [`load`] reads either kind (or an OCI layout directory), plain, gzip or
//!   zstd compressed, verifies every digest and only then makes the images
//!   and their tags visible.
//! * [`import_rootfs`] is `docker import`: a root filesystem tarball becomes
//!   a one-layer image.
//!
//! Everything streams: a layer is never held in memory, only JSON is.
//!
//! Submodules: `error` (what can go wrong), `names` (safe entry names),
//! `tar_out` (the reproducible tar writer), `export` (which images, tags and
//! layer blobs an export holds), `docker` and `oci` (each format's JSON and
//! writer, and reading its manifests back), `spool` (taking an archive's
//! entries in as they stream), `load`, and `import`.

mod docker;
mod error;
mod export;
mod import;
mod load;
mod names;
mod oci;
mod spool;
mod tar_out;
mod verify;

pub use docker::write_docker_archive;
pub use error::{ArchiveError, NotALayer};
pub use export::{ExportImage, ExportOptions, LayerBlobCompression};
pub use import::{ImportOptions, import_rootfs};
pub use load::{LoadInput, LoadedImage, ReplacedTag, load};
pub use oci::{write_oci_archive, write_oci_index_archive};
