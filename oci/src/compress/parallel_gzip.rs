//! Gzip on every core, deterministically: the one gzip writer rbuild has,
//! used for pushed layers (the registry) and for `rbuild save -o x.tar.gz`.
//!
//! The input is cut into fixed 1 MiB blocks. Each block is deflated on its
//! own, on a worker thread, primed with the last 32 KiB of the block before
//! it as a preset dictionary (so matches still reach back across the cut and
//! the ratio stays close to a serial gzip), and ends with a sync flush,
//! which aligns it to a byte boundary so the blocks can simply be
//! concatenated in order. One empty final block, the CRC-32 and the length
//! close the stream, which is then a single ordinary gzip member that any
//! gunzip reads.
//!
//! A block that does not compress (random data, already-compressed files)
//! is stored instead of deflated: deflating such data at the default level
//! burns most of the CPU time for no gain. Whether a block compresses is
//! judged from a fast deflate of its first 64 KiB, so it is decided by the
//! data alone.
//!
//! The output depends only on the input and the level, never on the number
//! of threads, on how the input was split into writes, or on timing (the
//! header has no name and a zero mtime). That matters: a pushed layer's
//! compressed digest is remembered and held by registries, so the same
//! layer must always compress to the same bytes. A test below pins them.
//!
//! The workers stay up for the whole stream and are fed while the caller
//! goes on writing, so producing the input (an archive being written, a
//! layer being read) overlaps with compressing it; a bounded number of
//! blocks is in flight, so memory stays at a few MiB per thread.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress};

/// zlib's default level: what `gzip`, `docker save | gzip`, Docker and
/// BuildKit use, and what layers are pushed with.
pub const DEFAULT_LEVEL: u32 = 6;

/// Uncompressed bytes per independently deflated block.
const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: how far back a match can reach.
const WINDOW: usize = 32 * 1024;
/// How much of a block is test-compressed to judge whether it compresses.
const PROBE: usize = 64 * 1024;
/// A block whose probe shrinks by less than this fraction is stored.
const MIN_SAVING: f64 = 0.02;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, fixed-Huffman deflate block holding only end-of-block.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// A block to deflate: its place in the stream, its bytes, and the tail of
/// the block before it (empty for the first).
struct Job {
    index: usize,
    data: Vec<u8>,
    dictionary: Vec<u8>,
}

/// A deflated block and its place in the stream.
type Deflated = (usize, io::Result<Vec<u8>>);

