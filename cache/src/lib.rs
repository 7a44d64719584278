//! The content-addressed store behind rbuild: blobs by sha256, layers (tar
//! diff, diffID, unpacked snapshot dir), image configs and refs, and the
//! build cache index. It knows nothing of Dockerfiles.

pub mod digest;
pub mod layer;
pub mod reference;
