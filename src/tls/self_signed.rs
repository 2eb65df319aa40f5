//! Self-signed TLS for when no `--fleet-server-cert` is given: a CA and a server certificate
//! signed by it, ECDSA P-256 or RSA 2048 ([`KeyAlgorithm`]; Elastic Defend needs RSA; the
//! server certificate always has the CA's key type), kept in `<data_dir>/certs/{ca.crt,ca.key,server.crt,server.key}`
//! and reused on restart. Agents pin the CA (by file or fingerprint), so the CA is never
//! replaced behind their back: a server certificate that no longer fits (new host, expired,
//! not from this CA) is re-issued from the same CA, and files that cannot be parsed are an
//! error naming the file, never silently regenerated. Part of `tls` (see `mod.rs`).
//!
//! Validity: the CA for 20 years, server certificates for 5 years; a server certificate that
//! expires within 30 days is re-issued at startup.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;

use super::{
    check_key_matches, load_private_key, parse_certificates, read_file, sha256_fingerprint_hex,
    TlsError, TlsMaterial,
};

const CA_DAYS: u64 = 20 * 365 + 5;
const SERVER_DAYS: u64 = 5 * 365 + 1;
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_COMMON_NAME: &str = "fleet-edge self-signed CA";
/// RSA modulus size of generated keys (what Elastic's `elasticsearch-certutil` makes).
const RSA_BITS: usize = 2048;

/// The key type of generated certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (small and fast; the default).
    EcdsaP256,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures (Elastic Defend needs RSA).
    Rsa2048,
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::Rsa2048 => "RSA",
        })
    }
}

/// `--self-signed-key-type`: which key type a new CA gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SelfSignedKey {
    /// ECDSA P-256, unless a policy has an Elastic Defend integration (then RSA).
    #[default]
    Auto,
    /// Always ECDSA P-256.
    Ecdsa,
    /// Always RSA.
    Rsa,
}

impl std::str::FromStr for SelfSignedKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SelfSignedKey::Auto),
            "ecdsa" => Ok(SelfSignedKey::Ecdsa),
            "rsa" => Ok(SelfSignedKey::Rsa),
            other => Err(format!("{other:?} is not auto, ecdsa or rsa")),
        }
    }
}

/// What [`load_or_create`] is asked for: the key type, and whether the operator named it (a
/// stored CA of another type is then an error; otherwise a warning, and the CA is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// The key type a new CA gets.
    pub algorithm: KeyAlgorithm,
    /// Named by `--self-signed-key-type` (not chosen by `auto`).
    pub explicit: bool,
}

impl KeyRequest {
    /// What `--self-signed-key-type` asks for; `auto` is RSA when `defend_policy` (a policy
    /// with an Elastic Defend integration) is known.
    pub fn for_setting(setting: SelfSignedKey, defend_policy: Option<&Path>) -> KeyRequest {
        match (setting, defend_policy) {
            (SelfSignedKey::Ecdsa, _) => KeyRequest {
                algorithm: KeyAlgorithm::EcdsaP256,
                explicit: true,
            },
            (SelfSignedKey::Rsa, _) => KeyRequest {
                algorithm: KeyAlgorithm::Rsa2048,
                explicit: true,
            },
            (SelfSignedKey::Auto, Some(_)) => KeyRequest {
                algorithm: KeyAlgorithm::Rsa2048,
                explicit: false,
            },
            (SelfSignedKey::Auto, None) => KeyRequest::default(),
        }
    }
}

impl Default for KeyRequest {
    fn default() -> Self {
        KeyRequest {
            algorithm: KeyAlgorithm::EcdsaP256,
            explicit: false,
        }
    }
}
const ORGANIZATION: &str = "fleet-edge";

