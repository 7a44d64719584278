//! A streaming reader for untrusted tar archives.
//!
//! It reads ustar, GNU and old V7 headers, PAX extended headers (`path`,
//! `linkpath`, `size`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`) and GNU
//! long names and links, and hands out one entry at a time; the content of
//! an entry is streamed, never buffered whole. It is strict where a lax
//! reader would let two tools see different archives:
//!
//! * every header's checksum is verified;
//! * extension headers are capped at 1 MiB each and must be followed by the
//!   entry they describe; two PAX headers (or two long names) for one entry
//!   are an error;
//! * the stream must end with the end-of-archive block: running out of
//!   bytes anywhere else, including exactly between two entries, is
//!   reported as truncation;
//! * like Go's `archive/tar` (which wrote and reads most layers), link,
//!   symlink, device, fifo and directory entries have no content, whatever
//!   their size field says;
//! * sparse entries and unknown entry types are rejected by name.
//!
//! Path safety is not this module's business: it returns names as stored.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};

use super::error::{LayerError, display_bytes};
use super::node::Xattrs;
use super::tar_encode::{
    BLOCK_SIZE, CHECKSUM, DEVMAJOR, DEVMINOR, GID, GNU_MAGIC, LINKNAME, MAGIC, MODE, MTIME, NAME, PREFIX,
    PaxRecords, SIZE, TYPEFLAG, UID, USTAR_MAGIC, header_checksum, padding, typeflag,
};
use super::tar_writer::COPY_BUFFER_SIZE;

/// Largest PAX header or GNU long name/link we accept. Go uses the same
/// cap; nothing legitimate comes close (PATH_MAX is 4 KiB, an xattr value
/// 64 KiB).
const MAX_EXTENSION_SIZE: u64 = 1 << 20;

/// Entry kinds a layer can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadKind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

/// One archive entry with all extensions applied.
#[derive(Debug)]
pub(crate) struct ReadEntry {
    /// The name as stored (not normalised or checked).
    pub path: Vec<u8>,
    /// Target of a hard link or symlink, as stored.
    pub link_target: Vec<u8>,
    pub kind: ReadKind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub mtime_nanos: u32,
    /// Content bytes that follow the header (0 for all but files).
    pub size: u64,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// From `SCHILY.xattr.*` records, sorted by name.
    pub xattrs: Xattrs,
}

pub(crate) struct TarReader<R: Read> {
    input: BufReader<R>,
    /// Bytes consumed from the stream so far.
    offset: u64,
    /// Unread content of the current entry, then its padding.
    content_left: u64,
    padding_left: u64,
    /// Name of the current entry, for truncation messages.
    current: Vec<u8>,
    entries_seen: u64,
}

/// Extension data gathered for the next real entry.
#[derive(Default)]
struct PendingExtensions {
    pax: Option<PaxRecords>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl PendingExtensions {
    fn is_empty(&self) -> bool {
        self.pax.is_none() && self.long_name.is_none() && self.long_link.is_none()
    }
}

/// A header block's own fields, before extensions are applied.
struct RawHeader {
    name: Vec<u8>,
    link: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    dev_major: u64,
    dev_minor: u64,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(input: R) -> Self {
        TarReader {
            input: BufReader::with_capacity(COPY_BUFFER_SIZE, input),
            offset: 0,
            content_left: 0,
            padding_left: 0,
            current: Vec::new(),
            entries_seen: 0,
        }
    }

