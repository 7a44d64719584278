//! Gzip on every core: the stream is cut into blocks, each block becomes a
//! complete gzip member compressed on a worker thread, and the members are
//! written in order. A file of several members is valid gzip (RFC 1952):
//! `gzip -d`, Go's reader and `rbuild load` read it as one stream.
//!
//! Blocks are compressed independently, so the ratio is a little worse than
//! one long deflate stream (each block starts with an empty dictionary),
//! which at 2 MiB per block costs well under 1%.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::Compression;

/// Uncompressed bytes per gzip member.
const BLOCK_SIZE: usize = 2 << 20;

type Job = (usize, Vec<u8>);
type Done = (usize, io::Result<Vec<u8>>);

/// A writer that gzips what it is given on `threads` worker threads.
pub struct ParallelGzWriter<W: Write> {
    out: W,
    level: Compression,
    block: Vec<u8>,
    next_block: usize,
    next_to_write: usize,
    in_flight: usize,
    max_in_flight: usize,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    finished: BTreeMap<usize, Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    wrote_member: bool,
}

impl<W: Write> ParallelGzWriter<W> {
    pub fn new(out: W, level: Compression, threads: usize) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let job_rx = Arc::clone(&job_rx);
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        // Hold the lock only to take the next job.
                        let job = job_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok((index, data))) = job else { return };
                        if done_tx.send((index, compress_member(&data, level))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        ParallelGzWriter {
            out,
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            next_block: 0,
            next_to_write: 0,
            in_flight: 0,
            // Enough to keep every worker busy while results wait in order.
            max_in_flight: threads * 2 + 1,
            jobs: Some(job_tx),
            done: done_rx,
            finished: BTreeMap::new(),
            workers,
            wrote_member: false,
        }
    }

    fn submit_block(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send((self.next_block, data)).map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.next_block += 1;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.receive_one()?;
        }
        Ok(())
    }

    /// Waits for one compressed block and writes whatever is next in order.
    fn receive_one(&mut self) -> io::Result<()> {
        let (index, result) = self.done.recv().map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.in_flight -= 1;
        self.finished.insert(index, result?);
        while let Some(member) = self.finished.remove(&self.next_to_write) {
            self.out.write_all(&member)?;
            self.wrote_member = true;
            self.next_to_write += 1;
        }
        Ok(())
    }

    /// Compresses what is left, writes every member and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() {
            self.submit_block()?;
        }
        while self.in_flight > 0 {
            self.receive_one()?;
        }
        if !self.wrote_member {
            // Empty input still makes a valid (empty) gzip file.
            self.out.write_all(&compress_member(&[], self.level)?)?;
        }
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

    /// Members are only complete at block boundaries, so a flush passes on
    /// what is finished and keeps the partial block.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One complete gzip member, with no name and mtime 0 so the output
/// depends only on the input.
fn compress_member(data: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::with_capacity(data.len() / 2 + 64), level);
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut writer = ParallelGzWriter::new(Vec::new(), Compression::fast(), threads);
        for chunk in data.chunks(777_777) {
            writer.write_all(chunk).unwrap();
        }
        let gz = writer.finish().unwrap();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn members_decode_in_order() {
        let data: Vec<u8> = (0..(BLOCK_SIZE * 5 + 12345)).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(roundtrip(&data, 2), data);
        assert_eq!(roundtrip(&data, 1), data);
        assert_eq!(roundtrip(b"", 2), b"");
    }

    #[test]
    fn output_is_deterministic() {
        let data = vec![42u8; BLOCK_SIZE * 3];
        let make = |threads| {
            let mut w = ParallelGzWriter::new(Vec::new(), Compression::default(), threads);
            w.write_all(&data).unwrap();
            w.finish().unwrap()
        };
        assert_eq!(make(1), make(2));
    }
}
