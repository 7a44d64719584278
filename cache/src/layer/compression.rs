//! Recognising how a layer blob is compressed from its first bytes (never
//! from a media type or file name, which can lie), and unwrapping it.

use std::io::{self, Read};

/// Compression formats a layer blob can arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar.
    None,
    Gzip,
    Zstd,
    /// Recognised so the error can name it; OCI layers never use it.
    Bzip2,
    /// Recognised so the error can name it; OCI layers never use it.
    Xz,
}

/// Bytes needed to tell every format apart (xz has the longest magic).
pub(crate) const MAGIC_LEN: usize = 6;

/// The compression the first bytes of a stream announce. Fewer than
/// [`MAGIC_LEN`] bytes are fine: a stream that short is a plain (and
/// invalid) tar.
pub fn detect_compression(head: &[u8]) -> LayerCompression {
    match head {
        [0x1f, 0x8b, ..] => LayerCompression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => LayerCompression::Zstd,
        [b'B', b'Z', b'h', ..] => LayerCompression::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => LayerCompression::Xz,
        _ => LayerCompression::None,
    }
}

/// Reads up to [`MAGIC_LEN`] bytes, fewer only at the end of the stream.
pub(crate) fn read_head<R: Read>(input: &mut R) -> io::Result<Vec<u8>> {
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
