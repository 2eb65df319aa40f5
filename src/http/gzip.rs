//! gzip in both directions: capped, streaming decompression of request bodies
//! (`Content-Encoding: gzip`, agents ≥ 9.4 send checkin bodies this way) and level-1 compression of
//! response bodies (spec 9.2 `server.compression_level` 1).
//!
//! Decompression reads into a fixed-size scratch buffer and grows the output only up to the cap, so a
//! gzip bomb never makes this module allocate more than the cap plus a constant (the scratch buffer
//! and the inflater's own window). Concatenated gzip members are decoded one after another, as Go's
//! `gzip.Reader` (multistream by default) does. Used by `decode.rs` and `encode.rs`.

use std::io::{Read, Write};

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::error::HttpError;

/// Size of the scratch buffer the inflater writes into; the only allocation besides the output and
/// the inflater state.
pub(crate) const SCRATCH: usize = 16 * 1024;

/// Response compression level (spec 9.2: `server.compression_level` default 1, best speed).
const LEVEL: u32 = 1;

/// Gunzips `input` into a new vector of at most `cap` bytes (`cap == 0`: unlimited).
pub fn decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    decompress_into(input, cap, &mut out)?;
    Ok(out)
}

/// Gunzips `input`, appending to `out`, which never holds (nor reserves) more than `cap` bytes
/// (`cap == 0`: unlimited). More output than `cap` → [`HttpError::DecompressedTooLarge`]; anything
/// that is not a complete, valid gzip stream → [`HttpError::BadGzip`]. On error `out` holds a
/// prefix of the output; its capacity shows how much was allocated.
pub fn decompress_into(input: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
    let mut decoder = MultiGzDecoder::new(input);
    let mut scratch = vec![0u8; SCRATCH];
    loop {
        let n = match decoder.read(&mut scratch) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HttpError::BadGzip),
        };
        let chunk = scratch.get(..n).ok_or(HttpError::BadGzip)?;
        append_capped(out, chunk, cap)?;
    }
}

/// Appends `chunk` to `out`, growing the allocation geometrically but never past `cap`.
fn append_capped(out: &mut Vec<u8>, chunk: &[u8], cap: usize) -> Result<(), HttpError> {
    let needed = out
        .len()
        .checked_add(chunk.len())
        .ok_or(HttpError::DecompressedTooLarge)?;
    if cap != 0 && needed > cap {
        return Err(HttpError::DecompressedTooLarge);
    }
    if needed > out.capacity() {
        let mut target = needed.max(out.capacity().saturating_mul(2)).max(SCRATCH);
        if cap != 0 {
            target = target.min(cap);
        }
        out.reserve_exact(target - out.len());
    }
    out.extend_from_slice(chunk);
    Ok(())
}

/// gzips `raw` at level 1. `None` only if the in-memory encoder reports an error (it cannot when
/// writing to a `Vec`); the caller then sends the body uncompressed.
pub fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(raw.len() / 4 + 64),
        Compression::new(LEVEL),
    );
    enc.write_all(raw).ok()?;
    enc.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let z = compress(&data).unwrap();
        assert!(z.len() < data.len());
        assert_eq!(decompress(&z, 0).unwrap(), data);
        assert_eq!(decompress(&z, data.len()).unwrap(), data);
    }

    #[test]
    fn exactly_at_cap_is_ok_one_over_is_not() {
        let data = vec![b'x'; 5000];
        let z = gzip(&data);
        assert_eq!(decompress(&z, 5000).unwrap().len(), 5000);
        assert_eq!(decompress(&z, 4999), Err(HttpError::DecompressedTooLarge));
    }

    #[test]
    fn gzip_bomb_is_cut_at_the_cap_without_allocating_past_it() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
        let cap = 1024 * 1024;
        let mut out = Vec::new();
        assert_eq!(
            decompress_into(&bomb, cap, &mut out),
            Err(HttpError::DecompressedTooLarge)
        );
        // The output vector is the only allocation that grows with the data; its capacity is the
        // most it ever held (a Vec never shrinks by itself).
        assert!(out.capacity() <= cap, "capacity {}", out.capacity());
        assert!(out.len() <= cap);
    }

    #[test]
    fn corrupt_streams_are_bad_gzip() {
        let good = gzip(b"{\"status\":\"online\"}");
        // Not gzip at all.
        assert_eq!(
            decompress(b"{\"status\":\"online\"}", 0),
            Err(HttpError::BadGzip)
        );
        // Truncated.
        assert_eq!(
            decompress(&good[..good.len() - 3], 0),
            Err(HttpError::BadGzip)
        );
        // CRC flipped.
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 6;
        bad_crc[at] ^= 0xff;
        assert_eq!(decompress(&bad_crc, 0), Err(HttpError::BadGzip));
        // Trailing garbage after a member (Go's multistream reader fails the same way).
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!!!");
        assert_eq!(decompress(&trailing, 0), Err(HttpError::BadGzip));
        // Only a header.
        assert_eq!(decompress(&good[..10], 0), Err(HttpError::BadGzip));
    }

    #[test]
    fn concatenated_members_are_all_decoded() {
        let mut z = gzip(b"hello ");
        z.extend_from_slice(&gzip(b"world"));
        assert_eq!(decompress(&z, 0).unwrap(), b"hello world");
    }

    #[test]
    fn compress_empty_is_valid_gzip() {
        let z = compress(b"").unwrap();
        assert_eq!(decompress(&z, 0).unwrap(), b"");
    }
}