/// The outcome of [`load_or_create`].
#[derive(Debug)]
pub struct SelfSigned {
    /// The server certificate chain (`[server, ca]`) and the server key.
    pub material: TlsMaterial,
    /// Where the CA certificate is, for agents' `--certificate-authorities`.
    pub ca_cert_path: PathBuf,
    /// Lowercase hex SHA-256 of the CA certificate's DER.
    pub ca_fingerprint: String,
    /// The CA's key type (the server certificate's too).
    pub algorithm: KeyAlgorithm,
    /// The CA was generated by this call (first start, or the certs directory was emptied).
    pub created: bool,
    /// A server certificate was issued by this call (new CA, new hosts, expiry, missing files).
    pub issued_server_cert: bool,
}

/// Loads `<data_dir>/certs/{ca.crt,ca.key,server.crt,server.key}` or creates them (keys mode
/// 0600, directory mode 0700). The server certificate's SANs cover every entry of `hosts` (DNS
/// names or IP addresses, deduplicated; `localhost` when empty). If the stored server
/// certificate does not cover all of them, is about to expire or was not issued by the stored
/// CA, a new one is issued from the same CA and logged. Unparsable files are an error naming
/// the file.
/// A new CA gets `request`'s key type; a stored CA of another type is kept (a warning) unless the
/// type was asked for explicitly (an error: the CA is never replaced behind the agents' back).
pub fn load_or_create(
    data_dir: &Path,
    hosts: &[String],
    request: KeyRequest,
) -> Result<SelfSigned, TlsError> {
    let hosts = normalize_hosts(hosts)?;
    let dir = data_dir.join("certs");
    create_private_dir(&dir)?;
    let files = Files::new(&dir);

    let (ca, created) = match (files.ca_crt.exists(), files.ca_key.exists()) {
        (true, true) => (load_ca(&files, request)?, false),
        (false, false) => (create_ca(&files, request.algorithm)?, true),
        (true, false) => return Err(missing(&files.ca_key, &files.ca_crt)),
        (false, true) => return Err(missing(&files.ca_crt, &files.ca_key)),
    };

    let reusable = if created {
        None
    } else {
        load_server(&files, &ca, &hosts)?
    };
    let (material, issued_server_cert) = match reusable {
        Some(material) => (material, false),
        None => (issue_server(&files, &ca, &hosts)?, true),
    };
    Ok(SelfSigned {
        algorithm: ca.algorithm(),
        material,
        ca_cert_path: files.ca_crt,
        ca_fingerprint: sha256_fingerprint_hex(&ca.cert),
        created,
        issued_server_cert,
    })
}

/// Whether `host` can go into a certificate (an IP address, bracketed or not, or a DNS name).
pub fn is_valid_host(host: &str) -> bool {
    normalize_host(host).is_some()
}

struct Files {
    ca_crt: PathBuf,
    ca_key: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            ca_crt: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_crt: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

struct Ca {
    cert: CertificateDer<'static>,
    key: KeyPair,
}

impl Ca {
    fn algorithm(&self) -> KeyAlgorithm {
        algorithm_of(&self.key)
    }
}

fn algorithm_of(key: &KeyPair) -> KeyAlgorithm {
    if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        KeyAlgorithm::Rsa2048
    } else {
        KeyAlgorithm::EcdsaP256
    }
}

/// A new key of `algorithm`.
fn new_key(algorithm: KeyAlgorithm) -> Result<KeyPair, TlsError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => KeyPair::generate().map_err(generate_err),
        KeyAlgorithm::Rsa2048 => {
            let der = super::rsa_gen::generate_pkcs8(RSA_BITS, &ring::rand::SystemRandom::new())
                .map_err(|e| TlsError::Generate {
                    detail: e.to_string(),
                })?;
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(generate_err)
        }
    }
}

fn missing(absent: &Path, present: &Path) -> TlsError {
    TlsError::CorruptSelfSigned {
        path: absent.to_path_buf(),
        detail: format!(
            "it is missing while \"{}\" exists (restore it, or remove both to generate a new CA)",
            present.display()
        ),
    }
}

