//! The content-addressed store behind rbuild: blobs by sha256, layers (tar
//! diff, diffID, unpacked snapshot dir), image configs and refs, and the
//! build cache index. It knows nothing of Dockerfiles.

pub mod archive;
pub mod check;
pub mod compress;
pub mod config;
pub mod digest;
pub mod gc;
pub mod index;
pub mod layer;
pub mod reference;
pub mod registry;
pub mod store;
pub mod timefmt;
pub mod usage;

pub use digest::Digest;
pub use store::{Store, StoreError};
