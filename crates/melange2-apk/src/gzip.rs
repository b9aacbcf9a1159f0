//! Deterministic gzip members: a (parallel) writer and a single-member reader.
//!
//! [`GzWriter`] produces exactly one RFC 1952 gzip member (MTIME 0, no file
//! name, OS 255). The input is cut into blocks of a fixed size; each block is
//! deflated independently (raw deflate ended with a sync flush, the last block
//! with a final flush) and the pieces are concatenated, so the output bytes
//! depend only on the input, the level and the block size — never on the
//! number of threads. Each block of 64 KiB or more is deflated in the mode its
//! own bytes call for: stored when their byte entropy is nearly 8 bits (random,
//! already compressed), Huffman coding only when two 16 KiB samples show that
//! matches do not pay off (base64, encrypted data), plain deflate otherwise. With more than one thread, blocks are compressed by a
//! small worker pool while the caller keeps producing input; at most
//! `2 × threads` blocks are in flight, so memory stays bounded.
//!
//! [`MemberReader`] decodes one member from a [`BufRead`], verifies CRC-32 and
//! ISIZE and leaves the reader positioned right after the member, which is how
//! APK files are split into their signature/control/data members.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{
    Deflate, DeflateConfig, DeflateFlush, Status as DeflateStatus, Strategy, compress_bound,
};

/// Default size of independently compressed blocks (1 MiB). Changing it
/// changes the output bytes, so it is a fixed constant of the format we emit.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// Default deflate level.
pub const DEFAULT_LEVEL: u32 = 6;

/// gzip member header written by [`GzWriter`]: no flags, MTIME 0, XFL 0, OS 255.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Compression settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzOptions {
    /// Deflate level 0–9.
    pub level: u32,
    /// Worker threads; 1 compresses on the calling thread. Does not affect output bytes.
    pub threads: usize,
    /// Block size in bytes (affects output bytes; keep the default for reproducibility).
    pub block_size: usize,
}

impl Default for GzOptions {
    fn default() -> Self {
        GzOptions {
            level: DEFAULT_LEVEL,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

impl GzOptions {
    /// Same settings with a single thread.
    pub fn single_threaded(self) -> Self {
        GzOptions { threads: 1, ..self }
    }
}

/// Blocks shorter than this are always deflated with the plain strategy (control members,
/// indexes and small files keep the bytes of a plain deflate).
const CLASSIFY_MIN: usize = 64 * 1024;
/// Length of each of the two samples that tell whether matches pay off in a block.
const SAMPLE_LEN: usize = 16 * 1024;

/// How one block is deflated: chosen from the block's bytes alone, so the output never
/// depends on the thread count (docs/packaging.md, "Performance").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockMode {
    /// Plain deflate at the requested level.
    Plain,
    /// Huffman coding only: the block's bytes repeat no longer strings (base64, encrypted or
    /// compressed data), so searching for matches would only cost time.
    HuffmanOnly,
    /// Stored: the bytes are as good as random; no coding makes them smaller.
    Stored,
}

/// Order-0 entropy of `data` in bytes: what Huffman coding of single bytes can reach.
fn entropy_bytes(data: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = c as f64;
            -c * (c / n).log2()
        })
        .sum();
    bits / 8.0
}

/// Pick the mode of a block: stored when its byte entropy is nearly 8 bits, Huffman only when
/// two samples deflated with matches come out no smaller than their byte entropy.
fn classify(data: &[u8], level: u32) -> io::Result<BlockMode> {
    if level == 0 || data.len() < CLASSIFY_MIN {
        return Ok(BlockMode::Plain);
    }
    if entropy_bytes(data) >= data.len() as f64 * 0.995 {
        return Ok(BlockMode::Stored);
    }
    let (mut matched, mut entropy) = (0usize, 0.0f64);
    for at in [data.len() / 4, data.len() * 3 / 4] {
        let end = (at + SAMPLE_LEN).min(data.len());
        let sample = &data[at.min(end)..end];
        matched += run_deflate(sample, 2, Strategy::Default, false)?.len();
        entropy += entropy_bytes(sample);
    }
    Ok(if matched as f64 >= entropy * 0.985 {
        BlockMode::HuffmanOnly
    } else {
        BlockMode::Plain
    })
}