fn corrupt(path: &Path, detail: impl ToString) -> TlsError {
    TlsError::CorruptSelfSigned {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

fn generate_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate {
        detail: e.to_string(),
    }
}

/// IP addresses in canonical form, DNS names lowercased without a trailing dot; deduplicated.
fn normalize_hosts(hosts: &[String]) -> Result<Vec<String>, TlsError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for host in hosts {
        let name =
            normalize_host(host).ok_or_else(|| TlsError::InvalidHost { host: host.clone() })?;
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    if out.is_empty() {
        out.push("localhost".to_string());
    }
    Ok(out)
}

fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim();
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || !name.is_ascii() {
        return None;
    }
    match ServerName::try_from(name.clone()) {
        Ok(ServerName::DnsName(_)) => Some(name),
        _ => None,
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn create_ca(files: &Files, algorithm: KeyAlgorithm) -> Result<Ca, TlsError> {
    let key = new_key(algorithm)?;
    let mut params = ca_params();
    set_validity(&mut params, CA_DAYS)?;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(generate_err)?;
    write_file(&files.ca_key, key.serialize_pem().as_bytes(), true)?;
    write_file(&files.ca_crt, cert.pem().as_bytes(), false)?;
    let cert = cert.der().clone();
    log::info!(
        "generated a self-signed {algorithm} CA \"{}\" (sha256 fingerprint {}); give it to agents with --certificate-authorities",
        files.ca_crt.display(),
        sha256_fingerprint_hex(&cert)
    );
    Ok(Ca { cert, key })
}

fn load_ca(files: &Files, request: KeyRequest) -> Result<Ca, TlsError> {
    let pem = read_file("certificate", &files.ca_crt)?;
    let cert = parse_certificates(&files.ca_crt, "certificate", &pem)
        .map_err(|e| corrupt(&files.ca_crt, e))?
        .swap_remove(0);
    let key_der = load_private_key(&files.ca_key, None).map_err(|e| corrupt(&files.ca_key, e))?;
    check_key_matches(std::slice::from_ref(&cert), &key_der)
        .map_err(|_| corrupt(&files.ca_key, "it is not the key of ca.crt"))?;
    let PrivateKeyDer::Pkcs8(pkcs8) = &key_der else {
        return Err(corrupt(&files.ca_key, "it is not a PKCS#8 PRIVATE KEY"));
    };
    let key = KeyPair::try_from(pkcs8.secret_pkcs8_der()).map_err(|e| corrupt(&files.ca_key, e))?;
    let ca = Ca { cert, key };
    let stored = ca.algorithm();
    if stored != request.algorithm {
        let mismatch = TlsError::SelfSignedKeyType {
            path: files.ca_crt.clone(),
            stored,
            wanted: request.algorithm,
        };
        if request.explicit {
            return Err(mismatch);
        }
        log::warn!("{mismatch}");
    }
    Ok(ca)
}

/// The stored server certificate if it can be reused; `None` when a new one must be issued.
#[allow(
    clippy::disallowed_methods,
    reason = "certificate validity is checked against the wall clock at startup"
)]
fn load_server(files: &Files, ca: &Ca, hosts: &[String]) -> Result<Option<TlsMaterial>, TlsError> {
    match (files.server_crt.exists(), files.server_key.exists()) {
        (true, true) => {}
        (false, false) => {
            log::info!("no self-signed server certificate yet; issuing one from the stored CA");
            return Ok(None);
        }
        _ => {
            log::warn!(
                "only one of \"{}\" and \"{}\" exists; issuing a new server certificate from the stored CA",
                files.server_crt.display(),
                files.server_key.display()
            );
            return Ok(None);
        }
    }
    let pem = read_file("certificate", &files.server_crt)?;
    let leaf = parse_certificates(&files.server_crt, "certificate", &pem)
        .map_err(|e| corrupt(&files.server_crt, e))?
        .swap_remove(0);
    let parsed = ParsedCertificate::try_from(&leaf).map_err(|e| corrupt(&files.server_crt, e))?;
    let key =
        load_private_key(&files.server_key, None).map_err(|e| corrupt(&files.server_key, e))?;
    check_key_matches(std::slice::from_ref(&leaf), &key)
        .map_err(|_| corrupt(&files.server_key, "it is not the key of server.crt"))?;
    let server_algorithm = KeyPair::try_from(&key)
        .map(|k| algorithm_of(&k))
        .map_err(|e| corrupt(&files.server_key, e))?;
    if server_algorithm != ca.algorithm() {
        log::info!(
            "issuing a new self-signed server certificate from the stored CA: the stored one has an {server_algorithm} key, the CA an {} one",
            ca.algorithm()
        );
        return Ok(None);
    }

    let renew_at = SystemTime::now() + RENEW_BEFORE;
    if let Err(e) = verify_chain(&parsed, &ca.cert, renew_at) {
        log::info!(
            "issuing a new self-signed server certificate from the stored CA: the stored one does not verify until 30 days from now ({e})"
        );
        return Ok(None);
    }
    for host in hosts {
        let covered = ServerName::try_from(host.as_str())
            .ok()
            .is_some_and(|name| rustls::client::verify_server_name(&parsed, &name).is_ok());
        if !covered {
            log::info!(
                "issuing a new self-signed server certificate from the stored CA: the stored one does not cover \"{host}\""
            );
            return Ok(None);
        }
    }
    Ok(Some(TlsMaterial {
        chain: vec![leaf, ca.cert.clone()],
        key,
    }))
}

