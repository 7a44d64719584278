//! `--build-context NAME=VALUE`: extra contexts a Dockerfile reads by name
//! in `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME`, as
//! BuildKit's. VALUE is `docker-image://REF` (an image, pulled like any
//! base), `target:STAGE` (another stage), `oci-layout://PATH[:TAG|@DIGEST]`
//! (an image from an OCI layout directory) or a directory. A layout or a
//! directory goes into the store as an image first, so lowering and the
//! solver see nothing but images and stages; a directory's files come in as
//! a build context's do (owned by root, its own `.dockerignore` applied,
//! as BuildKit applies a named context's), and the same files give the same
//! image, so the build cache keeps working across builds. A layout's
//! images are not tagged: the store's tags stay as they were.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rbuild_archive::{ImportOptions, LoadInput};
use rbuild_builder::dockerignore::DockerIgnore;
use rbuild_cache::Store;
use rbuild_frontend::lower::NamedContext;
use rbuild_oci::timefmt::Timestamp;

use crate::report::{Failure, archive_failure};

const EXAMPLE: &str = "e.g. --build-context deps=./vendor, --build-context base=docker-image://alpine:3.20, \
     --build-context app=oci-layout://./layout:v1 or --build-context alias=target:build";

/// One `--build-context` as given, checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSpec {
    /// Lower case: names match stages and `--from` values without case.
    pub name: String,
    pub value: ContextValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Image(String),
    Stage(String),
    OciLayout { dir: PathBuf, selector: Option<String> },
    Dir(PathBuf),
}

/// Parses every `--build-context`; a malformed one names the flag, the
/// expected form and an example.
pub fn parse(values: &[String]) -> Result<Vec<ContextSpec>, Failure> {
    values.iter().map(|v| parse_one(v)).collect()
}

fn parse_one(given: &str) -> Result<ContextSpec, Failure> {
    let bad = |why: &str| {
        Failure::new(format!("invalid --build-context {given:?}: {why}"))
            .hint(format!("write NAME=DIR, NAME=docker-image://REF, NAME=oci-layout://PATH[:TAG] or NAME=target:STAGE, {EXAMPLE}"))
    };
    let Some((name, value)) = given.split_once('=') else { return Err(bad("expected NAME=VALUE")) };
    let name = name.trim();
    let valid_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if !valid_name {
        return Err(bad("the name must be a stage or image name"));
    }
    if value.is_empty() {
        return Err(bad("the value is empty"));
    }
    let value = if let Some(reference) = value.strip_prefix("docker-image://") {
        rbuild_oci::reference::Reference::parse(reference)
            .map_err(|e| bad(&format!("{reference:?} is no image reference: {e}")))?;
        ContextValue::Image(reference.to_string())
    } else if let Some(stage) = value.strip_prefix("target:") {
        if stage.is_empty() {
            return Err(bad("target: needs a stage name"));
        }
        ContextValue::Stage(stage.to_string())
    } else if let Some(layout) = value.strip_prefix("oci-layout://") {
        let (dir, selector) = split_layout(layout);
        if !dir.join("index.json").is_file() {
            return Err(bad(&format!("{} is no OCI layout (it has no index.json)", dir.display())));
        }
        ContextValue::OciLayout { dir, selector }
    } else if let Some((scheme, _)) = value.split_once("://") {
        return Err(bad(&format!("{scheme}:// contexts are not supported")));
    } else {
        let dir = PathBuf::from(value);
        if !dir.is_dir() {
            return Err(bad(&format!("{value} is not a directory")));
        }
        ContextValue::Dir(dir)
    };
    Ok(ContextSpec { name: name.to_ascii_lowercase(), value })
}

