//! Encoding tar headers: POSIX ustar blocks, with a PAX extended header in
//! front when a value does not fit (long names and link targets, large ids,
//! sizes and times) or the entry has xattrs (`SCHILY.xattr.<name>`).
//!
//! This is the subset Go's `archive/tar` writes for Docker and BuildKit
//! layers, and what GNU tar, bsdtar, Go and the `tar` crate all read. No
//! user or group names are written: layers carry numeric ids only. Every
//! field is a pure function of its input, so equal inputs give equal bytes.

use super::error::LayerError;
use super::node::{TarMetadata, Xattrs};

pub(crate) const BLOCK_SIZE: usize = 512;

/// Tar type flags (the byte at offset 156 of a header).
pub(crate) mod typeflag {
    pub const REGULAR: u8 = b'0';
    /// Pre-POSIX tars mark regular files with NUL.
    pub const REGULAR_OLD: u8 = 0;
    pub const HARD_LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR_DEVICE: u8 = b'3';
    pub const BLOCK_DEVICE: u8 = b'4';
    pub const DIRECTORY: u8 = b'5';
    pub const FIFO: u8 = b'6';
    /// "Contiguous file": a regular file everywhere that matters.
    pub const CONTIGUOUS: u8 = b'7';
    pub const PAX_LOCAL: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    pub const GNU_LONG_NAME: u8 = b'L';
    pub const GNU_LONG_LINK: u8 = b'K';
}

// Field offsets and widths of a ustar header.
pub(crate) const NAME: (usize, usize) = (0, 100);
pub(crate) const MODE: (usize, usize) = (100, 8);
pub(crate) const UID: (usize, usize) = (108, 8);
pub(crate) const GID: (usize, usize) = (116, 8);
pub(crate) const SIZE: (usize, usize) = (124, 12);
pub(crate) const MTIME: (usize, usize) = (136, 12);
pub(crate) const CHECKSUM: (usize, usize) = (148, 8);
pub(crate) const TYPEFLAG: usize = 156;
pub(crate) const LINKNAME: (usize, usize) = (157, 100);
pub(crate) const MAGIC: (usize, usize) = (257, 6);
pub(crate) const VERSION: (usize, usize) = (263, 2);
pub(crate) const DEVMAJOR: (usize, usize) = (329, 8);
pub(crate) const DEVMINOR: (usize, usize) = (337, 8);
pub(crate) const PREFIX: (usize, usize) = (345, 155);

pub(crate) const USTAR_MAGIC: &[u8; 6] = b"ustar\0";
pub(crate) const GNU_MAGIC: &[u8; 8] = b"ustar  \0";

/// PAX records as (key, value) pairs.
pub(crate) type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// Largest values the octal fields can hold (7 and 11 digits).
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Everything one header describes.
#[derive(Debug)]
pub(crate) struct HeaderSpec<'a> {
    pub name: &'a [u8],
    pub typeflag: u8,
    pub meta: TarMetadata,
    pub size: u64,
    pub link_target: &'a [u8],
    pub dev_major: u64,
    pub dev_minor: u64,
    /// Xattrs to record, already filtered and sorted by name.
    pub xattrs: &'a Xattrs,
}

/// Appends the header blocks of one entry (a PAX header with its padded
/// records when needed, then the ustar header) to `out`.
pub(crate) fn encode_header(spec: &HeaderSpec<'_>, out: &mut Vec<u8>) -> Result<(), LayerError> {
    let records = pax_records(spec)?;
    if !records.is_empty() {
        let mut data = Vec::new();
        for (key, value) in &records {
            append_pax_record(&mut data, key, value);
        }
        let pax_name = pax_header_name(spec.name);
        let no_xattrs = Xattrs::new();
        let pax_spec = HeaderSpec {
            name: &pax_name,
            typeflag: typeflag::PAX_LOCAL,
            meta: TarMetadata::marker(0),
            size: data.len() as u64,
            link_target: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &no_xattrs,
        };
        out.extend_from_slice(&ustar_block(&pax_spec));
        out.extend_from_slice(&data);
        out.resize(out.len() + padding(data.len() as u64), 0);
    }
    out.extend_from_slice(&ustar_block(spec));
    Ok(())
}

/// Zero bytes that follow `len` bytes of content to fill the last block.
pub(crate) fn padding(len: u64) -> usize {
    let rem = (len % BLOCK_SIZE as u64) as usize;
    if rem == 0 { 0 } else { BLOCK_SIZE - rem }
}

/// The PAX records an entry needs, sorted by key (as Go writes them).
fn pax_records(spec: &HeaderSpec<'_>) -> Result<PaxRecords, LayerError> {
    let mut records = PaxRecords::new();
    if spec.name.len() > NAME.1 {
        records.push((b"path".to_vec(), spec.name.to_vec()));
    }
    if spec.link_target.len() > LINKNAME.1 {
        records.push((b"linkpath".to_vec(), spec.link_target.to_vec()));
    }
    if spec.meta.uid > MAX_OCTAL_7 {
        records.push((b"uid".to_vec(), spec.meta.uid.to_string().into_bytes()));
    }
    if spec.meta.gid > MAX_OCTAL_7 {
        records.push((b"gid".to_vec(), spec.meta.gid.to_string().into_bytes()));
    }
    if spec.size > MAX_OCTAL_11 {
        records.push((b"size".to_vec(), spec.size.to_string().into_bytes()));
    }
    if !(0..=MAX_OCTAL_11 as i64).contains(&spec.meta.mtime) {
        records.push((b"mtime".to_vec(), spec.meta.mtime.to_string().into_bytes()));
    }
    for (name, value) in spec.xattrs {
        // A PAX key ends at the first '=', so a name containing one could
        // not be read back as written.
        if name.contains(&b'=') {
            return Err(LayerError::Unsupported {
                path: String::from_utf8_lossy(spec.name).into_owned(),
                what: format!("xattr name containing '=' ({:?})", String::from_utf8_lossy(name)),
            });
        }
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        records.push((key, value.clone()));
    }
    records.sort();
    Ok(records)
}