/// A writer that gzips what it is given on `threads` worker threads into
/// one gzip member. Call [`ParallelGzWriter::finish`] to end the stream:
/// dropping the writer leaves it incomplete.
pub struct ParallelGzWriter<W: Write> {
    out: W,
    /// The block being filled.
    block: Vec<u8>,
    /// The tail of the last block handed out: the next block's dictionary.
    window: Vec<u8>,
    crc: Crc,
    /// Uncompressed bytes so far (gzip's trailer keeps them modulo 2^32).
    total: u64,
    header_written: bool,
    next_block: usize,
    next_to_write: usize,
    in_flight: usize,
    max_in_flight: usize,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Deflated>,
    /// Blocks deflated ahead of one still being worked on.
    waiting: BTreeMap<usize, Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzWriter<W> {
    /// A writer into `out` at `level` (0 to 9) on `threads` threads (at
    /// least one). Nothing is written to `out` until the first block is
    /// complete or the stream is finished.
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, job_queue) = mpsc::sync_channel::<Job>(threads);
        let (deflated, done) = mpsc::channel::<Deflated>();
        let job_queue = Arc::new(Mutex::new(job_queue));
        let workers = (0..threads)
            .map(|_| {
                let job_queue = Arc::clone(&job_queue);
                let deflated = deflated.clone();
                std::thread::spawn(move || deflate_jobs(&job_queue, &deflated, level))
            })
            .collect();
        ParallelGzWriter {
            out,
            block: Vec::with_capacity(BLOCK_SIZE),
            window: Vec::new(),
            crc: Crc::new(),
            total: 0,
            header_written: false,
            next_block: 0,
            next_to_write: 0,
            in_flight: 0,
            // Enough to keep every worker busy while results wait in order.
            max_in_flight: threads * 2 + 1,
            jobs: Some(jobs),
            done,
            waiting: BTreeMap::new(),
            workers,
        }
    }

    /// Uncompressed bytes written so far.
    pub fn total_in(&self) -> u64 {
        self.total
    }

    /// Hands the full (or, at the end, last) block to the workers.
    fn submit_block(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        self.crc.update(&data);
        self.total += data.len() as u64;
        let dictionary = std::mem::replace(&mut self.window, tail(&data).to_vec());
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send(Job { index: self.next_block, data, dictionary })
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.next_block += 1;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.receive_one()?;
        }
        Ok(())
    }

    /// Waits for one deflated block and writes whatever is next in order.
    fn receive_one(&mut self) -> io::Result<()> {
        let (index, deflated) = self.done.recv().map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.in_flight -= 1;
        self.waiting.insert(index, deflated?);
        while let Some(block) = self.waiting.remove(&self.next_to_write) {
            self.write_header_once()?;
            self.out.write_all(&block)?;
            self.next_to_write += 1;
        }
        Ok(())
    }

    fn write_header_once(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Deflates what is left, closes the stream and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() {
            self.submit_block()?;
        }
        while self.in_flight > 0 {
            self.receive_one()?;
        }
        // Empty input still makes a valid (empty) gzip member.
        self.write_header_once()?;
        self.out.write_all(&FINAL_EMPTY_BLOCK)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // gzip stores the length modulo 2^32.
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.submit_block()?;
        }
        Ok(n)
    }

    /// Blocks are only complete at block boundaries, so a flush passes on
    /// what is finished and keeps the partial block.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Gzips all of `input` into `out` on up to `threads` threads; `progress`
/// is told how many input bytes each block consumed. Returns the number of
/// input bytes.
pub fn compress(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
    threads: usize,
    progress: &dyn Fn(u64),
) -> io::Result<u64> {
    let mut gz = ParallelGzWriter::new(out, level, threads);
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    loop {
        block.clear();
        input.take(BLOCK_SIZE as u64).read_to_end(&mut block)?;
        if block.is_empty() {
            break;
        }
        gz.write_all(&block)?;
        progress(block.len() as u64);
    }
    let total = gz.total_in();
    gz.finish()?;
    Ok(total)
}

/// A worker: deflates jobs until the writer closes the queue (or is gone).
fn deflate_jobs(queue: &Mutex<Receiver<Job>>, deflated: &mpsc::Sender<Deflated>, level: u32) {
    loop {
        // Hold the lock only to take the next job.
        let job = queue.lock().map(|q| q.recv());
        let Ok(Ok(job)) = job else { return };
        // A panic would leave the writer waiting for this block forever;
        // it becomes the block's error instead.
        let result = std::panic::catch_unwind(|| deflate_block(&job.data, &job.dictionary, level))
            .unwrap_or_else(|_| Err(io::Error::other("gzip worker panicked")));
        if deflated.send((job.index, result)).is_err() {
            return;
        }
    }
}

fn tail(block: &[u8]) -> &[u8] {
    &block[block.len().saturating_sub(WINDOW)..]
}

/// Whether deflating `data` would save anything, judged from a fast
/// deflate of its start.
fn compresses(data: &[u8]) -> io::Result<bool> {
    let probe = &data[..data.len().min(PROBE)];
    let mut deflater = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(probe.len() + 1024);
    deflater.compress_vec(probe, &mut out, FlushCompress::Finish).map_err(io::Error::other)?;
    Ok((out.len() as f64) < probe.len() as f64 * (1.0 - MIN_SAVING))
}