/// `PATH`, `PATH:TAG` or `PATH@sha256:…`: the selector is the part after
/// the last `:` or `@` when it is not a path.
fn split_layout(layout: &str) -> (PathBuf, Option<String>) {
    if let Some((dir, digest)) = layout.rsplit_once('@') {
        return (PathBuf::from(dir), Some(digest.to_string()));
    }
    match layout.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !tag.is_empty() => {
            (PathBuf::from(dir), Some(tag.to_string()))
        }
        _ => (PathBuf::from(layout), None),
    }
}

/// Puts layouts and directories into the store and returns what lowering
/// needs.
pub fn prepare(store: &Store, specs: &[ContextSpec]) -> Result<BTreeMap<String, NamedContext>, Failure> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let context = match &spec.value {
            ContextValue::Image(reference) => NamedContext::Image(reference.clone()),
            ContextValue::Stage(stage) => NamedContext::Stage(stage.clone()),
            ContextValue::OciLayout { dir, selector } => {
                NamedContext::Image(layout_image(store, &spec.name, dir, selector.as_deref())?)
            }
            ContextValue::Dir(dir) => NamedContext::Image(directory_image(store, &spec.name, dir)?),
        };
        out.insert(spec.name.clone(), context);
    }
    Ok(out)
}

/// The image ID of the layout's image that `selector` names (a ref name
/// or a manifest digest; nothing when the layout holds one image), after
/// loading the layout into the store.
fn layout_image(store: &Store, name: &str, dir: &Path, selector: Option<&str>) -> Result<String, Failure> {
    let failure = |why: String| Failure::new(format!("--build-context {name}: {why}"));
    let index = read_json(&dir.join("index.json")).map_err(&failure)?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = match selector {
        Some(s) if s.starts_with("sha256:") => entries.iter().find(|e| e["digest"] == s),
        Some(tag) => entries.iter().find(|e| {
            let ref_name = e["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or_default();
            ref_name == tag || ref_name.ends_with(&format!(":{tag}"))
        }),
        None if entries.len() == 1 => entries.first(),
        None => {
            return Err(failure(format!("the OCI layout {} holds {} images", dir.display(), entries.len()))
                .hint("name one: oci-layout://PATH:TAG or oci-layout://PATH@sha256:…"));
        }
    };
    let chosen = chosen.ok_or_else(|| {
        failure(format!("the OCI layout {} has no image {}", dir.display(), selector.unwrap_or_default()))
    })?;
    let manifest = host_manifest(dir, chosen).map_err(&failure)?;
    let config = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| failure("its manifest names no config".into()))?;
    let tags_before = store.refs()?.refs;
    let loaded = rbuild_archive::load(store, LoadInput::Dir(dir.to_path_buf())).map_err(archive_failure)?;
    // A layout's ref names would tag images in the store, possibly moving
    // the user's own tags: a build context is read, not loaded, so every
    // tag goes back to what it was.
    store.update_refs(|map| {
        for image in &loaded {
            for tag in &image.tags {
                match tags_before.get(tag) {
                    Some(previous) => map.refs.insert(tag.clone(), *previous),
                    None => map.refs.remove(tag),
                };
            }
        }
    })?;
    Ok(config.to_string())
}

