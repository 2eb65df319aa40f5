//! Secrets of the local store: random ids and secrets, the digest API key secrets are kept as,
//! and the constant-time comparison `authenticate` uses.
//!
//! Secrets are never stored in clear. Every secret this store hands out is 22 characters drawn
//! uniformly from a 64-letter alphabet by the operating system's CSPRNG: 132 bits of entropy.
//! Against such a secret a plain SHA-256 digest is as strong as a slow password hash: a slow KDF
//! (PBKDF2, scrypt, Argon2) only helps secrets a person chose, whose space can be enumerated;
//! 2^132 cannot, at any speed per guess, and precomputed tables are useless for the same reason
//! (so no salt is needed; the key id is mixed in for domain separation all the same). A fast digest
//! also keeps `authenticate`, which runs on every checkin, cheap.

use ring::rand::SecureRandom;

use super::error::unavailable;
use crate::backend::StoreError;

/// Length of document ids and API key ids (as Elasticsearch's).
pub(super) const ID_LEN: usize = 20;
/// Length of API key secrets (as Elasticsearch's): 22 × 6 = 132 bits.
pub(super) const SECRET_LEN: usize = 22;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const DOMAIN: &[u8] = b"fleet-edge local store api key v1\0";

/// `len` characters from the URL-safe base64 alphabet, uniformly (64 divides 256: no bias).
pub(super) fn random_token(len: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; len];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| unavailable("the system random generator failed"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The stored form of an API key secret: SHA-256 over a domain tag, the key id and the secret.
pub(super) fn secret_digest(id: &str, secret: &str) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(DOMAIN);
    ctx.update(id.as_bytes());
    ctx.update(b"\0");
    ctx.update(secret.as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// Whether two digests are equal, in time independent of where they differ.
pub(super) fn digests_match(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_from_the_alphabet() {
        let a = random_token(SECRET_LEN).unwrap();
        let b = random_token(SECRET_LEN).unwrap();
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }

    #[test]
    fn digests_bind_id_and_secret() {
        let d = secret_digest("id", "secret");
        assert_eq!(d.len(), 32);
        assert!(digests_match(&d, &secret_digest("id", "secret")));
        assert!(!digests_match(&d, &secret_digest("id", "secreT")));
        assert!(!digests_match(&d, &secret_digest("id2", "secret")));
        assert!(!digests_match(&d, &d[..31]));
    }
}
