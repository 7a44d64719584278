//! Throughput of export and load on a ~300 MB single-layer image. Ignored by
//! default (it writes about 1.5 GB); run with
//! `cargo test --release -p rbuild-cache --test archive_throughput -- --ignored --nocapture`.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use rbuild_archive::{ExportImage, ExportOptions, ImportOptions, LoadInput};
use support::*;

const FILES: usize = 3;
const FILE_SIZE: usize = 100 << 20;

/// A rootfs tar of FILES files of incompressible bytes.
fn write_big_rootfs(path: &std::path::Path) {
    let mut builder = tar::Builder::new(BufWriter::new(File::create(path).unwrap()));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = vec![0u8; FILE_SIZE];
    for n in 0..FILES {
        for chunk in data.chunks_mut(8) {
            // xorshift64: fast, and random enough that nothing compresses.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(FILE_SIZE as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("data/file{n}.bin"), &data[..]).unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
}

fn mb_per_s(bytes: u64, start: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "writes ~1.5 GB; run by hand to measure"]
fn export_and_load_throughput_of_a_300_mb_image() {
    let (dir, store) = fresh_store();
    let rootfs = dir.path().join("rootfs.tar");
    write_big_rootfs(&rootfs);
    let id =
        rbuild_archive::import_rootfs(&store, &mut File::open(&rootfs).unwrap(), &ImportOptions::default())
            .unwrap();
    std::fs::remove_file(&rootfs).unwrap();
    let images = [ExportImage { id, tags: vec!["big:v1".into()] }];

    let docker_path = dir.path().join("docker.tar");
    let start = Instant::now();
    let mut out = File::create(&docker_path).unwrap();
    rbuild_archive::write_docker_archive(&store, &images, &mut out, &ExportOptions::default()).unwrap();
    out.sync_all().unwrap();
    let size = out.metadata().unwrap().len();
    eprintln!("docker-archive export: {size} bytes, {:.0} MB/s (with fsync)", mb_per_s(size, start));

    let start = Instant::now();
    let mut out = File::create(dir.path().join("oci.tar")).unwrap();
    rbuild_archive::write_oci_archive(&store, &images, &mut out, &ExportOptions::default()).unwrap();
    out.sync_all().unwrap();
    eprintln!("OCI archive export: {:.0} MB/s (with fsync)", mb_per_s(size, start));

    let start = Instant::now();
    let file = File::create(dir.path().join("docker-dyn.tar")).unwrap();
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let dyn_out: &mut dyn Write = &mut buffered;
    rbuild_archive::write_docker_archive(&store, &images, dyn_out, &ExportOptions::default()).unwrap();
    buffered.into_inner().unwrap().sync_all().unwrap();
    eprintln!(
        "docker-archive export through &mut dyn Write (no kernel copy): {:.0} MB/s",
        mb_per_s(size, start)
    );

    let (_d2, fresh) = fresh_store();
    let start = Instant::now();
    let loaded =
        rbuild_archive::load(&fresh, LoadInput::Reader(Box::new(File::open(&docker_path).unwrap()))).unwrap();
    eprintln!(
        "load into an empty store: {:.0} MB/s (includes unpacking the snapshot)",
        mb_per_s(size, start)
    );
    assert_eq!(loaded[0].id, id);

    let start = Instant::now();
    rbuild_archive::load(&fresh, LoadInput::Reader(Box::new(File::open(&docker_path).unwrap()))).unwrap();
    eprintln!("load again (layer already stored): {:.0} MB/s", mb_per_s(size, start));
}