/// Raw deflate of `data` in one call: `last` ends the deflate stream, otherwise the output
/// ends with a sync flush (byte aligned, not final).
fn run_deflate(data: &[u8], level: u32, strategy: Strategy, last: bool) -> io::Result<Vec<u8>> {
    let level = i32::try_from(level.min(9)).unwrap_or(6);
    let mut d = Deflate::new_with_config(DeflateConfig {
        level,
        window_bits: -15,
        strategy,
        ..DeflateConfig::default()
    });
    let flush = if last {
        DeflateFlush::Finish
    } else {
        DeflateFlush::SyncFlush
    };
    // worst case of deflate (stored blocks) plus the flush marker, so one call is enough
    let mut out = vec![0u8; compress_bound(data.len()) + 64];
    let status = d
        .compress(data, &mut out, flush)
        .map_err(|e| io::Error::other(format!("deflate: {e:?}")))?;
    let complete = usize::try_from(d.total_in()).ok() == Some(data.len());
    if !complete || (last && status != DeflateStatus::StreamEnd) {
        return Err(io::Error::other("deflate: output buffer too small"));
    }
    out.truncate(usize::try_from(d.total_out()).unwrap_or(out.len()));
    Ok(out)
}

/// Deflate one block in the mode its bytes call for. `last` ends the deflate stream,
/// otherwise the output ends with a sync flush (byte aligned, not final).
fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    match classify(data, level)? {
        BlockMode::Plain => run_deflate(data, level, Strategy::Default, last),
        BlockMode::HuffmanOnly => run_deflate(data, level, Strategy::HuffmanOnly, last),
        BlockMode::Stored => run_deflate(data, 0, Strategy::Default, last),
    }
}

type Job = (Vec<u8>, bool, SyncSender<io::Result<Vec<u8>>>);

struct Pool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, level: u32) -> Self {
        let (tx, rx) = sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok((data, last, reply)) = job else { return };
                        // the receiver may be gone if the writer was dropped
                        let _ = reply.send(deflate_block(&data, level, last));
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(tx),
            workers,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Single-member gzip writer, optionally parallel; see the module docs.
pub struct GzWriter<W: Write> {
    out: Option<W>,
    opts: GzOptions,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    pool: Option<Pool>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    header_written: bool,
}

impl<W: Write> std::fmt::Debug for GzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzWriter")
            .field("opts", &self.opts)
            .field("total_in", &self.total_in)
            .finish_non_exhaustive()
    }
}

impl<W: Write> GzWriter<W> {
    /// Create a writer emitting one gzip member into `out`.
    pub fn new(out: W, opts: GzOptions) -> Self {
        let opts = GzOptions {
            threads: opts.threads.max(1),
            block_size: opts.block_size.max(4096),
            level: opts.level.min(9),
        };
        let pool = (opts.threads > 1).then(|| Pool::new(opts.threads, opts.level));
        GzWriter {
            out: Some(out),
            opts,
            buf: Vec::with_capacity(opts.block_size),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            pool,
            pending: VecDeque::new(),
            header_written: false,
        }
    }

    /// Uncompressed bytes written so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out()?.write_all(&GZIP_HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let block = rx
                .recv()
                .map_err(|_| io::Error::other("compression worker died"))??;
            self.out()?.write_all(&block)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.opts.block_size));
        let level = self.opts.level;
        let sender = self.pool.as_ref().and_then(|p| p.jobs.clone());
        match sender {
            None => {
                let block = deflate_block(&data, level, last)?;
                self.out()?.write_all(&block)?;
            }
            Some(jobs) => {
                while self.pending.len() >= self.opts.threads * 2 {
                    self.drain_one()?;
                }
                let (tx, rx) = sync_channel(1);
                jobs.send((data, last, tx))
                    .map_err(|_| io::Error::other("compression workers stopped"))?;
                self.pending.push_back(rx);
            }
        }
        Ok(())
    }

    /// Finish the member (last block, CRC-32, ISIZE) and return the inner writer.
    ///
    /// # Errors
    /// I/O errors of the inner writer or a failed worker.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        let isize = (self.total_in & 0xffff_ffff) as u32;
        let out = self.out()?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&isize.to_le_bytes())?;
        out.flush()?;
        self.pool.take();
        self.out
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        self.crc.update(data);
        self.total_in += n as u64;
        while !data.is_empty() {
            if self.buf.len() == self.opts.block_size {
                // only dispatch a full block once more data is known to follow,
                // so the final block is never empty unless the input is.
                self.dispatch(false)?;
            }
            let room = self.opts.block_size - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compress `data` into one gzip member with the given options.
///
/// # Errors
/// Only on internal deflate failures.
pub fn compress(data: &[u8], opts: GzOptions) -> io::Result<Vec<u8>> {
    let mut w = GzWriter::new(Vec::new(), opts.single_threaded());
    w.write_all(data)?;
    w.finish()
}

/// Maximum length accepted for the optional FNAME/FCOMMENT header fields.
const MAX_HEADER_STRING: usize = 64 * 1024;

/// Decoder for exactly one gzip member read from a [`BufRead`]. Reading returns
/// `Ok(0)` at the end of the member after CRC-32/ISIZE were verified; the
/// underlying reader is then positioned at the first byte after the member.
pub struct MemberReader<'a, R: BufRead> {
    inner: &'a mut R,
    inflate: Decompress,
    crc: crc32fast::Hasher,
    out_len: u64,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for MemberReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberReader")
            .field("out_len", &self.out_len)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_byte<R: BufRead>(r: &mut R) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)
        .map_err(|_| io::Error::new(io::ErrorKind::UnexpectedEof, "truncated gzip header"))?;
    Ok(b[0])
}

