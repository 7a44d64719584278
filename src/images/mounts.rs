//! `rbuild cache-mounts ls|export|import|rm|prune`: the store's `RUN
//! --mount=type=cache` directories as files any CI cache can save and
//! restore by path (GitHub Actions and GitLab cache directories, a volume).
//!
//! `export` writes a mount's content as a deterministic tar (the layer tar
//! rules; compressed when the name ends in `.gz`/`.tgz` or `.zst`), `import`
//! makes a tar (plain, gzip or zstd) the mount's content all at once, and
//! neither touches a mount a running step uses.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rbuild_cache::Store;
use rbuild_cache::mounts::{self, MountEntry, MountError, MountMeta};
use rbuild_oci::compress::parallel_gzip::{self, ParallelGzWriter};
use rbuild_oci::timefmt::Timestamp;

use super::prune::confirm;
use super::save::{ZSTD_LEVEL, compression_for_name};
use super::table::align;
use super::units::{human_size, parse_ram_size, time_ago};
use crate::cli::{CacheMountsCommand, Compress, MountsExportArgs, MountsImportArgs, MountsPruneArgs};
use crate::report::Failure;

pub fn cache_mounts(store: &Store, what: CacheMountsCommand) -> Result<(), Failure> {
    match what {
        CacheMountsCommand::Ls => list(store),
        CacheMountsCommand::Export(args) => export(store, &args),
        CacheMountsCommand::Import(args) => import(store, &args),
        CacheMountsCommand::Rm { ids } => remove(store, &ids),
        CacheMountsCommand::Prune(args) => prune(store, &args),
    }
}

fn list(store: &Store) -> Result<(), Failure> {
    let mut table = String::from("CACHE ID\tSIZE\tLAST USED\tUSED BY\n");
    for mount in mounts::list(store)? {
        let used_by =
            mount.meta.as_ref().map(|m| m.used_by.iter().rev().cloned().collect::<Vec<_>>().join(", "));
        table.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            mount.name(),
            human_size(mount.size),
            time_ago(Timestamp::from_secs(mount.last_used())),
            used_by.unwrap_or_else(|| "(made before rbuild kept ids)".into()),
        ));
    }
    print!("{}", align(&table));
    Ok(())
}

fn find(store: &Store, id: &str) -> Result<MountEntry, Failure> {
    mounts::find(store, id)?.ok_or_else(|| {
        Failure::new(format!("no cache mount with id {id:?}")).hint("`rbuild cache-mounts ls` lists them")
    })
}

fn export(store: &Store, args: &MountsExportArgs) -> Result<(), Failure> {
    let mount = find(store, &args.id)?;
    // Held shared: a `sharing=locked` step does not write meanwhile.
    let lock = mounts::open_lock(&mount.dir)?;
    lock.lock_shared().map_err(|e| Failure::new(format!("lock cache mount {}: {e}", args.id)))?;
    write_through_temp(&args.output, |out| {
        match compression_for_name(&args.output) {
            None => {
                mounts::write_tar(store, &mount.dir, out)?;
            }
            Some(Compress::Gzip) => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let mut gz = ParallelGzWriter::new(out, parallel_gzip::DEFAULT_LEVEL, threads);
                mounts::write_tar(store, &mount.dir, &mut gz)?;
                gz.finish()?;
            }
            Some(Compress::Zstd) => {
                let mut zst = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                mounts::write_tar(store, &mount.dir, &mut zst)?;
                zst.finish()?;
            }
        }
        Ok(())
    })
}

fn import(store: &Store, args: &MountsImportArgs) -> Result<(), Failure> {
    let mut file =
        File::open(&args.file).map_err(|e| Failure::new(format!("open {}: {e}", args.file.display())))?;
    let now = Timestamp::now().secs;
    // Keep the owner and mode of a mount being replaced; a new one is
    // root's, 0755, as BuildKit makes them.
    let known = mounts::read_meta(store, &args.id)?;
    let (uid, gid, mode) = known.as_ref().map_or((0, 0, 0o755), |m| (m.uid, m.gid, m.mode));
    let meta = MountMeta {
        id: args.id.clone(),
        uid,
        gid,
        mode,
        written: now,
        last_used: now,
        used_by: Vec::new(),
        exported: None,
    };
    mounts::install(store, meta, &mut file).map_err(|e| mount_failure(e, &args.file))
}

fn mount_failure(e: MountError, file: &Path) -> Failure {
    match e {
        MountError::InUse(id) => Failure::new(format!("cache mount {id} is in use by a running build"))
            .hint("wait for the build to finish, then try again"),
        MountError::BadTar { id, message } => {
            Failure::new(format!("{}: not a usable tar for cache mount {id}: {message}", file.display()))
                .hint("the cache mount was left as it was")
        }
        MountError::Store(e) => e.into(),
    }
}

fn remove(store: &Store, ids: &[String]) -> Result<(), Failure> {
    let mut failed = None;
    for id in ids {
        match find(store, id).and_then(|m| mounts::remove(&m).map_err(|e| mount_failure(e, Path::new(id)))) {
            Ok(()) => println!("{id}"),
            Err(e) => {
                eprintln!("error: {}", e.message);
                failed = Some(e);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

fn prune(store: &Store, args: &MountsPruneArgs) -> Result<(), Failure> {
    let keep = args
        .keep_storage
        .as_deref()
        .map(parse_ram_size)
        .transpose()
        .map_err(|e| Failure::new(e).hint("--keep-storage takes a size like 512MB or 2GB"))?
        .unwrap_or(0);
    if !args.force && !confirm("WARNING! This will remove cache mounts (the least recently used first).") {
        return Ok(());
    }
    let all = mounts::list(store)?;
    let mut total: u64 = all.iter().map(|m| m.size).sum();
    let mut reclaimed = 0;
    // Least recently used first.
    for mount in all.iter().rev() {
        if total <= keep {
            break;
        }
        match mounts::remove(mount) {
            Ok(()) => {
                println!("{}", mount.name());
                total -= mount.size;
                reclaimed += mount.size;
            }
            Err(MountError::InUse(id)) => eprintln!("skipped {id}: in use by a running build"),
            Err(e) => return Err(mount_failure(e, &mount.dir)),
        }
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(())
}

/// Writes `path` through a temp file beside it, so a failed export leaves
/// nothing half-written.
fn write_through_temp(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure::new(format!("write {}: {e}", path.display()));
    let tmp = path.with_file_name(format!(
        ".{}.part-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut out = BufWriter::new(File::create(&tmp)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&e));
    }
    Ok(())
}
