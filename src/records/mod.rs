//! Build records: every `rbuild build` leaves a small JSON record in the
//! store — its options, what it read from the context, when it started,
//! how long it took, and each step's key, fate (cached or ran, and why),
//! time, layer and bytes read — for `rbuild builds` to list, show and
//! compare, and for `--timings` reports.
//!
//! `model` (the record's fields), `store` (files under `state/builds/`,
//! IDs and `last~N`), `recorder` (filling one in during a build), `cells`
//! (the step table every view shares), `gantt` (the chart), `timings` (the
//! HTML report), `commands` (`rbuild builds …`).

mod cells;
mod commands;
mod gantt;
mod model;
mod recorder;
mod store;
mod timings;

pub use commands::run as builds_command;
pub use recorder::{Recorder, absolute, cache_saved_note};
pub use store::prune_with_cache;
