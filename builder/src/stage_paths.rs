//! What a path in a stage's result holds, as one digest: the key input of a
//! `RUN --mount=from=<stage>,source=<path>`, so the step is reused while
//! that path's content stays the same, whatever else the stage changed (as
//! BuildKit keys such mounts). The digest is memoized in the store under
//! the stage's key, which fixes the content: a rebuild reads the files
//! only when the stage itself produced something new.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use rbuild_oci::digest::{Digest, Hasher, HashingWriter};

use crate::env::ExecEnv;
use crate::error::BuildError;
use crate::snapshot::view_of;

/// The digest of everything at and below `source` in stage `index`'s
/// result: each entry's path below `source`, type, permission bits,
/// owner, and content digest or link target. `None` when the path does not
/// exist (the step then fails when it runs, naming it).
pub fn stage_path_digest(
    env: &ExecEnv<'_>,
    index: usize,
    source: &str,
) -> Result<Option<Digest>, BuildError> {
    let stage = env.stages.wait_for(index)?;
    let memo_name = Digest::of(format!("{}\0{source}", stage.key).as_bytes()).hex();
    let memo = env.store.state_path(&format!("stage-paths/{memo_name}"));
    if let Some(d) = fs::read_to_string(&memo).ok().and_then(|t| t.trim().parse().ok()) {
        return Ok(Some(d));
    }
    let view = view_of(env.store, &stage.layers)?;
    let root = if source.is_empty() { "/" } else { source };
    if view.lookup(root, true)?.is_none() {
        return Ok(None);
    }
    let mut h = Hasher::new();
    let mut failed = None;
    view.walk(root, |f| {
        let m = &f.metadata;
        let content = if m.is_file() {
            match hash_file(&f.real_path) {
                Ok(d) => d.to_string(),
                Err(e) => {
                    failed.get_or_insert(e);
                    String::new()
                }
            }
        } else if m.file_type().is_symlink() {
            fs::read_link(&f.real_path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            String::new()
        };
        let entry = format!("{}\0{:o}\0{}:{}\0{content}\n", f.merged_path, m.mode(), m.uid(), m.gid());
        h.update(entry.as_bytes());
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let digest = h.finish();
    // Best effort: without the memo the next build hashes again.
    if let Some(parent) = memo.parent()
        && fs::create_dir_all(parent).is_ok()
    {
        let tmp = memo.with_extension(format!("tmp-{}", std::process::id()));
        if fs::write(&tmp, digest.to_string()).is_ok() {
            let _ = fs::rename(&tmp, &memo);
        }
    }
    Ok(Some(digest))
}

fn hash_file(path: &std::path::Path) -> io::Result<Digest> {
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut fs::File::open(path)?, &mut w)?;
    Ok(w.finish().1)
}
