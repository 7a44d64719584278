//! Names inside an archive: turning an entry name (or a path a manifest
//! mentions) into one canonical `a/b/c` form, refusing absolute names and
//! `..`, and resolving the symlinks and hard links older `docker save`
//! output uses between layer directories without ever leaving the archive.

use rbuild_oci::digest::Digest;

/// Normalises `raw` to slash-separated components without `.` or empty
/// parts. The archive root itself comes back as `""`.
pub(crate) fn normalize_entry_name(raw: &str) -> Result<String, &'static str> {
    if raw.contains('\0') {
        return Err("contains a NUL byte");
    }
    if raw.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("\"..\" is not allowed"),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Where a link entry named `link` (already normalised) pointing at
/// `target` leads, relative to the archive root. A symlink's target is
/// relative to the link's directory; an absolute target is taken relative
/// to the archive root, as Docker resolves them "in scope". `None` when the
/// target climbs out of the archive.
pub(crate) fn resolve_symlink_target(link: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(link.split('/').filter(|p| !p.is_empty()));
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// The digest a `blobs/sha256/<hex>` name promises, if the name has that form.
pub(crate) fn digest_in_blob_name(name: &str) -> Option<Digest> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    Digest::parse(hex).ok()
}

/// The digest a legacy `<hex>.json` config name promises.
pub(crate) fn digest_in_config_name(name: &str) -> Option<Digest> {
    digest_in_blob_name(name).or_else(|| Digest::parse(name.strip_suffix(".json")?).ok())
}

/// The path of a blob inside an OCI layout.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(normalize_entry_name("./blobs//sha256/x").unwrap(), "blobs/sha256/x");
        assert_eq!(normalize_entry_name("./").unwrap(), "");
        assert_eq!(normalize_entry_name("dir/").unwrap(), "dir");
        assert!(normalize_entry_name("../evil").is_err());
        assert!(normalize_entry_name("a/../../evil").is_err());
        assert!(normalize_entry_name("/etc/passwd").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_archive_only() {
        assert_eq!(resolve_symlink_target("abc/layer.tar", "../def/layer.tar").unwrap(), "def/layer.tar");
        assert_eq!(resolve_symlink_target("abc/layer.tar", "/def/layer.tar").unwrap(), "def/layer.tar");
        assert_eq!(resolve_symlink_target("layer.tar", "x").unwrap(), "x");
        assert_eq!(resolve_symlink_target("abc/layer.tar", "../../etc/passwd"), None);
    }

    #[test]
    fn digests_are_read_from_blob_and_config_names() {
        let d = Digest::of(b"x");
        assert_eq!(digest_in_blob_name(&blob_path(&d)), Some(d));
        assert_eq!(digest_in_config_name(&format!("{}.json", d.hex())), Some(d));
        assert_eq!(digest_in_config_name("config.json"), None);
        assert_eq!(digest_in_blob_name("blobs/sha512/abc"), None);
    }
}