/// The image manifest of an index entry: itself, or the host platform's
/// manifest of a multi-platform index.
fn host_manifest(dir: &Path, entry: &serde_json::Value) -> Result<serde_json::Value, String> {
    let blob = |digest: &str| read_json(&dir.join("blobs").join(digest.replacen(':', "/", 1)));
    let digest = entry["digest"].as_str().ok_or("an index entry has no digest")?;
    let document = blob(digest)?;
    let Some(children) = document["manifests"].as_array() else { return Ok(document) };
    let arch = rbuild_frontend::lower::Platform::host().architecture;
    let child = children
        .iter()
        .find(|c| c["platform"]["os"] == "linux" && c["platform"]["architecture"] == arch.as_str())
        .ok_or_else(|| format!("the image has no linux/{arch} manifest"))?;
    blob(child["digest"].as_str().ok_or("a manifest entry has no digest")?)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// The directory as a one-layer image: files owned by root, its
/// `.dockerignore` applied, times kept; the image's own time is fixed, so
/// the same files give the same image ID.
fn directory_image(store: &Store, name: &str, dir: &Path) -> Result<String, Failure> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|e| {
            Failure::new(format!("--build-context {name}: {}/.dockerignore: {e}", dir.display()))
        })?,
        Err(_) => DockerIgnore::empty(),
    };
    let (reader, mut writer) =
        std::io::pipe().map_err(|e| Failure::new(format!("cannot make a pipe: {e}")))?;
    let root = dir.to_path_buf();
    let packer = std::thread::spawn(move || -> std::io::Result<()> {
        pack(&root, &ignore, &mut writer)?;
        writer.flush()
    });
    let opts = ImportOptions {
        message: Some(format!("build context {name}")),
        created: Timestamp::from_secs(0),
        ..ImportOptions::default()
    };
    let mut reader = reader;
    let imported = rbuild_archive::import_rootfs(store, &mut reader, &opts);
    drop(reader);
    let packed = packer.join().unwrap_or_else(|_| Err(std::io::Error::other("the packing thread panicked")));
    packed
        .map_err(|e| Failure::new(format!("--build-context {name}: cannot read {}: {e}", dir.display())))?;
    Ok(imported.map_err(archive_failure)?.to_string())
}

/// Writes `root`'s entries that `ignore` keeps as a tar, in sorted order.
fn pack(root: &Path, ignore: &DockerIgnore, out: &mut dyn Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut walk = walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry.path().strip_prefix(root).map_err(std::io::Error::other)?;
        let rel_text = rel.to_string_lossy();
        if ignore.is_excluded(&rel_text) {
            if entry.file_type().is_dir() && ignore.can_skip_dir(&rel_text) {
                walk.skip_current_dir();
            }
            continue;
        }
        let meta = entry.path().symlink_metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        if meta.is_file() {
            tar.append_data(&mut header, rel, std::fs::File::open(entry.path())?)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            tar.append_link(&mut header, rel, target)?;
        } else if meta.is_dir() {
            header.set_size(0);
            tar.append_data(&mut header, rel, std::io::empty())?;
        }
    }
    tar.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses_and_bad_ones_say_what_was_expected() {
        let one = |v: &str| parse_one(v).map(|s| (s.name, s.value));
        assert_eq!(
            one("Base=docker-image://alpine:3.20").unwrap(),
            ("base".into(), ContextValue::Image("alpine:3.20".into()))
        );
        assert_eq!(one("alias=target:build").unwrap(), ("alias".into(), ContextValue::Stage("build".into())));
        assert_eq!(one("here=.").unwrap(), ("here".into(), ContextValue::Dir(PathBuf::from("."))));
        for (bad, why) in [
            ("nothing", "expected NAME=VALUE"),
            ("=.", "the name must be"),
            ("x=", "the value is empty"),
            ("x=/no/such/dir", "is not a directory"),
            ("x=https://example.com/ctx.tar", "https:// contexts are not supported"),
            ("x=target:", "target: needs a stage name"),
            ("x=docker-image://Not Valid", "is no image reference"),
            ("x=oci-layout:///no/such", "is no OCI layout"),
        ] {
            let e = parse_one(bad).unwrap_err();
            assert!(e.message.starts_with(&format!("invalid --build-context {bad:?}: ")), "{}", e.message);
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert!(e.hint.as_deref().is_some_and(|h| h.contains("e.g. --build-context deps=./vendor")));
        }
    }

    #[test]
    fn layout_values_split_off_a_tag_or_digest() {
        assert_eq!(split_layout("/l:v1"), (PathBuf::from("/l"), Some("v1".into())));
        assert_eq!(split_layout("/l@sha256:ab"), (PathBuf::from("/l"), Some("sha256:ab".into())));
        assert_eq!(split_layout("./layout"), (PathBuf::from("./layout"), None));
    }
}
