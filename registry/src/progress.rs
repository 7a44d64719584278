//! How transfers report progress: one item per blob (named by the short
//! digest Docker prints), so the command line can draw a bar per layer on
//! a terminal or print plain lines otherwise.

/// Receives transfer events; called from several threads at once.
pub trait TransferProgress: Send + Sync {
    /// A blob starts moving (`action`: "Downloading", "Pushing", …);
    /// `total` is its size in bytes when known.
    fn begin(&self, item: &str, action: &str, total: Option<u64>);
    /// `bytes` more of the item moved.
    fn advance(&self, item: &str, bytes: u64);
    /// The item is done; `outcome` says how ("Pull complete", "Already exists", …).
    fn end(&self, item: &str, outcome: &str);
    /// A line about the whole transfer.
    fn note(&self, text: &str);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl TransferProgress for NoProgress {
    fn begin(&self, _: &str, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn end(&self, _: &str, _: &str) {}
    fn note(&self, _: &str) {}
}

/// The 12 hex digits Docker shows for a blob.
pub fn short_id(digest: &rbuild_oci::digest::Digest) -> String {
    digest.hex()[..12].to_string()
}
