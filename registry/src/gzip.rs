//! Parallel gzip for pushing layers: a 300 MB layer compresses on every
//! core instead of one.
//!
//! The input is cut into fixed 1 MiB blocks. Each block is deflated on its
//! own, primed with the last 32 KiB of the block before it as a preset
//! dictionary (so matches still reach back across the cut and the ratio
//! stays close to a serial gzip), and ends with a sync flush, which aligns
//! it to a byte boundary so the blocks can simply be concatenated. One
//! empty final block, the CRC-32 and the length close the stream, which is
//! then a single ordinary gzip member that any gunzip reads.
//!
//! A block that does not compress (random data, already-compressed files)
//! is stored instead of deflated: deflating such data at the default level
//! burns most of the CPU time for no gain. Whether a block compresses is
//! judged from a fast deflate of its first 64 KiB, so it is decided by the
//! data alone.
//!
//! The output depends only on the input and the level, never on the number
//! of threads or on timing, so the same layer always gets the same digest
//! (the header has no name and a zero mtime).

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, FlushCompress};

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

/// The compression level layers are pushed with: zlib's default, as
/// Docker and BuildKit use.
pub const DEFAULT_LEVEL: u32 = 6;

/// Compresses `input` into `out` as one gzip member using up to `threads`
/// threads. `progress` is told how many input bytes each step consumed.
/// Returns the number of input bytes.
pub fn compress(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
    threads: usize,
    progress: &dyn Fn(u64),
) -> io::Result<u64> {
    let threads = threads.max(1);
    out.write_all(&HEADER)?;
    let mut crc = crc32fast::Hasher::new();
    let mut total: u64 = 0;
    // The tail of the previous block: the next block's dictionary.
    let mut window: Vec<u8> = Vec::new();
    loop {
        // Read a batch of blocks, then deflate them side by side.
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(threads * 2);
        let mut at_end = false;
        while batch.len() < threads * 2 {
            let block = read_block(input)?;
            if block.is_empty() {
                at_end = true;
                break;
            }
            let short = block.len() < BLOCK_SIZE;
            batch.push(block);
            if short {
                at_end = true;
                break;
            }
        }
        let dictionaries: Vec<&[u8]> =
            (0..batch.len()).map(|i| if i == 0 { &window[..] } else { tail(&batch[i - 1]) }).collect();
        let compressed: Vec<io::Result<Vec<u8>>> = std::thread::scope(|scope| {
            let chunk = batch.len().div_ceil(threads).max(1);
            let handles: Vec<_> = batch
                .chunks(chunk)
                .zip(dictionaries.chunks(chunk))
                .map(|(blocks, dicts)| {
                    scope.spawn(move || {
                        blocks.iter().zip(dicts).map(|(b, d)| deflate_block(b, d, level)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("deflate thread panicked")).collect()
        });
        for (block, deflated) in batch.iter().zip(compressed) {
            out.write_all(&deflated?)?;
            crc.update(block);
            total += block.len() as u64;
            progress(block.len() as u64);
        }
        if let Some(last) = batch.last() {
            window = tail(last).to_vec();
        }
        if at_end {
            break;
        }
    }
    out.write_all(&FINAL_EMPTY_BLOCK)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    // gzip stores the length modulo 2^32.
    out.write_all(&(total as u32).to_le_bytes())?;
    Ok(total)
}

fn tail(block: &[u8]) -> &[u8] {
    &block[block.len().saturating_sub(WINDOW)..]
}

/// Reads up to one block; shorter only at the end of the input.
fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    input.take(BLOCK_SIZE as u64).read_to_end(&mut block)?;
    Ok(block)
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

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        compress(&mut &data[..], &mut out, DEFAULT_LEVEL, threads, &|_| {}).unwrap();
        out
    }

    #[test]
    fn output_is_one_gzip_member_that_decodes_to_the_input() {
        for len in [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, 3 * BLOCK_SIZE + 12_345] {
            let data = sample(len);
            let packed = gzip(&data, 2);
            // The single-member decoder stops after one member: the whole
            // input must come back from it alone.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
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
    fn incompressible_blocks_are_stored_and_compressible_ones_shrink() {
        let mut state = 0x9e37_79b9u32;
        let noise: Vec<u8> = (0..2 * BLOCK_SIZE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let packed = gzip(&noise, 2);
        // Stored blocks cost 5 bytes per 64 KiB, plus header and trailer.
        assert!(packed.len() < noise.len() + noise.len() / 1000 + 64, "{} for {}", packed.len(), noise.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
        assert!(back == noise);
        let text = b"layer data, layer data, and more layer data\n".repeat(50_000);
        assert!(gzip(&text, 2).len() < text.len() / 20);
    }

    /// Pushed layers' compressed digests are remembered (and registries
    /// hold blobs under them): the same layer must always compress to the
    /// same bytes, whatever the implementation underneath. The input mixes
    /// compressible blocks, a block of noise that is stored, and a short
    /// last block.
    #[test]
    fn the_compressed_bytes_of_a_known_input_never_change() {
        let mut state = 0x2545_f491u32;
        let mut input = sample(2 * BLOCK_SIZE);
        input.extend((0..BLOCK_SIZE).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        }));
        input.extend(sample(12_345));
        let digest = |data: &[u8], threads| rbuild_oci::Digest::of(&gzip(data, threads)).to_string();
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