    /// The next entry, or `None` at the end-of-archive marker. Content of
    /// the previous entry that was not read is skipped.
    pub(crate) fn next_entry(&mut self) -> Result<Option<ReadEntry>, LayerError> {
        let unread = self.content_left + self.padding_left;
        self.skip(unread)?;
        self.content_left = 0;
        self.padding_left = 0;

        let mut pending = PendingExtensions::default();
        loop {
            let header_offset = self.offset;
            let mut block = [0u8; BLOCK_SIZE];
            if !self.read_block(&mut block)? {
                return Err(LayerError::Truncated {
                    detail: format!(
                        "the stream ends at byte {header_offset}, after {} entries, without the \
                         end-of-archive marker",
                        self.entries_seen
                    ),
                    source: None,
                });
            }
            if block.iter().all(|&b| b == 0) {
                if !pending.is_empty() {
                    return Err(LayerError::BadHeader {
                        offset: header_offset,
                        reason: "extension header is not followed by an entry".into(),
                    });
                }
                return Ok(None);
            }
            let raw = parse_header(&block, header_offset)?;
            match raw.typeflag {
                typeflag::PAX_LOCAL => {
                    if pending.pax.is_some() {
                        return Err(bad(header_offset, "two PAX headers for one entry"));
                    }
                    let data = self.read_extension(raw.size, header_offset)?;
                    let records = parse_pax_records(&data).map_err(|reason| bad(header_offset, reason))?;
                    pending.pax = Some(records);
                }
                typeflag::PAX_GLOBAL => {
                    // Global headers set defaults for the rest of the archive;
                    // layer tools never write them and Docker ignores them.
                    let data = self.read_extension(raw.size, header_offset)?;
                    parse_pax_records(&data).map_err(|reason| bad(header_offset, reason))?;
                }
                typeflag::GNU_LONG_NAME => {
                    if pending.long_name.is_some() {
                        return Err(bad(header_offset, "two GNU long names for one entry"));
                    }
                    let data = self.read_extension(raw.size, header_offset)?;
                    pending.long_name = Some(until_nul(&data).to_vec());
                }
                typeflag::GNU_LONG_LINK => {
                    if pending.long_link.is_some() {
                        return Err(bad(header_offset, "two GNU long link names for one entry"));
                    }
                    let data = self.read_extension(raw.size, header_offset)?;
                    pending.long_link = Some(until_nul(&data).to_vec());
                }
                _ => {
                    let entry = build_entry(raw, pending, header_offset)?;
                    self.content_left = entry.size;
                    self.padding_left = padding(entry.size) as u64;
                    self.current = entry.path.clone();
                    self.entries_seen += 1;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Streams the current entry's content into `out`; returns its length.
    /// `entry` names the entry in write errors.
    pub(crate) fn copy_content<W: Write>(&mut self, out: &mut W, entry: &[u8]) -> Result<u64, LayerError> {
        let mut copied = 0u64;
        while self.content_left > 0 {
            let left = self.content_left;
            let available = self.fill(|reader| {
                format!(
                    "entry {:?} ends after {} of its {} bytes",
                    display_bytes(&reader.current),
                    copied,
                    copied + reader.content_left
                )
            })?;
            let n = available.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            out.write_all(&available[..n]).map_err(|e| LayerError::apply(entry, "write file content", e))?;
            self.input.consume(n);
            self.offset += n as u64;
            self.content_left -= n as u64;
            copied += n as u64;
        }
        Ok(copied)
    }

    /// Consumes whatever follows the end-of-archive marker (more zero
    /// blocks, record padding) so that a hashing or decompressing reader
    /// underneath sees the whole stream, and returns the total byte count.
    pub(crate) fn finish(mut self) -> Result<u64, LayerError> {
        loop {
            let n = match self.input.fill_buf() {
                Ok(buf) => buf.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            if n == 0 {
                return Ok(self.offset);
            }
            self.input.consume(n);
            self.offset += n as u64;
        }
    }

    /// Reads one block. `false` when the stream ends before its first byte.
    fn read_block(&mut self, block: &mut [u8; BLOCK_SIZE]) -> Result<bool, LayerError> {
        let mut filled = 0;
        while filled < BLOCK_SIZE {
            let available = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            if available.is_empty() {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(LayerError::Truncated {
                    detail: format!("the stream ends inside the header at byte {}", self.offset),
                    source: None,
                });
            }
            let n = available.len().min(BLOCK_SIZE - filled);
            block[filled..filled + n].copy_from_slice(&available[..n]);
            self.input.consume(n);
            self.offset += n as u64;
            filled += n;
        }
        Ok(true)
    }

    /// Reads an extension header's data and its padding.
    fn read_extension(&mut self, size: u64, header_offset: u64) -> Result<Vec<u8>, LayerError> {
        if size > MAX_EXTENSION_SIZE {
            return Err(bad(
                header_offset,
                format!("extension header of {size} bytes (more than {MAX_EXTENSION_SIZE} allowed)"),
            ));
        }
        let mut data = Vec::with_capacity(size as usize);
        let mut left = size;
        while left > 0 {
            let available =
                self.fill(|_| format!("the extension header at byte {header_offset} is cut short"))?;
            let n = available.len().min(left as usize);
            data.extend_from_slice(&available[..n]);
            self.input.consume(n);
            self.offset += n as u64;
            left -= n as u64;
        }
        self.skip(padding(size) as u64)?;
        Ok(data)
    }

    fn skip(&mut self, mut len: u64) -> Result<(), LayerError> {
        while len > 0 {
            let available = self.fill(|reader| {
                format!(
                    "the stream ends inside entry {:?} (content or padding)",
                    display_bytes(&reader.current)
                )
            })?;
            let n = available.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            self.input.consume(n);
            self.offset += n as u64;
            len -= n as u64;
        }
        Ok(())
    }

    /// `fill_buf` that treats the end of the stream as truncation, described
    /// by `detail`.
    fn fill(&mut self, detail: impl Fn(&Self) -> String) -> Result<&[u8], LayerError> {
        loop {
            match self.input.fill_buf() {
                Ok([]) => break,
                Ok(_) => {
                    // Borrow again: returning `buf` from inside the loop
                    // would keep `self.input` borrowed across iterations.
                    return Ok(self.input.buffer());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Err(LayerError::Truncated { detail: detail(self), source: None })
    }

    fn read_error(&self, e: io::Error) -> LayerError {
        // Decompressors report a cut-off stream as UnexpectedEof.
        if e.kind() == io::ErrorKind::UnexpectedEof {
            let detail = format!("{e} (at byte {} of the tar)", self.offset);
            return LayerError::Truncated { detail, source: Some(e) };
        }
        LayerError::ReadTar { offset: self.offset, source: e }
    }
}

fn bad(offset: u64, reason: impl Into<String>) -> LayerError {
    LayerError::BadHeader { offset, reason: reason.into() }
}

/// Decodes a header block's own fields.
fn parse_header(block: &[u8; BLOCK_SIZE], offset: u64) -> Result<RawHeader, LayerError> {
    let stored =
        parse_number(field(block, CHECKSUM)).map_err(|r| bad(offset, format!("checksum field: {r}")))?;
    // Some old writers summed signed bytes; accept either reading, as Go does.
    let unsigned = header_checksum(block) as i64;
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(
            |(i, &b)| {
                if (CHECKSUM.0..CHECKSUM.0 + CHECKSUM.1).contains(&i) { 32 } else { i64::from(b as i8) }
            },
        )
        .sum();
    if stored != unsigned && stored != signed {
        return Err(bad(offset, format!("checksum mismatch (stored {stored}, computed {unsigned})")));
    }

    let is_ustar = &block[MAGIC.0..MAGIC.0 + MAGIC.1] == USTAR_MAGIC;
    let is_gnu = &block[MAGIC.0..MAGIC.0 + GNU_MAGIC.len()] == GNU_MAGIC;
    let mut name = until_nul(field(block, NAME)).to_vec();
    if is_ustar {
        let prefix = until_nul(field(block, PREFIX));
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    let number = |f: (usize, usize), what: &str| -> Result<i64, LayerError> {
        parse_number(field(block, f)).map_err(|r| bad(offset, format!("{what} field: {r}")))
    };
    let unsigned_number = |f: (usize, usize), what: &str| -> Result<u64, LayerError> {
        u64::try_from(number(f, what)?).map_err(|_| bad(offset, format!("{what} field is negative")))
    };
    let has_device_fields = is_ustar || is_gnu;
    Ok(RawHeader {
        name,
        link: until_nul(field(block, LINKNAME)).to_vec(),
        typeflag: block[TYPEFLAG],
        // Some writers include the file-type bits; only permissions matter.
        mode: (unsigned_number(MODE, "mode")? & 0o7777) as u32,
        uid: unsigned_number(UID, "uid")?,
        gid: unsigned_number(GID, "gid")?,
        size: unsigned_number(SIZE, "size")?,
        mtime: number(MTIME, "mtime")?,
        dev_major: if has_device_fields { unsigned_number(DEVMAJOR, "devmajor")? } else { 0 },
        dev_minor: if has_device_fields { unsigned_number(DEVMINOR, "devminor")? } else { 0 },
    })
}

/// Applies pending extensions to a real entry's header.
fn build_entry(raw: RawHeader, pending: PendingExtensions, offset: u64) -> Result<ReadEntry, LayerError> {
    let mut path = pending.long_name.unwrap_or(raw.name);
    let mut link_target = pending.long_link.unwrap_or(raw.link);
    let mut size = raw.size;
    let (mut uid, mut gid) = (raw.uid, raw.gid);
    let (mut mtime, mut mtime_nanos) = (raw.mtime, 0u32);
    // BTreeMap: a repeated xattr record keeps its last value, and the list
    // comes out sorted.
    let mut xattrs: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();

    for (key, value) in pending.pax.unwrap_or_default() {
        let decimal = |what: &str| -> Result<u64, LayerError> {
            parse_decimal(&value).ok_or_else(|| bad(offset, format!("PAX {what} record is not a number")))
        };
        match key.as_slice() {
            b"path" => path = value.clone(),
            b"linkpath" => link_target = value.clone(),
            b"size" => size = decimal("size")?,
            b"uid" => uid = decimal("uid")?,
            b"gid" => gid = decimal("gid")?,
            b"mtime" => {
                (mtime, mtime_nanos) =
                    parse_pax_time(&value).ok_or_else(|| bad(offset, "PAX mtime record is not a time"))?;
            }
            k if k.starts_with(b"GNU.sparse.") => {
                return Err(LayerError::Unsupported {
                    path: display_bytes(&path),
                    what: "sparse file (GNU sparse PAX records)".into(),
                });
            }
            k if k.starts_with(b"SCHILY.xattr.") => {
                let name = &k[b"SCHILY.xattr.".len()..];
                if name.is_empty() {
                    return Err(bad(offset, "PAX xattr record without a name"));
                }
                xattrs.insert(name.to_vec(), value.clone());
            }
            // atime, ctime, uname, gname, comment, charset and vendor
            // records carry nothing a layer keeps.
            _ => {}
        }
    }

    let kind = entry_kind(raw.typeflag, &path)?;
    if kind != ReadKind::File {
        size = 0;
    }
    Ok(ReadEntry {
        path,
        link_target,
        kind,
        mode: raw.mode,
        uid,
        gid,
        mtime,
        mtime_nanos,
        size,
        dev_major: raw.dev_major,
        dev_minor: raw.dev_minor,
        xattrs: xattrs.into_iter().collect(),
    })
}

/// What a header's type flag makes of the entry at `path`.
fn entry_kind(typeflag: u8, path: &[u8]) -> Result<ReadKind, LayerError> {
    Ok(match typeflag {
        typeflag::REGULAR | typeflag::CONTIGUOUS => ReadKind::File,
        // Pre-POSIX archives marked directories only by the trailing slash.
        typeflag::REGULAR_OLD if path.ends_with(b"/") => ReadKind::Dir,
        typeflag::REGULAR_OLD => ReadKind::File,
        typeflag::HARD_LINK => ReadKind::HardLink,
        typeflag::SYMLINK => ReadKind::Symlink,
        typeflag::CHAR_DEVICE => ReadKind::CharDevice,
        typeflag::BLOCK_DEVICE => ReadKind::BlockDevice,
        typeflag::DIRECTORY => ReadKind::Dir,
        typeflag::FIFO => ReadKind::Fifo,
        b'S' => {
            return Err(LayerError::Unsupported {
                path: display_bytes(path),
                what: "sparse file (GNU 'S' entry)".into(),
            });
        }
        other => {
            return Err(LayerError::Unsupported {
                path: display_bytes(path),
                what: format!("tar entry type {:?}", char::from(other)),
            });
        }
    })
}

fn field(block: &[u8; BLOCK_SIZE], (start, len): (usize, usize)) -> &[u8] {
    &block[start..start + len]
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => &bytes[..i],
        None => bytes,
    }
}

/// A numeric header field: octal text (padded with spaces or NULs) or, when
/// the high bit of the first byte is set, GNU base-256 two's complement.
fn parse_number(field: &[u8]) -> Result<i64, &'static str> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        // Negative numbers have the bit after the marker set; inverting
        // every byte turns -a-1 into a.
        let invert = if first & 0x40 != 0 { 0xff } else { 0x00 };
        let mut value: u64 = 0;
        for (i, &byte) in field.iter().enumerate() {
            let mut b = byte ^ invert;
            if i == 0 {
                b &= 0x7f;
            }
            if value >> 56 != 0 {
                return Err("base-256 number overflows 64 bits");
            }
            value = (value << 8) | u64::from(b);
        }
        if value >> 63 != 0 {
            return Err("base-256 number overflows 64 bits");
        }
        let value = value as i64;
        return Ok(if invert == 0xff { !value } else { value });
    }
    let trimmed = trim(field, |b| b == b' ' || b == 0);
    if trimmed.is_empty() {
        return Ok(0);
    }
    let mut value: i64 = 0;
    for &b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return Err("not an octal number");
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or("octal number overflows")?;
    }
    Ok(value)
}

fn trim(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|&b| !strip(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !strip(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A PAX time: `[-]seconds[.fraction]`, rounded down to whole nanoseconds.
fn parse_pax_time(text: &[u8]) -> Option<(i64, u32)> {
    let (negative, text) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let seconds = i64::try_from(parse_decimal(whole)?).ok()?;
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + fraction.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    if !negative {
        return Some((seconds, nanos));
    }
    // -1.25 is 1.25 seconds before the epoch: second -2, plus 0.75.
    if nanos == 0 { Some((-seconds, 0)) } else { Some((-seconds - 1, 1_000_000_000 - nanos)) }
}

/// Splits PAX extended header data into (key, value) records.
fn parse_pax_records(mut data: &[u8]) -> Result<PaxRecords, String> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or("PAX record without a length")?;
        let len = parse_decimal(&data[..space]).ok_or("PAX record length is not a number")?;
        let len = usize::try_from(len).map_err(|_| "PAX record length too large")?;
        if len <= space + 1 || len > data.len() {
            return Err(format!("PAX record length {len} does not fit the header"));
        }
        let record = &data[..len];
        if record[len - 1] != b'\n' {
            return Err("PAX record does not end with a newline".into());
        }
        let body = &record[space + 1..len - 1];
        let eq = body.iter().position(|&b| b == b'=').ok_or("PAX record without '='")?;
        if eq == 0 {
            return Err("PAX record with an empty key".into());
        }
        records.push((body[..eq].to_vec(), body[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(parse_number(b"0000755\0"), Ok(0o755));
        assert_eq!(parse_number(b"   755 \0"), Ok(0o755));
        assert_eq!(parse_number(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0x01, 0x00]), Ok(256));
        assert_eq!(parse_number(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Ok(-1));
        assert!(parse_number(b"12x4567\0").is_err());
        assert!(parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn pax_times_round_down() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(parse_pax_time(b"1.5"), Some((1, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"1.0000000019"), Some((1, 1)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn pax_records_are_strict() {
        assert_eq!(parse_pax_records(b"9 path=a\n").unwrap(), vec![(b"path".to_vec(), b"a".to_vec())]);
        assert!(parse_pax_records(b"9 path=a").is_err());
        assert!(parse_pax_records(b"99 path=a\n").is_err());
        assert!(parse_pax_records(b"8 =abcd\n").is_err());
        assert!(parse_pax_records(b"x path=a\n").is_err());
    }
}
