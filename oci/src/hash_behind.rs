//! SHA-256 on a second core: [`HashBehind`] is a writer that hands what is
//! written to a thread of its own, so whoever writes (a layer's tar walk,
//! opening and reading thousands of files) and the hash run side by side.
//!
//! Why: a layer's diffID is one SHA-256 pass over its tar stream, which no
//! amount of parallelism splits, and committing a COPY of 2,000 small files
//! spent about as long in the walk's system calls as in the hash, one after
//! the other on one core (`docs/dev/performance.md`). Small streams never
//! start the thread: below [`HashBehind::THREAD_AFTER`] bytes the hash runs
//! inline, as [`crate::digest::HashingWriter`] would.

use std::io::{self, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::digest::{Digest, Hasher};

/// Bytes handed to the hashing thread at a time: small enough to stay in
/// the caches between the two cores, large enough that handing over costs
/// nothing next to hashing it.
const CHUNK: usize = 256 << 10;

/// Chunks written ahead of the hash at most.
const IN_FLIGHT: usize = 4;

/// A writer that SHA-256 hashes and counts everything written to it, on a
/// thread of its own once the stream is large enough to be worth one.
pub struct HashBehind {
    /// Hashing inline, until the stream reaches `THREAD_AFTER` bytes.
    inline: Option<Hasher>,
    pending: Vec<u8>,
    worker: Option<Worker>,
}

struct Worker {
    chunks: SyncSender<Vec<u8>>,
    /// Chunks the thread is done with, for reuse.
    spare: Receiver<Vec<u8>>,
    thread: JoinHandle<(Digest, u64)>,
}

impl Default for HashBehind {
    fn default() -> Self {
        HashBehind::new()
    }
}

impl HashBehind {
    /// Streams shorter than this are hashed inline.
    pub const THREAD_AFTER: u64 = 4 << 20;

    pub fn new() -> HashBehind {
        HashBehind { inline: Some(Hasher::new()), pending: Vec::new(), worker: None }
    }

    /// The SHA-256 digest and the length of everything written.
    pub fn finish(mut self) -> (Digest, u64) {
        if let Some(hasher) = self.inline.take() {
            let len = hasher.len();
            return (hasher.finish(), len);
        }
        let last = mem::take(&mut self.pending);
        let Worker { chunks, spare, thread } = self.worker.take().expect("a worker once not inline");
        // A send fails only if the thread died, which the join reports.
        let _ = chunks.send(last);
        drop(chunks);
        drop(spare);
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Moves the inline hasher's work to a thread: it carries on from the
    /// bytes hashed so far.
    fn start_thread(&mut self) -> io::Result<()> {
        let mut hasher = self.inline.take().expect("inline until now");
        let (chunks, incoming) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, spare) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new().name("hash".into()).spawn(move || {
            for mut chunk in incoming {
                hasher.update(&chunk);
                chunk.clear();
                let _ = give_back.send(chunk);
            }
            let len = hasher.len();
            (hasher.finish(), len)
        })?;
        self.worker = Some(Worker { chunks, spare, thread });
        self.pending.reserve(CHUNK);
        Ok(())
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let worker = self.worker.as_ref().expect("handing over needs the thread");
        let next = worker.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = mem::replace(&mut self.pending, next);
        worker.chunks.send(full).map_err(|_| io::Error::other("the hashing thread stopped"))
    }
}

impl Write for HashBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(hasher) = &mut self.inline {
            hasher.update(buf);
            if hasher.len() >= Self::THREAD_AFTER {
                self.start_thread()?;
            }
            return Ok(buf.len());
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let room = CHUNK - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.pending.extend_from_slice(now);
            if self.pending.len() == CHUNK {
                self.hand_over()?;
            }
            rest = later;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    #[test]
    fn gives_the_digest_and_length_of_the_stream_whatever_the_sizes_of_the_writes() {
        let data: Vec<u8> =
            (0..(9u32 << 20) + 12_345).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in
            [0, 1, 1000, HashBehind::THREAD_AFTER as usize - 1, HashBehind::THREAD_AFTER as usize, data.len()]
        {
            for write_size in [1, 511, CHUNK, 3 * CHUNK + 7] {
                if write_size == 1 && len > 100_000 {
                    continue;
                }
                let mut w = HashBehind::new();
                for piece in data[..len].chunks(write_size) {
                    w.write_all(piece).unwrap();
                }
                assert_eq!(
                    w.finish(),
                    (reference(&data[..len]), len as u64),
                    "{len} bytes in writes of {write_size}"
                );
            }
        }
    }
}
