//! Small shared helpers: random ids (ES-style 20-char URL-safe ids, UUIDs), the Murmur3 routing hash
//! ES uses to pick a shard, ES time-value parsing (`30s`, `240000ms`, `-1`) and a glob matcher for
//! index patterns and `_source` filters.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

/// Random bytes from the system generator (zeroes if it fails, which it does not on Linux).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = SystemRandom::new().fill(&mut b);
    b
}

/// A 20-character URL-safe base64 id, the shape of ES auto-generated document and API key ids.
pub fn random_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<15>())
}

/// A 22-character URL-safe base64 string (index UUIDs, API key secrets).
pub fn random_uuid22() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// Murmur3 x86_32 (seed 0), as Lucene's `StringHelper.murmurhash3_x86_32`.
pub fn murmur3(data: &[u8]) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k: u32 = 0;
    if tail.len() >= 3 {
        k ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        k ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        k ^= u32::from(tail[0]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// The shard a routing value (the `_id` by default) goes to, as ES's `IndexRouting` computes it
/// with the default number of routing shards.
pub fn shard_for(routing: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut bytes = Vec::with_capacity(routing.len() * 2);
    for c in routing.encode_utf16() {
        bytes.push(c as u8);
        bytes.push((c >> 8) as u8);
    }
    let hash = murmur3(&bytes);
    // default routing shards: shards * 2^floor(log2(1024 / shards)), at least shards
    let mut routing_shards = shards;
    while routing_shards * 2 <= 1024 {
        routing_shards *= 2;
    }
    let factor = routing_shards / shards;
    (hash.rem_euclid(routing_shards as i32) as u32) / factor
}

/// Parses an ES time value (`30s`, `240000ms`, `1m`, `2h`, `1d`, `500micros`, `-1`).
pub fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "-1" || s == "0" {
        return Some(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "nanos" => n / 1e9,
        "micros" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    // clamp to a year: deadlines are `Instant::now() + d`, which must not overflow
    Duration::try_from_secs_f64(secs.min(365.0 * 86400.0)).ok()
}

/// Simple glob match with `*` wildcards.
pub fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] || p[pi] == '?') && p[pi] != '*' {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Percent-decodes a URL component (`+` is kept literally in paths, decoded as space in queries).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a path segment or query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_known_vectors() {
        assert_eq!(murmur3(b""), 0);
        assert_eq!(murmur3(b"hello") as u32, 0x248b_fa47);
        assert_eq!(murmur3(b"Hello, world!") as u32, 0xc036_3e43);
    }

    #[test]
    fn ids_have_es_lengths() {
        assert_eq!(random_id().len(), 20);
        assert_eq!(random_uuid22().len(), 22);
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time("240000ms"), Some(Duration::from_secs(240)));
        assert_eq!(parse_time("4m"), Some(Duration::from_secs(240)));
        assert_eq!(parse_time("50ms"), Some(Duration::from_millis(50)));
        assert_eq!(parse_time("-1"), Some(Duration::ZERO));
        assert_eq!(parse_time("x"), None);
        assert_eq!(
            parse_time("99999999999999999999d"),
            Some(Duration::from_secs(365 * 86400))
        );
    }

    #[test]
    fn globbing_and_decoding() {
        assert!(glob(".fleet-*", ".fleet-agents"));
        assert!(glob("data.*", "data.outputs"));
        assert!(!glob("data.*", "dat"));
        assert!(glob("*", ""));
        assert_eq!(percent_decode("a%2Cb+c", true), "a,b c");
        assert_eq!(percent_decode("%zz%", false), "%zz%");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn shard_routing_is_stable() {
        assert_eq!(shard_for("x", 1), 0);
        let s = shard_for("1", 2);
        assert!(s < 2);
        assert_eq!(shard_for("1", 2), s);
    }
}