/// Returns true when `r` is at end of input (no further member).
///
/// # Errors
/// I/O errors from the reader.
pub fn at_eof<R: BufRead>(r: &mut R) -> io::Result<bool> {
    Ok(r.fill_buf()?.is_empty())
}

impl<'a, R: BufRead> MemberReader<'a, R> {
    /// Parse the member header. Fails on anything that is not a deflate gzip member.
    ///
    /// # Errors
    /// `InvalidData`/`UnexpectedEof` for malformed or truncated headers.
    pub fn new(inner: &'a mut R) -> io::Result<Self> {
        let mut hdr = [0u8; 10];
        inner.read_exact(&mut hdr).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(io::ErrorKind::UnexpectedEof, "truncated gzip header")
            } else {
                e
            }
        })?;
        if hdr[0] != 0x1f || hdr[1] != 0x8b {
            return Err(bad("not a gzip stream (bad magic)"));
        }
        if hdr[2] != 8 {
            return Err(bad("unsupported gzip compression method"));
        }
        let flags = hdr[3];
        if flags & 0xe0 != 0 {
            return Err(bad("reserved gzip header flags set"));
        }
        if flags & 0x04 != 0 {
            let lo = read_byte(inner)?;
            let hi = read_byte(inner)?;
            let len = u64::from(u16::from_le_bytes([lo, hi]));
            let skipped = io::copy(&mut inner.by_ref().take(len), &mut io::sink())?;
            if skipped != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated gzip header",
                ));
            }
        }
        for flag in [0x08u8, 0x10] {
            if flags & flag != 0 {
                let mut n = 0usize;
                loop {
                    if read_byte(inner)? == 0 {
                        break;
                    }
                    n += 1;
                    if n > MAX_HEADER_STRING {
                        return Err(bad("gzip header string too long"));
                    }
                }
            }
        }
        if flags & 0x02 != 0 {
            read_byte(inner)?;
            read_byte(inner)?;
        }
        Ok(MemberReader {
            inner,
            inflate: Decompress::new(false),
            crc: crc32fast::Hasher::new(),
            out_len: 0,
            done: false,
        })
    }

    /// Uncompressed bytes produced so far.
    pub fn uncompressed_len(&self) -> u64 {
        self.out_len
    }

    fn finish_member(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.inner
            .read_exact(&mut trailer)
            .map_err(|_| io::Error::new(io::ErrorKind::UnexpectedEof, "truncated gzip trailer"))?;
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != self.crc.clone().finalize() {
            return Err(bad("gzip CRC-32 mismatch"));
        }
        if u64::from(isize) != self.out_len & 0xffff_ffff {
            return Err(bad("gzip length mismatch"));
        }
        self.done = true;
        Ok(())
    }

    /// Read and discard the rest of the member.
    ///
    /// # Errors
    /// Decoding errors.
    pub fn skip_to_end(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink())?;
        Ok(())
    }
}

impl<R: BufRead> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let status = self
                .inflate
                .decompress(input, buf, FlushDecompress::None)
                .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
            let used = usize::try_from(self.inflate.total_in() - before_in)
                .map_err(|_| bad("deflate overflow"))?;
            let produced = usize::try_from(self.inflate.total_out() - before_out)
                .map_err(|_| bad("deflate overflow"))?;
            self.inner.consume(used);
            self.crc.update(&buf[..produced]);
            self.out_len += produced as u64;
            if status == Status::StreamEnd {
                self.finish_member()?;
                return Ok(produced);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated gzip stream",
                ));
            }
            if used == 0 && status == Status::BufError {
                return Err(bad("deflate stream made no progress"));
            }
        }
    }
}

/// Observer of consumed bytes installed on a [`TapReader`].
pub type Tap = Box<dyn FnMut(&[u8]) + Send>;

/// A [`BufRead`] adaptor that counts consumed bytes and feeds them to an
/// optional observer (used to hash the compressed bytes of each member).
pub struct TapReader<R: BufRead> {
    inner: R,
    consumed: u64,
    tap: Option<Tap>,
}

