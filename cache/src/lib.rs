//! The content-addressed store behind rbuild: blobs by sha256, layers (tar
//! diff, diffID, unpacked snapshot dir), image configs and refs, the build
//! cache index, cache mounts, garbage collection, disk usage and the
//! consistency check.
//! It knows nothing of Dockerfiles, archives or registries.

pub mod check;
pub mod gc;
pub mod index;
pub mod mounts;
pub mod store;
pub mod usage;

pub use store::{Store, StoreError};
