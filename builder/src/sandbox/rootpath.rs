//! Resolving a path inside a root directory the way the kernel would after
//! a chroot: every symlink is followed relative to the root, and `..` never
//! climbs above it. Used before mounting into an image's filesystem, so a
//! hostile image (`/etc -> /`) cannot make us write on the host.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 40;

/// Returns the host path of `path` inside `root` with all symlinks resolved
/// within the root. Components that do not exist are appended as they are.
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = join(root, &resolved).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = fs::read_link(&candidate)?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(&target).into_iter().rev());
            }
            _ => resolved.push(part),
        }
    }
    Ok(join(root, &resolved))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("real/etc")).unwrap();
        symlink("/", root.join("escape")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        symlink("/real/etc", root.join("etc")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert_eq!(resolve_in_root(root, "/escape/etc/passwd").unwrap(), root.join("real/etc/passwd"));
        assert_eq!(resolve_in_root(root, "/up/x").unwrap(), root.join("x"));
        assert_eq!(resolve_in_root(root, "/etc/hosts").unwrap(), root.join("real/etc/hosts"));
        assert_eq!(resolve_in_root(root, "/../../x/../y").unwrap(), root.join("y"));
        assert!(resolve_in_root(root, "/loop1/x").is_err());
    }
}
