//! ADD's rule for local archives: a tar, plain or gzip, bzip2, xz or zstd
//! compressed, recognised by its content (never its name) and extracted;
//! anything else is copied as a file.

use std::fs::File;
use std::io;
use std::path::Path;

use rbuild_oci::compress::{Compression, decompress_auto, read_head};

/// Opens `file` as a tar stream if it is a tar archive, plain or gzip,
/// bzip2, xz or zstd compressed, recognised by content as Docker does for
/// ADD. `Ok(None)`: not an archive (it is copied as a file).
pub fn open_archive(file: &Path) -> io::Result<Option<Box<dyn io::Read>>> {
    let open = || -> io::Result<Box<dyn io::Read>> {
        let f = io::BufReader::new(File::open(file)?);
        let head = read_head(&mut File::open(file)?)?;
        Ok(match Compression::sniff(&head) {
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
            _ => decompress_auto(f)?,
        })
    };
    let mut probe = match open() {
        Ok(r) => r,
        Err(_) => return Ok(None),
    };
    let mut block = [0u8; 512];
    match read_up_to(&mut probe, &mut block) {
        Ok(512) if is_tar_header(&block) => Ok(Some(open()?)),
        _ => Ok(None),
    }
}

fn read_up_to(r: &mut dyn io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// ustar magic, or a valid old-style header checksum.
fn is_tar_header(block: &[u8; 512]) -> bool {
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u64 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
    stored == Some(sum) && block[0] != 0
}

/// Checks that `file` is a tar archive (plain or compressed) for ADD.
pub fn looks_like_archive(file: &Path) -> bool {
    matches!(open_archive(file), Ok(Some(_)))
}
