//! `replace_token` hashing (fleet-protocol.md §2.3):
//! `$pbkdf2-sha512$<iterations>$<salt>$<derived>`, PBKDF2-HMAC-SHA512 with a 64-byte random salt
//! and a 32-byte key, both unpadded standard base64. Verification re-derives with the stored
//! iteration count and compares in constant time; a malformed stored hash never verifies.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::pbkdf2;

/// Default iteration count (`server.pdkdf2.iterations`).
pub const DEFAULT_ITERATIONS: u32 = 210_000;
const SALT_LEN: usize = 64;
const KEY_LEN: usize = 32;

/// Hashes `token` for storage.
pub fn hash(token: &str, iterations: u32) -> String {
    use ring::rand::SecureRandom;
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut salt = [0u8; SALT_LEN];
    let _ = ring::rand::SystemRandom::new().fill(&mut salt);
    let mut derived = [0u8; KEY_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        &salt,
        token.as_bytes(),
        &mut derived,
    );
    format!(
        "$pbkdf2-sha512${}${}${}",
        iterations,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(derived)
    )
}

/// Whether `token` matches the stored `hashed` value.
pub fn verify(token: &str, hashed: &str) -> bool {
    let mut parts = hashed.split('$');
    let (Some(""), Some("pbkdf2-sha512"), Some(iter), Some(salt), Some(derived), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(derived)) = (
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(derived),
    ) else {
        return false;
    };
    derived.len() == KEY_LEN
        && pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            token.as_bytes(),
            &derived,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("replace-me", 1000);
        assert!(h.starts_with("$pbkdf2-sha512$1000$"));
        assert!(verify("replace-me", &h));
        assert!(!verify("replace-you", &h));
        assert_ne!(hash("replace-me", 1000), h, "salted");
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in [
            "",
            "plain",
            "$pbkdf2-sha512$x$a$b",
            "$pbkdf2-sha256$1000$AAAA$AAAA",
            "$pbkdf2-sha512$0$AAAA$AAAA",
        ] {
            assert!(!verify("t", bad), "{bad}");
        }
    }
}
