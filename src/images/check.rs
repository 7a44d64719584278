//! `rbuild system check`: prints every inconsistency the store check finds
//! and fails (exit 1) when there is any.

use rbuild_cache::Store;
use rbuild_cache::check::check_store;

use crate::report::Failure;

pub fn system_check(store: &Store) -> Result<(), Failure> {
    let report = check_store(store)?;
    for problem in &report.problems {
        println!("{problem}");
    }
    let summary = format!(
        "checked {} blobs, {} layers, {} images, {} tags, {} build cache entries",
        report.blobs, report.layers, report.images, report.tags, report.cache_entries
    );
    if report.problems.is_empty() {
        println!("{summary}: no problems found");
        return Ok(());
    }
    Err(Failure::new(format!("{summary}: {} problem(s) found", report.problems.len())).hint(
        "a damaged image can be removed with `rbuild rmi -f`, then `rbuild image prune -f` and \
         `rbuild builder prune -f` clear what it left; load or build it again afterwards",
    ))
}
