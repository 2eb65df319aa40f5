//! Fuzz target `private_key`: arbitrary bytes as a PEM private key file (PKCS#8, PKCS#1, SEC1,
//! encrypted PKCS#8 with PBES2) and a passphrase file, through `tls::load_private_key`, and as
//! a certificate file and inline certificate authorities (`tls::load_cert_chain`,
//! `tls::certificate_authorities_from_pem`). No input may panic; every refusal is a `TlsError`
//! whose sentence renders.
//!
//! Input layout: byte 0 — high bit set: no passphrase file; low 7 bits: passphrase length `n`;
//! the next `n` bytes are the passphrase file, the rest the PEM file. The files live in this
//! process's own directory under the system temporary directory.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use fleet_edge::tls::{certificate_authorities_from_pem, load_cert_chain, load_private_key};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fleet-edge-fuzz-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let [ctl, rest @ ..] = data else {
        return;
    };
    let n = usize::from(ctl & 0x7f).min(rest.len());
    let (passphrase, pem) = rest.split_at(n);
    let dir = scratch();
    let key_path = dir.join("key.pem");
    let pass_path = dir.join("passphrase");
    std::fs::write(&key_path, pem).expect("write key file");
    std::fs::write(&pass_path, passphrase).expect("write passphrase file");
    let pass = (ctl & 0x80 == 0).then_some(pass_path.as_path());
    if let Err(e) = load_private_key(&key_path, pass) {
        let _ = e.to_string();
    }
    if let Err(e) = load_cert_chain(&key_path) {
        let _ = e.to_string();
    }
    if let Err(e) = certificate_authorities_from_pem(pem) {
        let _ = e.to_string();
    }
});
