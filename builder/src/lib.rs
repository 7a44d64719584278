//! Runs a step graph against a store: context hashing, snapshots, the RUN
//! sandbox, layer commits and exporters.

pub mod dockerignore;
