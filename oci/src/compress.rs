//! Compression of streams, recognised by content (magic bytes), never by
//! file name: gzip, zstd, bzip2 and xz readers; and [`parallel_gzip`], the
//! deterministic gzip writer on every core that pushed layers and saved
//! `.tar.gz` archives are written with.

pub mod parallel_gzip;

use std::io::{self, BufRead, BufReader, Read};

/// What the first bytes of a stream say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

/// Bytes needed to tell every format apart (xz has the longest magic).
pub const MAGIC_LEN: usize = 6;

impl Compression {
    /// Recognises a compression format from a stream's first bytes. Fewer
    /// than [`MAGIC_LEN`] bytes are fine: a stream that short is plain.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
            _ => Compression::None,
        }
    }
}

/// Reads up to [`MAGIC_LEN`] bytes, fewer only at the end of the stream.
pub fn read_head<R: Read>(input: &mut R) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match input.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// Wraps `reader` in the decompressor its first bytes call for. bzip2 and
/// xz are recognised but only supported where the caller handles them
/// (ADD of archives); here they are an error naming the format.
pub fn decompress_auto<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(1 << 20, reader);
    let head = buffered.fill_buf()?;
    match Compression::sniff(head) {
        Compression::None => Ok(Box::new(buffered)),
        Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
        Compression::Zstd => Ok(Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{other:?} compression is not supported here"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_zstd_and_plain_are_recognised_by_content() {
        let data = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        for input in [data.clone(), gz, zs] {
            let mut out = Vec::new();
            decompress_auto(&input[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
