//! The image workflow commands: images, tag, rmi, inspect, history, save,
//! image prune, builder prune, system df and system check.

use rbuild_cache::Store;

use crate::cli::{
    BuilderPruneArgs, DfArgs, HistoryArgs, ImagePruneArgs, ImagesArgs, InspectArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::report::Failure;

fn pending(what: &str) -> Result<(), Failure> {
    Err(Failure::new(format!("`rbuild {what}` is being written")))
}

pub fn list(_store: &Store, _args: ImagesArgs) -> Result<(), Failure> {
    pending("images")
}
pub fn tag(_store: &Store, _args: TagArgs) -> Result<(), Failure> {
    pending("tag")
}
pub fn rmi(_store: &Store, _args: RmiArgs) -> Result<(), Failure> {
    pending("rmi")
}
pub fn inspect(_store: &Store, _args: InspectArgs) -> Result<(), Failure> {
    pending("inspect")
}
pub fn history(_store: &Store, _args: HistoryArgs) -> Result<(), Failure> {
    pending("history")
}
pub fn save(_store: &Store, _args: SaveArgs) -> Result<(), Failure> {
    pending("save")
}
pub fn prune(_store: &Store, _args: ImagePruneArgs) -> Result<(), Failure> {
    pending("image prune")
}
pub fn builder_prune(_store: &Store, _args: BuilderPruneArgs) -> Result<(), Failure> {
    pending("builder prune")
}
pub fn system_df(_store: &Store, _args: DfArgs) -> Result<(), Failure> {
    pending("system df")
}
pub fn system_check(_store: &Store) -> Result<(), Failure> {
    pending("system check")
}
