//! RSA key generation for the self-signed certificates (Elastic Defend needs RSA for the Fleet
//! Server connection). ring, our crypto provider, signs with RSA keys but cannot make them, so
//! this makes one as FIPS 186-5 appendix A.1.3 does: two random primes of half the modulus size
//! with the top two bits set (the modulus has exactly `bits` bits), `p - 1` and `q - 1` prime to
//! e = 65537, `|p - q| > 2^(bits/2 - 100)`, Miller–Rabin with random bases (more rounds than
//! table B.1 asks for 2^-100), `d = e^-1 mod lcm(p - 1, q - 1)` and `d > 2^(bits/2)`. The
//! arithmetic is num-bigint's. The key is then encoded as PKCS#8 and handed back only after
//! ring has loaded it (ring checks `p·q = n` and the CRT parameters) and a signature made with
//! it verifies under its public key (the pairwise consistency test).

use num_bigint::BigUint;
use ring::rand::SecureRandom;

/// The public exponent.
const E: u32 = 65_537;

/// Miller–Rabin rounds per candidate that passed trial division (FIPS 186-5 table B.1 asks 5
/// for 1024-bit primes at 2^-100; more is cheap next to the search).
const ROUNDS: usize = 12;

/// Why no key was made.
#[derive(Debug, thiserror::Error)]
pub enum RsaGenError {
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// ring refused the key or its signature did not verify (a bug here, never expected).
    #[error("the generated RSA key failed its self-check: {0}")]
    SelfCheck(String),
}

/// A new RSA private key of `bits` bits (a multiple of 16, at least 2048), PKCS#8 DER.
pub fn generate_pkcs8(bits: usize, rng: &dyn SecureRandom) -> Result<Vec<u8>, RsaGenError> {
    let e = BigUint::from(E);
    let one = BigUint::from(1u32);
    let half = bits / 2;
    let small = small_primes(20_000);
    loop {
        let p = prime(half, &small, rng)?;
        let q = prime(half, &small, rng)?;
        let gap = if p > q { &p - &q } else { &q - &p };
        if gap.bits() <= (half as u64).saturating_sub(100) {
            continue;
        }
        let (p, q) = if p > q { (p, q) } else { (q, p) };
        let n = &p * &q;
        if n.bits() != bits as u64 {
            continue;
        }
        let (p1, q1) = (&p - &one, &q - &one);
        let lambda = &p1 / gcd(&p1, &q1) * &q1;
        let Some(d) = e.modinv(&lambda) else {
            continue;
        };
        if d.bits() <= half as u64 {
            continue;
        }
        let Some(q_inv) = q.modinv(&p) else {
            continue;
        };
        let dp = &d % &p1;
        let dq = &d % &q1;
        let rsa_private_key = sequence(&[
            integer(&BigUint::from(0u32)),
            integer(&n),
            integer(&e),
            integer(&d),
            integer(&p),
            integer(&q),
            integer(&dp),
            integer(&dq),
            integer(&q_inv),
        ]);
        let pkcs8 = sequence(&[
            integer(&BigUint::from(0u32)),
            // AlgorithmIdentifier { rsaEncryption, NULL }
            sequence(&[
                tlv(
                    0x06,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                ),
                tlv(0x05, &[]),
            ]),
            tlv(0x04, &rsa_private_key),
        ]);
        self_check(&pkcs8, rng)?;
        return Ok(pkcs8);
    }
}

/// ring loads the key (its consistency checks) and a signature made with it verifies.
fn self_check(pkcs8: &[u8], rng: &dyn SecureRandom) -> Result<(), RsaGenError> {
    use ring::signature::{self, RsaKeyPair};
    let fail = |e: &dyn std::fmt::Display| RsaGenError::SelfCheck(e.to_string());
    let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| fail(&e))?;
    let message = b"fleet-edge pairwise consistency test";
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig)
        .map_err(|e| fail(&e))?;
    signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public().as_ref(),
    )
    .verify(message, &sig)
    .map_err(|e| fail(&e))
}

