//! Compression of test data: what an archive or layer looks like after
//! `gzip` or `zstd`, for tests that feed compressed input to rbuild.

use std::io::Write;

/// `data` gzip-compressed (fast level; the output is a valid gzip member).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// `data` zstd-compressed at level 3 (zstd's default).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd into memory")
}
