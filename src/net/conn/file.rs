//! Streaming a [`Body::File`](crate::http::Body::File) response: the connection's output buffer
//! is refilled from the file, one chunk at a time, only once the socket (and TLS) took the
//! previous chunk, so a download of any size holds one pooled buffer per connection and never
//! the file. Positional reads (`pread`) leave the shared file handle without a cursor.
//!
//! The hook points are in `conn.rs`: `queue` starts a stream after the head is encoded,
//! `flush` calls [`FileStream::refill`] whenever the buffer is drained.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::http::FileBody;

/// Bytes read from the file per refill: the pool's buffer size, so buffers stay poolable.
pub(super) const FILE_CHUNK: usize = 16 * 1024;

/// The unsent part of a file body.
#[derive(Debug)]
pub(super) struct FileStream {
    file: Arc<std::fs::File>,
    next: u64,
    remaining: u64,
}

impl FileStream {
    /// The stream of `body`'s range.
    pub(super) fn new(body: &FileBody) -> Self {
        Self {
            file: Arc::clone(&body.file),
            next: body.offset,
            remaining: body.len,
        }
    }

    /// Whether every byte of the range was handed out.
    pub(super) fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Appends the next (up to) `chunk` bytes of the range to `out`. A file that ends before the
    /// range does (truncated while being served) is an error: the `Content-Length` already sent
    /// cannot be honoured, so the connection must close.
    pub(super) fn refill(&mut self, out: &mut Vec<u8>, chunk: usize) -> io::Result<()> {
        let want = usize::try_from(self.remaining).map_or(chunk, |r| r.min(chunk));
        let start = out.len();
        out.resize(start + want, 0);
        let mut filled = 0;
        while filled < want {
            let Some(dest) = out.get_mut(start + filled..) else {
                break;
            };
            match self.file.read_at(dest, self.next) {
                Ok(0) => {
                    out.truncate(start + filled);
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shorter than the response announced (truncated while served)",
                    ));
                }
                Ok(n) => {
                    filled += n;
                    self.next += n as u64;
                    self.remaining -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(start + filled);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, Arc<std::fs::File>) {
        let path = std::env::temp_dir().join(format!(
            "fleet-edge-filestream-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        (path, file)
    }

    #[test]
    fn streams_exactly_the_range_in_chunks() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (path, file) = temp_file(&data);
        let mut stream = FileStream::new(&FileBody {
            file,
            offset: 123,
            len: 5000,
        });
        let mut sent = Vec::new();
        while !stream.is_done() {
            let mut out = Vec::new();
            stream.refill(&mut out, 1024).unwrap();
            assert!(out.len() <= 1024);
            sent.extend_from_slice(&out);
        }
        assert_eq!(sent, &data[123..5123]);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_file_shorter_than_the_range_is_an_error() {
        let (path, file) = temp_file(&[7u8; 100]);
        let mut stream = FileStream::new(&FileBody {
            file,
            offset: 50,
            len: 80,
        });
        let mut out = Vec::new();
        let err = stream.refill(&mut out, 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out.len(), 50, "what was read is kept");
        let _ = std::fs::remove_file(path);
    }
}