/// A random prime of exactly `bits` bits with its top two bits set and `p mod e != 1`.
fn prime(bits: usize, small: &[u32], rng: &dyn SecureRandom) -> Result<BigUint, RsaGenError> {
    let e = BigUint::from(E);
    let one = BigUint::from(1u32);
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    loop {
        rng.fill(&mut bytes).map_err(|_| RsaGenError::Random)?;
        let extra = bytes.len() * 8 - bits;
        if let Some(first) = bytes.first_mut() {
            *first &= 0xff >> extra;
            *first |= 0xc0 >> extra;
        }
        if let Some(last) = bytes.last_mut() {
            *last |= 1;
        }
        let candidate = BigUint::from_bytes_be(&bytes);
        if small.iter().any(|&s| (&candidate % s) == BigUint::ZERO) {
            continue;
        }
        if &candidate % &e == one {
            continue;
        }
        if probably_prime(&candidate, ROUNDS, rng)? {
            return Ok(candidate);
        }
    }
}

/// Miller–Rabin with `rounds` random bases in [2, n - 2]; `n` odd and large.
fn probably_prime(n: &BigUint, rounds: usize, rng: &dyn SecureRandom) -> Result<bool, RsaGenError> {
    let one = BigUint::from(1u32);
    let two = BigUint::from(2u32);
    let n1 = n - &one;
    let s = n1.trailing_zeros().unwrap_or(0);
    let d = &n1 >> s;
    let mut bytes = vec![0u8; n.to_bytes_be().len()];
    let mut done = 0;
    while done < rounds {
        rng.fill(&mut bytes).map_err(|_| RsaGenError::Random)?;
        let a = BigUint::from_bytes_be(&bytes) % &n1;
        if a < two {
            continue;
        }
        done += 1;
        let mut x = a.modpow(&d, n);
        if x == one || x == n1 {
            continue;
        }
        let mut witness = true;
        for _ in 1..s {
            x = x.modpow(&two, n);
            if x == n1 {
                witness = false;
                break;
            }
        }
        if witness {
            return Ok(false);
        }
    }
    Ok(true)
}

fn gcd(a: &BigUint, b: &BigUint) -> BigUint {
    let (mut a, mut b) = (a.clone(), b.clone());
    while b != BigUint::ZERO {
        let r = &a % &b;
        a = b;
        b = r;
    }
    a
}

/// The odd primes below `limit` (sieve of Eratosthenes).
fn small_primes(limit: usize) -> Vec<u32> {
    let mut composite = vec![false; limit];
    let mut out = Vec::new();
    for i in 3..limit {
        if i % 2 == 1 && !composite[i] {
            out.push(i as u32);
            let mut j = i * i;
            while j < limit {
                composite[j] = true;
                j += i;
            }
        }
    }
    out
}

/// A DER INTEGER of a non-negative value (a leading zero byte when the top bit is set).
fn integer(v: &BigUint) -> Vec<u8> {
    let mut bytes = v.to_bytes_be();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// Tag, definite length, value.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_primes_and_miller_rabin_agree_with_known_values() {
        let small = small_primes(100);
        assert_eq!(&small[..8], &[3, 5, 7, 11, 13, 17, 19, 23]);
        assert_eq!(small.last(), Some(&97));
        let rng = ring::rand::SystemRandom::new();
        // 2^127 - 1 is prime; 2^127 + 1 is divisible by 3; a Carmichael number fools Fermat
        // but not Miller–Rabin.
        let m127 = (BigUint::from(1u32) << 127u32) - 1u32;
        assert!(probably_prime(&m127, 20, &rng).unwrap());
        let carmichael = BigUint::from(8_911u32); // 7 · 19 · 67
        assert!(!probably_prime(&carmichael, 20, &rng).unwrap());
        let composite = BigUint::from(1_000_003u64 * 1_000_033u64);
        assert!(!probably_prime(&composite, 20, &rng).unwrap());
    }

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(&BigUint::from(0x80u32)), vec![0x02, 2, 0x00, 0x80]);
        assert_eq!(integer(&BigUint::from(0u32)), vec![0x02, 1, 0x00]);
    }

    #[test]
    fn a_generated_key_is_2048_bits_and_signs() {
        let rng = ring::rand::SystemRandom::new();
        let der = generate_pkcs8(2048, &rng).unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(key.public().modulus_len(), 256);
        // rcgen takes it for certificates.
        let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(der);
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
    }
}