/// Appends `"<len> <key>=<value>\n"`, where `<len>` counts the whole record
/// including its own digits.
fn append_pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut total = body + decimal_digits(body);
    // Adding the length's digits can add a digit to the length itself.
    while body + decimal_digits(total) != total {
        total = body + decimal_digits(total);
    }
    out.extend_from_slice(total.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Name of the PAX header entry: `<dir>/PaxHeaders.0/<base>` cut to the
/// name field, as Go names it. Readers ignore it; it only has to be stable.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut out = dir.to_vec();
    out.extend_from_slice(b"PaxHeaders.0/");
    out.extend_from_slice(base);
    out.truncate(NAME.1);
    out
}

/// One 512-byte ustar header. Values too large for a field are written as
/// zero there (their PAX record carries them), except device numbers,
/// which have no PAX key and use the base-256 encoding instead.
fn ustar_block(spec: &HeaderSpec<'_>) -> [u8; BLOCK_SIZE] {
    let mut block = [0u8; BLOCK_SIZE];
    put_bytes(&mut block, NAME, spec.name);
    put_octal(&mut block, MODE, u64::from(spec.meta.mode));
    put_octal(&mut block, UID, if spec.meta.uid > MAX_OCTAL_7 { 0 } else { spec.meta.uid });
    put_octal(&mut block, GID, if spec.meta.gid > MAX_OCTAL_7 { 0 } else { spec.meta.gid });
    put_octal(&mut block, SIZE, if spec.size > MAX_OCTAL_11 { 0 } else { spec.size });
    let mtime = u64::try_from(spec.meta.mtime).ok().filter(|&t| t <= MAX_OCTAL_11).unwrap_or(0);
    put_octal(&mut block, MTIME, mtime);
    block[TYPEFLAG] = spec.typeflag;
    put_bytes(&mut block, LINKNAME, spec.link_target);
    put_bytes(&mut block, MAGIC, USTAR_MAGIC);
    put_bytes(&mut block, VERSION, b"00");
    put_device_number(&mut block, DEVMAJOR, spec.dev_major);
    put_device_number(&mut block, DEVMINOR, spec.dev_minor);
    let sum = header_checksum(&block);
    // Six octal digits, NUL, space: the traditional layout.
    let digits = format!("{sum:06o}");
    block[CHECKSUM.0..CHECKSUM.0 + 6].copy_from_slice(&digits.as_bytes()[digits.len() - 6..]);
    block[CHECKSUM.0 + 6] = 0;
    block[CHECKSUM.0 + 7] = b' ';
    block
}

/// Sum of the header's bytes with the checksum field counted as spaces.
pub(crate) fn header_checksum(block: &[u8; BLOCK_SIZE]) -> u64 {
    let (start, len) = CHECKSUM;
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (start..start + len).contains(&i) { u64::from(b' ') } else { u64::from(b) })
        .sum()
}

/// Copies as much of `value` as fits; longer values are also in a PAX record.
fn put_bytes(block: &mut [u8; BLOCK_SIZE], (start, len): (usize, usize), value: &[u8]) {
    let n = value.len().min(len);
    block[start..start + n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal digits filling the field but its last byte, then NUL.
fn put_octal(block: &mut [u8; BLOCK_SIZE], (start, len): (usize, usize), value: u64) {
    let digits = format!("{value:0width$o}", width = len - 1);
    block[start..start + len - 1].copy_from_slice(digits.as_bytes());
    block[start + len - 1] = 0;
}

fn put_device_number(block: &mut [u8; BLOCK_SIZE], field: (usize, usize), value: u64) {
    if value <= MAX_OCTAL_7 {
        put_octal(block, field, value);
    } else {
        // GNU base-256: high bit of the first byte set, big-endian value.
        let (start, len) = field;
        block[start..start + len].fill(0);
        let bytes = value.to_be_bytes();
        block[start + len - bytes.len()..start + len].copy_from_slice(&bytes);
        block[start] |= 0x80;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        append_pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        // 4 + 91 + 3 = 98 bytes of body: two digits would make 100, which
        // needs three, so the record is 101 bytes long.
        let mut out = Vec::new();
        append_pax_record(&mut out, b"path", &[b'x'; 91]);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 path="));
    }

    #[test]
    fn pax_header_names_follow_go() {
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders.0/c");
        assert_eq!(pax_header_name(b"dir/"), b"PaxHeaders.0/dir");
        assert_eq!(pax_header_name(b"file"), b"PaxHeaders.0/file");
    }

    #[test]
    fn large_device_numbers_use_base_256() {
        let mut block = [0u8; BLOCK_SIZE];
        put_device_number(&mut block, DEVMAJOR, 0x0100_0000);
        assert_eq!(&block[DEVMAJOR.0..DEVMAJOR.0 + 8], &[0x80, 0, 0, 0, 0x01, 0, 0, 0]);
    }
}
