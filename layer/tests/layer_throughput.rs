//! Throughput of writing and applying a 300 MB layer (60 files of 5 MB of
//! random bytes), next to a plain copy of the same bytes for scale. Not
//! run by default; use
//! `cargo test --release -p rbuild-cache --test layer_throughput -- --ignored --nocapture`.
//! With `RBUILD_BENCH_DROP_CACHES=1` (as root) a last round starts with an
//! empty page cache and includes `fsync`, so the disk is in the numbers.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rbuild_layer::{ApplyOptions, OverlayXattrs, WriteOptions, apply_layer_tar, write_layer_tar};

const FILES: usize = 60;
const FILE_SIZE: usize = 5_000_000;

/// Cheap pseudo-random bytes (xorshift), so generation does not dominate.
fn fill_random(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
    }
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn sync_all() {
    nix::unistd::sync();
}

/// Reads every file and appends it to one output file: what any layer
/// writer has to do at least.
fn plain_concatenation(tree: &Path, out: &Path) -> u64 {
    let mut output = File::create(out).unwrap();
    let mut total = 0;
    let mut names: Vec<_> = fs::read_dir(tree).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for name in names {
        total += io::copy(&mut File::open(name).unwrap(), &mut output).unwrap();
    }
    output.flush().unwrap();
    total
}

#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn write_and_apply_300_mb() {
    let temp = tempfile::tempdir().unwrap();
    let tree = temp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; FILE_SIZE];
    for i in 0..FILES {
        fill_random(&mut buf, &mut seed);
        fs::write(tree.join(format!("file-{i:02}")), &buf).unwrap();
    }
    sync_all();

    for round in 1..=3 {
        let concat = temp.path().join("concat");
        let started = Instant::now();
        let bytes = plain_concatenation(&tree, &concat);
        let concat_time = started.elapsed();
        fs::remove_file(&concat).unwrap();

        let started = Instant::now();
        let stats = write_layer_tar(&tree, io::sink(), &WriteOptions::default()).unwrap();
        let to_sink_time = started.elapsed();

        let tar_path = temp.path().join("layer.tar");
        let started = Instant::now();
        let stats_file =
            write_layer_tar(&tree, File::create(&tar_path).unwrap(), &WriteOptions::default()).unwrap();
        let write_time = started.elapsed();
        assert_eq!(stats, stats_file);
        sync_all();

        let dest = temp.path().join("applied");
        let opts = ApplyOptions::for_current_user(OverlayXattrs::Trusted);
        let started = Instant::now();
        let applied = apply_layer_tar(File::open(&tar_path).unwrap(), &dest, &opts).unwrap();
        let apply_time = started.elapsed();
        assert_eq!(applied.content_bytes, (FILES * FILE_SIZE) as u64);
        sync_all();

        println!(
            "round {round}: {:.0} MB of content, tar {:.1} MB | plain concatenation {:.0} MB/s | \
             write_layer_tar to a file {:.0} MB/s, to a sink {:.0} MB/s | apply_layer_tar from a file {:.0} MB/s",
            bytes as f64 / 1e6,
            stats.tar_bytes as f64 / 1e6,
            megabytes_per_second(bytes, concat_time),
            megabytes_per_second(stats.content_bytes, write_time),
            megabytes_per_second(stats.content_bytes, to_sink_time),
            megabytes_per_second(applied.content_bytes, apply_time),
        );
        fs::remove_dir_all(&dest).unwrap();
        fs::remove_file(&tar_path).unwrap();
    }

    if std::env::var_os("RBUILD_BENCH_DROP_CACHES").is_some() {
        cold_round(temp.path(), &tree);
    }
}

fn drop_caches() {
    sync_all();
    fs::write("/proc/sys/vm/drop_caches", b"3\n").unwrap();
}

/// Fsyncs every file below `dir` (what makes an applied layer durable).
fn fsync_tree(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        File::open(entry.unwrap().path()).unwrap().sync_all().unwrap();
    }
    File::open(dir).unwrap().sync_all().unwrap();
}

fn cold_round(temp: &Path, tree: &Path) {
    drop_caches();
    let concat = temp.join("concat");
    let started = Instant::now();
    let bytes = plain_concatenation(tree, &concat);
    File::open(&concat).unwrap().sync_all().unwrap();
    let concat_time = started.elapsed();
    fs::remove_file(&concat).unwrap();

    drop_caches();
    let tar_path = temp.join("layer.tar");
    let started = Instant::now();
    let file = File::create(&tar_path).unwrap();
    let stats = write_layer_tar(tree, &file, &WriteOptions::default()).unwrap();
    file.sync_all().unwrap();
    let write_time = started.elapsed();

    drop_caches();
    let dest = temp.join("applied");
    let opts = ApplyOptions::for_current_user(OverlayXattrs::Trusted);
    let started = Instant::now();
    let applied = apply_layer_tar(File::open(&tar_path).unwrap(), &dest, &opts).unwrap();
    fsync_tree(&dest);
    let apply_time = started.elapsed();

    println!(
        "cold, fsynced: plain concatenation {:.0} MB/s | write_layer_tar {:.0} MB/s | apply_layer_tar {:.0} MB/s",
        megabytes_per_second(bytes, concat_time),
        megabytes_per_second(stats.content_bytes, write_time),
        megabytes_per_second(applied.content_bytes, apply_time),
    );
}

/// Many small files: the per-entry cost rather than the copy speed.
#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn write_and_apply_20000_small_files() {
    let temp = tempfile::tempdir().unwrap();
    let tree = temp.path().join("tree");
    for dir in 0..200 {
        let dir_path = tree.join(format!("dir-{dir:03}"));
        fs::create_dir_all(&dir_path).unwrap();
        for file in 0..100 {
            fs::write(dir_path.join(format!("file-{file:03}")), [file as u8; 1024]).unwrap();
        }
    }
    let started = Instant::now();
    let mut tar = Vec::new();
    let written = write_layer_tar(&tree, &mut tar, &WriteOptions::default()).unwrap();
    let write_time = started.elapsed();
    let opts = ApplyOptions::for_current_user(OverlayXattrs::Trusted);
    let started = Instant::now();
    let applied = apply_layer_tar(&tar[..], &temp.path().join("applied"), &opts).unwrap();
    let apply_time = started.elapsed();
    assert_eq!(written.entries, applied.entries);
    println!(
        "{} entries: write_layer_tar {:.0} entries/s, apply_layer_tar {:.0} entries/s",
        written.entries,
        written.entries as f64 / write_time.as_secs_f64(),
        applied.entries as f64 / apply_time.as_secs_f64(),
    );
}