impl<R: BufRead> std::fmt::Debug for TapReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapReader")
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> TapReader<R> {
    /// Wrap a reader.
    pub fn new(inner: R) -> Self {
        TapReader {
            inner,
            consumed: 0,
            tap: None,
        }
    }
    /// Total bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
    /// Install (or remove) the observer of consumed bytes.
    pub fn set_tap(&mut self, tap: Option<Tap>) {
        self.tap = tap;
    }
    /// Unwrap.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: BufRead> Read for TapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for TapReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Some(tap) = self.tap.as_mut()
            && let Ok(buf) = self.inner.fill_buf()
        {
            let n = amt.min(buf.len());
            tap(&buf[..n]);
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 < 4 {
                    b'a' + (x >> 28) as u8
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize, block: usize) -> Vec<u8> {
        let mut w = GzWriter::new(
            Vec::new(),
            GzOptions {
                level: 6,
                threads,
                block_size: block,
            },
        );
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn parallel_equals_single_and_decodes() {
        for size in [0usize, 1, 4096, 4097, 3 * 8192, 100_000] {
            let data = sample(size);
            let a = gz(&data, 1, 8192);
            let b = gz(&data, 3, 8192);
            assert_eq!(a, b, "size {size}");
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&a[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
            let mut r = io::BufReader::new(&a[..]);
            let mut m = MemberReader::new(&mut r).unwrap();
            let mut out2 = Vec::new();
            m.read_to_end(&mut out2).unwrap();
            assert_eq!(out2, data);
            assert!(at_eof(&mut r).unwrap());
        }
    }

    /// xorshift bytes: as good as random for deflate.
    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    /// base64 alphabet over random bytes: 6 bits of entropy per byte, no repeated strings.
    fn base64ish(n: usize, seed: u64) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        random(n, seed)
            .into_iter()
            .map(|b| ALPHABET[usize::from(b & 63)])
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        let words = [
            "lib",
            "usr",
            "share",
            "doc",
            "copyright",
            "the ",
            "and ",
            "GPL-2",
        ];
        let mut out = Vec::with_capacity(n + 16);
        let mut i = 0usize;
        while out.len() < n {
            out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
            i += 1;
        }
        out.truncate(n);
        out
    }

    #[test]
    fn block_modes_follow_the_bytes() {
        let mib = 1 << 20;
        assert_eq!(classify(&random(mib, 3), 6).unwrap(), BlockMode::Stored);
        assert_eq!(
            classify(&base64ish(mib, 5), 6).unwrap(),
            BlockMode::HuffmanOnly
        );
        assert_eq!(classify(&text(mib), 6).unwrap(), BlockMode::Plain);
        // small blocks and level 0 keep plain deflate
        assert_eq!(classify(&random(4096, 3), 6).unwrap(), BlockMode::Plain);
        assert_eq!(classify(&random(mib, 3), 0).unwrap(), BlockMode::Plain);
    }

    #[test]
    fn mixed_blocks_decode_and_ignore_threads() {
        let mut data = text(700_000);
        data.extend(random(1_500_000, 9));
        data.extend(base64ish(1_300_000, 11));
        data.extend(text(900_000));
        let one = gz(&data, 1, DEFAULT_BLOCK_SIZE);
        let three = gz(&data, 3, DEFAULT_BLOCK_SIZE);
        assert_eq!(one, three);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        // random stays (about) its size, base64 loses a quarter, text nearly everything
        let random_part = 1_500_000.0;
        let base64_part = 1_300_000.0 * 0.76;
        let len = one.len() as f64;
        assert!(len < random_part + base64_part + 200_000.0, "{len}");
        assert!(len > random_part + base64_part, "{len}");
    }

    #[test]
    fn member_reader_stops_at_boundary() {
        let mut both = compress(b"hello", GzOptions::default()).unwrap();
        both.extend(compress(b"world", GzOptions::default()).unwrap());
        let mut r = io::BufReader::new(&both[..]);
        let mut s = String::new();
        MemberReader::new(&mut r)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello");
        s.clear();
        MemberReader::new(&mut r)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "world");
        assert!(at_eof(&mut r).unwrap());
    }

    #[test]
    fn corrupt_and_truncated_are_errors() {
        let data = sample(50_000);
        let g = gz(&data, 1, 8192);
        for cut in [5, 12, g.len() / 2, g.len() - 3] {
            let mut r = io::BufReader::new(&g[..cut]);
            let res = MemberReader::new(&mut r).and_then(|mut m| io::copy(&mut m, &mut io::sink()));
            assert!(res.is_err(), "cut {cut}");
        }
        let mut bad = g.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // CRC
        let mut r = io::BufReader::new(&bad[..]);
        let mut m = MemberReader::new(&mut r).unwrap();
        assert!(io::copy(&mut m, &mut io::sink()).is_err());
    }
}
