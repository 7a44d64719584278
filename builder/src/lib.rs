//! Runs a step graph against a store: context hashing, snapshots, the RUN
//! sandbox, layer commits and exporters.

pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod download;
pub mod error;
pub mod exec;
pub mod explain;
pub mod keys;
pub mod meta;
pub mod pathmatch;
pub mod plan;
pub mod progress;
pub mod run_mounts;
pub mod sandbox;
pub mod solve;
pub mod users;

pub use error::BuildError;

/// The PATH a RUN step gets when its image sets none.
pub const DEFAULT_PATH: &str = rbuild_frontend::lower::DEFAULT_PATH;
