//! The vocabulary every other rbuild crate shares: content digests, image
//! references, the image config and history JSON, time stamps in the formats
//! images and Docker's output use, recognising compressed streams by their
//! first bytes, platforms (`linux/arm64`) and their normal names, the parallel gzip writer, sizes as Docker's flags write
//! them, and the one io error type
//! ([`io_error::IoError`]) the others report failed filesystem operations
//! with. No I/O beyond the readers and writers it is handed.

pub mod compress;
pub mod config;
pub mod digest;
pub mod hash_behind;
pub mod io_error;
pub mod parallel;
pub mod platform;
pub mod reference;
pub mod size;
pub mod timefmt;

pub use digest::Digest;
