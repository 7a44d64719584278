//! Content-addressed blobs: `blobs/sha256/<hex>`. A blob is written to
//! scratch, its digest checked, then renamed into place, so a blob's name
//! always matches its bytes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::{Result, Store, StoreError};
use rbuild_oci::digest::{Digest, HashingWriter};
use rbuild_oci::io_error::{IoContext, IoError};

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            super::write_file(&path, bytes).ctx("write blob", &path)?;
        }
        Ok(digest)
    }

    /// Streams a blob into the store. When `expected` is given the content
    /// must hash to it, or nothing is stored.
    pub fn put_blob_from(&self, reader: &mut dyn Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let tmp = self.temp_path("blob");
        let file = File::create(&tmp).ctx("create", &tmp)?;
        let mut writer = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        let copied = io::copy(reader, &mut writer).ctx("write blob", &tmp);
        let (buf, digest, size) = writer.finish();
        let finished = copied.and_then(|_| {
            let file = buf.into_inner().map_err(|e| e.into_error()).ctx("flush", &tmp)?;
            file.sync_all().ctx("sync", &tmp)
        });
        if let Err(e) = finished {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        if let Some(want) = expected
            && *want != digest
        {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Corrupt {
                what: "blob",
                path: tmp,
                message: format!("content has digest {digest}, expected {want}"),
            });
        }
        let path = self.blob_path(&digest);
        fs::rename(&tmp, &path).ctx("commit blob", &path)?;
        Ok((digest, size))
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing { what: "blob", digest: *digest },
            _ => IoError::new("read blob", path, e).into(),
        })
    }

    /// Copies a blob to `out`.
    pub fn copy_blob_to(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64> {
        let path = self.blob_path(digest);
        let mut f = File::open(&path).ctx("open blob", &path)?;
        Ok(io::copy(&mut f, out).ctx("read blob", &path)?)
    }

    /// Removes a blob; missing is fine.
    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(IoError::new("remove", path, e).into()),
            _ => Ok(()),
        }
    }

    /// Every blob digest present.
    pub fn list_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx("list", &dir)? {
            let e = e.ctx("list", &dir)?;
            if let Some(d) = e.file_name().to_str().and_then(|n| Digest::parse(n).ok()) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}
