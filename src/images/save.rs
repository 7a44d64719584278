//! `rbuild save`: images and their tags into one docker-archive, the way
//! `docker save` picks them:
//!
//! * `app:v1` saves the image with that tag;
//! * `app` (a repository without a tag) saves every tag of `app`;
//! * an ID or ID prefix saves the image without tags.
//!
//! The archive goes to stdout (never to a terminal) or, with `-o`, to a
//! temp file beside the destination renamed into place once complete, so a
//! failure never leaves a partial file there. `-o x.tar.gz`/`.tgz` or
//! `--compress gzip` gzips on every core; `.tar.zst` or `--compress zstd`
//! uses zstd.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;

use rbuild_archive::{ExportImage, ExportOptions};
use rbuild_cache::Store;
use rbuild_oci::compress::parallel_gzip::{self, ParallelGzWriter};
use rbuild_oci::reference::Reference;

use super::lookup::{familiar, platform_images, resolve_for_platform};
use super::progress::{ByteProgress, ProgressWriter};
use crate::cli::{Compress, SaveArgs};
use crate::output::file::write_output;
use crate::report::Failure;

/// zstd level: its default, fast and well ahead of gzip's ratio.
pub(super) const ZSTD_LEVEL: i32 = 3;

pub fn save(store: &Store, args: SaveArgs) -> Result<(), Failure> {
    let images = select_images(store, &args.images, args.platform.as_deref())?;
    let compression = args.compress.or_else(|| args.output.as_deref().and_then(compression_for_name));
    let expected = expected_size(store, &images);
    match &args.output {
        Some(dest) => write_output(dest, |out| write_archive(store, &images, compression, expected, out)),
        None => {
            if io::stdout().is_terminal() {
                return Err(Failure::new("cowardly refusing to save to a terminal")
                    .hint("use -o FILE, or redirect: rbuild save IMAGE > image.tar"));
            }
            let stdout = io::stdout().lock();
            let mut out = BufWriter::with_capacity(1 << 20, stdout);
            write_archive(store, &images, compression, expected, &mut out)?;
            out.flush().map_err(|e| Failure::new(format!("writing to stdout: {e}")))
        }
    }
}

/// The images and tags the arguments name, in order, each image once.
fn select_images(
    store: &Store,
    queries: &[String],
    platform: Option<&str>,
) -> Result<Vec<ExportImage>, Failure> {
    let refs = store.refs()?.refs;
    let mut images: Vec<ExportImage> = Vec::new();
    let mut add = |id, tags: Vec<String>| match images.iter_mut().find(|i| i.id == id) {
        Some(existing) => {
            for tag in tags {
                if !existing.tags.contains(&tag) {
                    existing.tags.push(tag);
                }
            }
        }
        None => images.push(ExportImage { id, tags }),
    };
    for query in queries {
        let bare = Reference::parse_without_default_tag(query).ok();
        // A repository without a tag means all of its tags.
        if let Some(repository) = bare.as_ref().filter(|r| r.tag.is_none() && r.digest.is_none()) {
            let prefix = format!("{}:", repository.name());
            let tagged: Vec<(&String, _)> = refs.iter().filter(|(t, _)| t.starts_with(&prefix)).collect();
            if !tagged.is_empty() {
                for (tag, id) in tagged {
                    add(*id, vec![familiar(tag)]);
                }
                continue;
            }
        }
        let id = resolve_for_platform(store, query, platform)?;
        let multi = !platform_images(store, query)?.is_empty();
        let by_tag = Reference::parse(query)
            .ok()
            .filter(|r| r.digest.is_none() && (multi || refs.get(&r.canonical()) == Some(&id)))
            .map(|r| r.familiar());
        add(id, by_tag.into_iter().collect());
    }
    Ok(images)
}

/// The compression a destination's name asks for.
pub(super) fn compression_for_name(path: &Path) -> Option<Compress> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz") || name.ends_with(".tgz") {
        Some(Compress::Gzip)
    } else if name.ends_with(".zst") || name.ends_with(".tzst") || name.ends_with(".zstd") {
        Some(Compress::Zstd)
    } else {
        None
    }
}

/// Roughly the archive's size (its layers), for the progress bar.
fn expected_size(store: &Store, images: &[ExportImage]) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for image in images {
        let (_, config) = store.image_config(&image.id).ok()?;
        for diff_id in config.rootfs.diff_ids {
            if seen.insert(diff_id) {
                total += store.layer(&diff_id).ok()??.meta.size;
            }
        }
    }
    Some(total)
}

fn write_archive(
    store: &Store,
    images: &[ExportImage],
    compression: Option<Compress>,
    expected: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let progress = ByteProgress::new("saving", expected);
    let opts = ExportOptions::default();
    let failed = |e: rbuild_archive::ArchiveError| Failure::caused_by(&e);
    let io_failed = |e: io::Error| Failure::new(format!("writing the archive: {e}"));
    let result = match compression {
        None => rbuild_archive::write_docker_archive(
            store,
            images,
            ProgressWriter { inner: out, progress: &progress },
            &opts,
        )
        .map_err(failed),
        Some(Compress::Gzip) => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut gz = ParallelGzWriter::new(out, parallel_gzip::DEFAULT_LEVEL, threads);
            rbuild_archive::write_docker_archive(
                store,
                images,
                ProgressWriter { inner: &mut gz, progress: &progress },
                &opts,
            )
            .map_err(failed)
            .and_then(|()| gz.finish().map(|_| ()).map_err(io_failed))
        }
        Some(Compress::Zstd) => {
            zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(io_failed).and_then(|mut encoder| {
                rbuild_archive::write_docker_archive(
                    store,
                    images,
                    ProgressWriter { inner: &mut encoder, progress: &progress },
                    &opts,
                )
                .map_err(failed)?;
                encoder.finish().map(|_| ()).map_err(io_failed)
            })
        }
    };
    progress.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_follows_the_file_name() {
        assert_eq!(compression_for_name(Path::new("a.tar.gz")), Some(Compress::Gzip));
        assert_eq!(compression_for_name(Path::new("dir/a.TGZ")), Some(Compress::Gzip));
        assert_eq!(compression_for_name(Path::new("a.tar.zst")), Some(Compress::Zstd));
        assert_eq!(compression_for_name(Path::new("a.tar")), None);
    }
}
