//! `rbuild tag`, and the last-tag time it notes for `inspect`.

use rbuild_cache::Store;
use rbuild_oci::digest::Digest;
use rbuild_oci::timefmt::Timestamp;

use super::lookup::{parse_reference, resolve_image};
use crate::cli::TagArgs;
use crate::report::Failure;

/// Where `rbuild tag` notes when an image was last tagged (`inspect`'s
/// `Metadata.LastTagTime`).
fn last_tag_time_path(store: &Store, id: &Digest) -> std::path::PathBuf {
    store.state_path(&format!("last-tag-time/{}", id.hex()))
}

pub fn last_tag_time(store: &Store, id: &Digest) -> Option<Timestamp> {
    let text = std::fs::read_to_string(last_tag_time_path(store, id)).ok()?;
    Timestamp::parse_rfc3339(text.trim())
}

/// `rbuild tag SOURCE TARGET`: points TARGET at SOURCE's image. A tag that
/// pointed elsewhere moves; the image it leaves may become `<none>`.
pub fn tag(store: &Store, args: TagArgs) -> Result<(), Failure> {
    let id = resolve_image(store, &args.source)?;
    let target = parse_reference(&args.target)?;
    if target.digest.is_some() {
        return Err(Failure::new(format!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        ))
        .hint("a tag is name:tag; digests come from registries"));
    }
    store.tag(&target.canonical(), &id)?;
    let path = last_tag_time_path(store, &id);
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Only `inspect` reads this; a failure to note it fails nothing.
        let _ = rbuild_cache::store::write_file(&path, Timestamp::now().to_rfc3339().as_bytes());
    }
    Ok(())
}
