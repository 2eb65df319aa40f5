//! SHA-256 certificate fingerprints: computing them over a certificate's DER, and parsing the
//! `ca_trusted_fingerprint` form users paste (hex, any case, colons allowed). Part of `tls`.

use std::fmt;
use std::str::FromStr;

use rustls::pki_types::CertificateDer;

use super::TlsError;

/// Lowercase hex SHA-256 of a certificate's DER encoding (the form Elastic prints and pins).
pub fn sha256_fingerprint_hex(cert: &CertificateDer) -> String {
    Fingerprint::of(cert).to_string()
}

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate (SHA-256 of its DER).
    pub fn of(cert: &CertificateDer) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// Whether `cert` has this fingerprint.
    pub fn matches(&self, cert: &CertificateDer) -> bool {
        Fingerprint::of(cert) == *self
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    /// Accepts 64 hex digits in any case, optionally separated by colons (`AB:CD:...`);
    /// surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| TlsError::BadFingerprint {
            value: s.to_string(),
            reason,
        };
        let digits: Vec<u8> = s.trim().bytes().filter(|b| *b != b':').collect();
        if digits.is_empty() {
            return Err(bad("it is empty"));
        }
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad(
                "it must contain only hexadecimal digits (colons are allowed)",
            ));
        }
        if digits.len() != 64 {
            return Err(bad("it must be exactly 64 hexadecimal digits (32 bytes)"));
        }
        let mut bytes = [0u8; 32];
        for (out, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *out = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(Fingerprint(bytes))
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::make_ca;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn fingerprint_of_a_certificate_is_lowercase_sha256_hex() {
        let ca = make_ca("CA");
        let hex = sha256_fingerprint_hex(&ca.cert_der);
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let expected = ring::digest::digest(&ring::digest::SHA256, ca.cert_der.as_ref());
        let expected: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        let parsed: Fingerprint = hex.parse().unwrap();
        assert!(parsed.matches(&ca.cert_der));
    }

    #[test]
    fn fingerprint_parsing_tolerates_case_colons_and_whitespace() {
        let plain: Fingerprint = HEX.parse().unwrap();
        assert_eq!(plain.to_string(), HEX);
        let upper: Fingerprint = HEX.to_uppercase().parse().unwrap();
        assert_eq!(upper, plain);
        let colons: String = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let with_colons: Fingerprint = format!(" {colons}\n").parse().unwrap();
        assert_eq!(with_colons, plain);
    }

    #[test]
    fn fingerprint_parsing_rejects_bad_input_clearly() {
        let err = |s: &str| s.parse::<Fingerprint>().unwrap_err().to_string();
        assert_eq!(err(""), "\"\" is not a SHA-256 fingerprint: it is empty");
        assert!(err("abc").contains("exactly 64 hexadecimal digits"));
        assert!(err(&format!("{HEX}00")).contains("exactly 64"));
        assert!(err(&HEX.replace('a', "g")).contains("only hexadecimal digits"));
    }
}