fn verify_chain(
    leaf: &ParsedCertificate<'_>,
    ca: &CertificateDer<'static>,
    at: SystemTime,
) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        leaf,
        &roots,
        &[],
        UnixTime::since_unix_epoch(secs),
        algs.all,
    )
}

#[allow(
    clippy::disallowed_methods,
    reason = "certificate validity is checked against the wall clock at startup"
)]
fn issue_server(files: &Files, ca: &Ca, hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    let key = new_key(ca.algorithm())?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name.push(
        DnType::CommonName,
        hosts.first().map_or("fleet-edge", |h| h.as_str()),
    );
    params.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => h.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .map_err(generate_err)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    set_validity(&mut params, SERVER_DAYS)?;
    let issuer = Issuer::new(ca_params(), &ca.key);
    let cert = params.signed_by(&key, &issuer).map_err(generate_err)?;

    // The issuer is rebuilt from our fixed CA parameters; make sure the result really chains to
    // the stored ca.crt (it would not if ca.crt had been made by something else).
    let leaf = cert.der().clone();
    let parsed = ParsedCertificate::try_from(&leaf).map_err(|e| TlsError::Generate {
        detail: e.to_string(),
    })?;
    verify_chain(&parsed, &ca.cert, SystemTime::now()).map_err(|e| {
        corrupt(
            &files.ca_crt,
            format!("a certificate signed with ca.key does not chain to it ({e}); it was not made by fleet-edge"),
        )
    })?;

    write_file(&files.server_key, key.serialize_pem().as_bytes(), true)?;
    write_file(&files.server_crt, cert.pem().as_bytes(), false)?;
    log::info!(
        "issued a self-signed server certificate \"{}\" for {}",
        files.server_crt.display(),
        hosts.join(", ")
    );
    Ok(TlsMaterial {
        chain: vec![leaf, ca.cert.clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

fn random_serial() -> Result<SerialNumber, TlsError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TlsError::Generate {
            detail: "the system random number generator failed".to_string(),
        })?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Valid from yesterday (clock skew) for `days` days.
#[allow(
    clippy::disallowed_methods,
    reason = "a generated certificate is valid from the wall clock's yesterday"
)]
fn set_validity(params: &mut CertificateParams, days: u64) -> Result<(), TlsError> {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TlsError::Generate {
            detail: "the system clock is before 1970".to_string(),
        })?
        .as_secs()
        / 86_400;
    let (y, m, d) = civil_from_days(today.saturating_sub(1));
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(today + days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    Ok(())
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (i32, u8, u8) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| TlsError::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let write_err = |e: std::io::Error| TlsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(write_err)?;
    file.write_all(contents).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_err)
}

#[cfg(test)]
mod tests;
