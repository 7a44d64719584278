//! Runs a step graph against a store: context hashing, cache keys, the
//! solver, snapshots, the RUN isolation, COPY and ADD, and layer commits.
//!
//! The solver ([`solve`]) keys each step ([`keys`]), serves it from the
//! cache or executes it ([`execute`]: [`run_step`] for RUN, [`copy`] for
//! COPY and ADD) in a root a [`snapshot::Snapshotter`] prepares, isolated
//! by a [`sandbox::Isolation`], and commits its changes as a layer.

pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod download;
pub mod env;
pub mod error;
pub mod execute;
pub mod explain;
pub mod git;
pub mod in_flight;
pub mod keys;
pub mod meta;
pub mod options;
pub mod outcome;
pub mod pathmatch;
pub mod plan;
pub mod progress;
pub mod run_mounts;
pub mod run_settings;
pub mod run_step;
pub mod sandbox;
pub mod snapshot;
pub mod solve;
pub mod ssh_forward;
pub mod stage_paths;
pub mod users;

#[cfg(test)]
mod testkit;

pub use error::BuildError;

/// The PATH a RUN step gets when its image sets none.
pub const DEFAULT_PATH: &str = rbuild_frontend::lower::DEFAULT_PATH;
