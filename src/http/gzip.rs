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

/// Raw deflate of `raw` at level 1 ending on a byte boundary (a sync flush, no final block), to
/// be placed inside a [`Gzip`] stream: many of these and stored runs concatenate into one
/// valid stream, since none refers back past its own start. What a policy revision precompresses
/// once for all its agents (`transform::prepared_policy`).
pub fn deflate_part(raw: &[u8]) -> Option<Vec<u8>> {
    let mut c = flate2::Compress::new(Compression::new(LEVEL), false);
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).ok()?;
        let rest = raw.get(consumed..)?;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        c.compress_vec(rest, &mut out, flate2::FlushCompress::Sync)
            .ok()?;
        // All taken, and the flush complete: it returned with room to spare in the output.
        if usize::try_from(c.total_in()).ok()? == raw.len() && out.len() < out.capacity() {
            return Some(out);
        }
    }
}

/// A gzip stream put together from precompressed parts ([`deflate_part`]) and stored (not
/// compressed) runs, with the CRC and length of everything it holds: what one agent's
/// POLICY_CHANGE is sent as, its shared text compressed once per revision and its own few bytes
/// (agent id, output keys) stored.
pub struct Gzip {
    out: Vec<u8>,
    crc: flate2::Crc,
}

impl Gzip {
    /// The header (no name, no time, unknown OS) and room for about `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + 32);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        Self {
            out,
            crc: flate2::Crc::new(),
        }
    }

    /// Appends `raw` as `deflated` ([`deflate_part`] of `raw`).
    pub fn precompressed(&mut self, raw: &[u8], deflated: &[u8]) {
        self.crc.update(raw);
        self.out.extend_from_slice(deflated);
    }

    /// Appends `raw` in stored blocks (a non-final block each: header byte, `LEN`, `NLEN`).
    pub fn stored(&mut self, raw: &[u8]) {
        self.crc.update(raw);
        for chunk in raw.chunks(usize::from(u16::MAX)) {
            let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            self.out.push(0);
            self.out.extend_from_slice(&len.to_le_bytes());
            self.out.extend_from_slice(&(!len).to_le_bytes());
            self.out.extend_from_slice(chunk);
        }
    }

    /// The stream: an empty final stored block, then the CRC-32 and length trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precompressed_parts_and_stored_runs_make_one_gzip_stream() {
        let a: Vec<u8> = b"{\"policy\":".iter().copied().cycle().take(5000).collect();
        let b = b"\"an-agent-id\"".to_vec();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 7) as u8).collect();
        let mut z = Gzip::new(0);
        z.precompressed(&a, &deflate_part(&a).unwrap());
        z.stored(&b);
        z.precompressed(&a, &deflate_part(&a).unwrap());
        z.stored(&big);
        z.stored(b"");
        z.precompressed(b"", &deflate_part(b"").unwrap());
        let z = z.finish();
        let whole = [&a[..], &b, &a, &big].concat();
        // Ours, and flate2's own reader (which, like Go's, checks the CRC and length).
        assert_eq!(decompress(&z, 0).unwrap(), whole);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, whole);
        assert!(deflate_part(&a).unwrap().len() < a.len() / 10, "compressed");
    }

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
