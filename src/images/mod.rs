//! The image workflow commands: images, tag, rmi, inspect, history, save,
//! image prune, builder prune, system df and system check. Each behaves as
//! its `docker` namesake does, on rbuild's store.
//!
//! One module a command: `list` (images), `tag`, `rmi`, `inspect`,
//! `history`, `save`, `prune` (image and builder prune), `df`, `check`.
//! What several share: `lookup` (finding an image by name or ID),
//! `filters` (`--filter`), and the output pieces `table` (docker's column
//! alignment), `template` (Go templates), `format` (`--format` of the
//! listings), `units` (sizes and times) and
//! `progress` (byte counters on a terminal).

mod check;
mod df;
mod filters;
mod format;
mod history;
mod inspect;
mod list;
mod lookup;
pub mod progress;
mod prune;
mod rmi;
mod save;
mod table;
mod tag;
mod template;
pub(crate) mod units;

pub use check::system_check;
pub use df::system_df;
pub use history::history;
pub use inspect::inspect;
pub use list::list;
pub use prune::{builder_prune, prune};
pub use rmi::rmi;
pub use save::save;
pub use tag::tag;