/// Raw deflate of one block, ending byte-aligned (sync flush) and not final.
fn deflate_block(data: &[u8], dictionary: &[u8], level: u32) -> io::Result<Vec<u8>> {
    // Level 0 writes stored blocks: the bytes as they are, framed.
    let level = if compresses(data)? { level } else { 0 };
    let mut deflater = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        deflater.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    loop {
        let consumed = deflater.total_in() as usize;
        deflater.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).map_err(io::Error::other)?;
        // The flush is complete once all input is in and zlib stopped
        // with room to spare.
        if deflater.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible text mixed with pseudo-random bytes, so blocks have
        // both matches across the cut and literals.
        let mut state = 0x1234_5678u32;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if (i / 4096) % 2 == 0 { b"layer data "[i % 11] } else { (state >> 24) as u8 }
            })
            .collect()
    }

    fn noise(len: usize, mut state: u32) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        compress(&mut &data[..], &mut out, DEFAULT_LEVEL, threads, &|_| {}).unwrap();
        out
    }

    fn gunzip(packed: &[u8]) -> Vec<u8> {
        // The single-member decoder stops after one member: the whole
        // input must come back from it alone.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(packed).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn output_is_one_gzip_member_that_decodes_to_the_input() {
        for len in [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 12_345] {
            let data = sample(len);
            let back = gunzip(&gzip(&data, 2));
            assert_eq!(back.len(), data.len(), "length for input of {len}");
            assert!(back == data, "content for input of {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        let data = sample(5 * BLOCK_SIZE + 77);
        let one = gzip(&data, 1);
        assert_eq!(one, gzip(&data, 2));
        assert_eq!(one, gzip(&data, 7));
    }

    #[test]
    fn output_does_not_depend_on_how_the_input_was_written() {
        let data = sample(3 * BLOCK_SIZE + 5);
        let mut writer = ParallelGzWriter::new(Vec::new(), DEFAULT_LEVEL, 3);
        for chunk in data.chunks(777_777) {
            writer.write_all(chunk).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), gzip(&data, 2));
    }

    #[test]
    fn incompressible_blocks_are_stored_and_compressible_ones_shrink() {
        let noise = noise(2 * BLOCK_SIZE, 0x9e37_79b9);
        let packed = gzip(&noise, 2);
        // Stored blocks cost 5 bytes per 64 KiB, plus header and trailer.
        assert!(packed.len() < noise.len() + noise.len() / 1000 + 64, "{} for {}", packed.len(), noise.len());
        assert!(gunzip(&packed) == noise);
        let text = b"layer data, layer data, and more layer data\n".repeat(50_000);
        assert!(gzip(&text, 2).len() < text.len() / 20);
    }

    /// Pushed layers' compressed digests are remembered (and registries
    /// hold blobs under them): the same layer must always compress to the
    /// same bytes, whatever the implementation underneath. The input mixes
    /// compressible blocks, a block of noise that is stored, and a short
    /// last block. These digests were taken from the registry's own writer
    /// before it became this one.
    #[test]
    fn the_compressed_bytes_of_a_known_input_never_change() {
        let mut input = sample(2 * BLOCK_SIZE);
        input.extend(noise(BLOCK_SIZE, 0x2545_f491));
        input.extend(sample(12_345));
        let digest = |data: &[u8], threads| crate::Digest::of(&gzip(data, threads)).to_string();
        for threads in [1, 3] {
            assert_eq!(
                digest(&input, threads),
                "sha256:c22ea1c90722ac80e134f39d3b8fa829749a0361a151ccc65e258be6378a9415"
            );
            assert_eq!(
                digest(b"", threads),
                "sha256:ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83"
            );
        }
    }

    #[test]
    fn gunzip_accepts_it() {
        let data = sample(2 * BLOCK_SIZE + 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, gzip(&data, 2)).unwrap();
        let out = std::process::Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == data);
    }
}
