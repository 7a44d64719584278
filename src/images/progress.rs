//! Byte counters for long transfers (`save`): a bar on stderr when stderr
//! is a terminal, nothing otherwise, so logs and pipes stay clean.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display in bytes; inert when stderr is not a terminal.
pub struct ByteProgress {
    bar: Option<ProgressBar>,
}

impl ByteProgress {
    /// `total` is the expected byte count, when known.
    pub fn new(label: &str, total: Option<u64>) -> ByteProgress {
        if !io::stderr().is_terminal() {
            return ByteProgress { bar: None };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
                )
                .expect("valid progress template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}")
                    .expect("valid progress template"),
            ),
        };
        bar.set_message(label.to_string());
        ByteProgress { bar: Some(bar) }
    }

    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Removes the bar (the command prints its own result).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts bytes written through it.
pub struct ProgressWriter<'p, W> {
    pub inner: W,
    pub progress: &'p ByteProgress,
}

impl<W: Write> Write for ProgressWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts bytes read through it (for `load` and `import`). It owns its
/// progress display so it can be boxed as a `dyn Read`.
pub struct ProgressReader<R> {
    pub inner: R,
    pub progress: ByteProgress,
}

impl<R: io::Read> io::Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.progress.finish();
        }
        self.progress.advance(n as u64);
        Ok(n)
    }
}
