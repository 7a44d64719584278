//! Tars written header by header, bypassing the `tar` crate's path checks,
//! so that a test can write anything a hostile archive can: `..` and
//! absolute names, links out of the root, devices, PAX records with any
//! value, GNU long names, headers that promise content that never comes.
//!
//! Every header is a ustar header with uid and gid 0 and mtime
//! [`TEST_MTIME`]; names and link names go into their fields verbatim.

/// The mtime of every entry a [`RawTar`] writes.
pub const TEST_MTIME: u64 = 1_600_000_000;

/// A tar built entry by entry; [`RawTar::finish`] adds the end marker.
#[derive(Default)]
pub struct RawTar {
    bytes: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    /// Appends a header whose name and link name fields hold the given
    /// bytes verbatim (at most 100 each), followed by `data`.
    pub fn raw(mut self, name: &[u8], kind: tar::EntryType, link: &[u8], mode: u32, data: &[u8]) -> RawTar {
        let mut header = Self::header(name, kind, mode, data.len() as u64);
        assert!(link.len() <= 100, "link names longer than 100 bytes need pax()");
        header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link);
        header.set_cksum();
        self.push(header.as_bytes(), data);
        self
    }

    /// A header with `name` verbatim, uid and gid 0, [`TEST_MTIME`]; the
    /// checksum is left to the caller.
    fn header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        assert!(name.len() <= 100, "names longer than 100 bytes need pax() or gnu_long_name()");
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(TEST_MTIME);
        header.set_size(size);
        header.as_mut_bytes()[..name.len()].copy_from_slice(name);
        header
    }

    pub fn file(self, name: &str, data: &[u8]) -> RawTar {
        self.file_mode(name, 0o644, data)
    }

    pub fn file_mode(self, name: &str, mode: u32, data: &[u8]) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Regular, b"", mode, data)
    }

    pub fn dir(self, name: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Directory, b"", 0o755, b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Symlink, target.as_bytes(), 0o777, b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> RawTar {
        self.raw(name.as_bytes(), tar::EntryType::Link, target.as_bytes(), 0o644, b"")
    }

    /// A device node entry (`kind` is `Char` or `Block`).
    pub fn device(mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32, mode: u32) -> RawTar {
        let mut header = Self::header(name.as_bytes(), kind, mode, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        header.set_cksum();
        self.push(header.as_bytes(), b"");
        self
    }

    /// A PAX extended header with these records (lengths computed), for
    /// the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> RawTar {
        let mut data = Vec::new();
        for (key, value) in records {
            // "LEN KEY=VALUE\n", where LEN counts its own digits too.
            let body = key.len() + value.len() + 3;
            let mut len = body + 1;
            while body + len.to_string().len() != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(b"PaxHeaders/x", tar::EntryType::XHeader, b"", 0o644, &data)
    }

    /// A GNU long-name header for the next entry.
    pub fn gnu_long_name(mut self, name: &[u8]) -> RawTar {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
        let mut data = name.to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.push(header.as_bytes(), &data);
        self
    }

    /// A header that announces `size` bytes of content, with none written.
    pub fn declared(mut self, name: &[u8], kind: tar::EntryType, size: u64) -> RawTar {
        let mut header = Self::header(name, kind, 0o644, size);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self
    }

    /// Raw bytes appended as they are.
    pub fn bytes(mut self, bytes: &[u8]) -> RawTar {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// The archive with its end-of-archive marker (two zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }

    /// The archive so far, without an end-of-archive marker.
    pub fn unterminated(self) -> Vec<u8> {
        self.bytes
    }

    /// A header block, then `data` padded to a whole block.
    fn push(&mut self, header: &[u8], data: &[u8]) {
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_crate_reads_what_it_would_refuse_to_write() {
        let tar = RawTar::new()
            .dir("a/")
            .file("a/../../x", b"hello")
            .symlink("up", "/etc")
            .pax(&[("path", b"long/name")])
            .file("short", b"")
            .finish();
        assert_eq!(tar.len() % 512, 0);
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        assert_eq!(names, ["a/", "a/../../x", "up", "long/name"]);
    }
}
