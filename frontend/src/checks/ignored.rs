//! CopyIgnoredFile: a COPY or ADD from the build context naming a path the
//! `.dockerignore` leaves out. The ignore file reaches the frontend through
//! [`IgnoreRules`], so the frontend reads no files itself.

use super::entries::Entry;
use super::{Reporter, rules};
use crate::mounts::clean;

/// What the check asks of a `.dockerignore`.
pub trait IgnoreRules {
    /// Whether some pattern is an exception (`!path`). Then the check stays
    /// silent, as BuildKit's does: an excluded directory with an included
    /// file inside cannot be judged from the path alone.
    fn has_exceptions(&self) -> bool;
    /// Whether a pattern excludes every entry at the context root (`*`,
    /// `**`, `**/*`), which makes `COPY . …` copy nothing.
    fn excludes_root_entries(&self) -> bool;
    /// Whether the clean context path (`a/b`, or `.`) or a directory above
    /// it is excluded.
    fn excludes(&self, path: &str) -> bool;
}

/// `sources` are the instruction's context sources after expansion.
pub(super) fn check(
    entry: &Entry<'_>,
    sources: &[String],
    ignore: &dyn IgnoreRules,
    reporter: &mut Reporter,
) {
    if ignore.has_exceptions() {
        return;
    }
    let verb = if entry.instr.keyword == "ADD" { "Add" } else { "Copy" };
    for source in sources {
        let path = clean_source(source);
        let root = path == "." || path == "/";
        if (root && !ignore.excludes_root_entries()) || (!root && !ignore.excludes(&path)) {
            continue;
        }
        reporter.report(
            &entry.config,
            &rules::COPY_IGNORED_FILE,
            entry.instr.span,
            format!("Attempting to {verb} file {path:?} that is excluded by .dockerignore"),
        );
    }
}

/// Go's `filepath.Clean` for the slash paths a COPY names: `./a//b/` is
/// `a/b`, `./` is `.`, an absolute path stays absolute.
fn clean_source(source: &str) -> String {
    let cleaned = clean(source);
    if source.starts_with('/') {
        return cleaned;
    }
    match cleaned.trim_start_matches('/') {
        "" => ".".to_string(),
        relative => relative.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::clean_source;

    #[test]
    fn sources_are_cleaned_as_go_does() {
        assert_eq!(clean_source("./Dockerfile"), "Dockerfile");
        assert_eq!(clean_source("a//b/"), "a/b");
        assert_eq!(clean_source("./"), ".");
        assert_eq!(clean_source("/"), "/");
        assert_eq!(clean_source("/x/./y"), "/x/y");
    }
}
