//! Size and speed probe (see Cargo.toml): links every dependency of fleet-edge and times the hot
//! paths of a Fleet Server: TLS handshakes (ECDSA P-256, rustls + ring) and TLS records
//! (AES-GCM), JSON (policy-sized documents, serde_json), gzip in both directions (flate2, pure
//! Rust), HTTP/1.1 head parsing (httparse), API-key base64, and a PBES2-encrypted key (pkcs8).
//! Prints one `name: ms` line per stage; `--quick` divides the work by 10 (for qemu).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A test-only key, encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), passphrase "probe".
const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAggBNI+sFjDDQICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEENM13oNYi+bdRuOfQwxx6loEgZCC
Q0kVIXqhjyEkHmJQy/Kri1OKf3oPiRULLtei7fWk7u4mFu8e097StWLUTqyK80vS
3+1eNir04NlEKjMnaXB22G421aauk3cybKx31JkPwHfp88cXHczWYJLn6vCpiKpP
1LevvMqZRByeKn0NIpAgV6bMwvMpfnb3cOfOe0icW9T+/a8ne/gMdTuOkqKpCuw=
-----END ENCRYPTED PRIVATE KEY-----
";

#[derive(serde::Serialize, serde::Deserialize)]
struct Checkin {
    status: String,
    message: String,
    ack_token: Option<String>,
    local_metadata: serde_json::Value,
    components: Vec<Component>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Component {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    message: String,
    units: Vec<serde_json::Value>,
}

fn stage(name: &str, t: Instant, check: u64) {
    println!("{name}: {:.1} ms (check {check})", t.elapsed().as_secs_f64() * 1e3);
}

/// Moves every pending TLS record from `a` to `b`.
fn transfer(a: &mut rustls::Connection, b: &mut rustls::Connection, buf: &mut Vec<u8>) {
    buf.clear();
    while a.wants_write() {
        a.write_tls(buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        b.read_tls(&mut rd).unwrap();
        b.process_new_packets().unwrap();
    }
}

fn policy(n_inputs: usize) -> serde_json::Value {
    let inputs: Vec<_> = (0..n_inputs)
        .map(|i| {
            serde_json::json!({
                "id": format!("logfile-system-{i:04}"), "name": "system-1", "revision": 3,
                "type": "logfile", "data_stream": {"namespace": "default"}, "use_output": "default",
                "package_policy_id": format!("7f0e-{i}"),
                "meta": {"package": {"name": "system", "version": "1.54.0"}},
                "streams": [{"id": format!("logfile-system.auth-{i}"),
                             "data_stream": {"dataset": "system.auth", "type": "logs"},
                             "paths": ["/var/log/auth.log*", "/var/log/secure*"],
                             "exclude_files": [".gz$"], "multiline": {"pattern": "^\\s", "match": "after"},
                             "tags": ["system-auth"], "processors": [{"add_locale": null}],
                             "ignore_older": "72h", "scan_frequency": 10.5}]
            })
        })
        .collect();
    serde_json::json!({
        "id": "fleet-server-policy", "revision": 7,
        "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://127.0.0.1:9200"],
                                "api_key": "PFHWkI8BYUd4ruh4dnoy:Ia1U4dsLQF6qnSYTM8QIdw"}},
        "agent": {"monitoring": {"enabled": true, "logs": true, "metrics": true, "namespace": "default"},
                  "download": {"sourceURI": "https://artifacts.elastic.co/downloads/"}},
        "inputs": inputs,
        "signed": {"data": "eyJpZCI6ImZsZWV0LXNlcnZlci1wb2xpY3kifQ==", "signature": "MEUCIQD"}
    })
}

fn main() {
    let mut args = pico_args::Arguments::from_env();
    let div: u32 = if args.contains("--quick") { 10 } else { 1 };
    let total = Instant::now();

    // Signals and the event loop's pieces (linked as the server links them).
    let mut signals = signal_hook_mio::v1_0::Signals::new([signal_hook::consts::SIGTERM]).unwrap();
    let poll = mio::Poll::new().unwrap();
    poll.registry()
        .register(&mut signals, mio::Token(0), mio::Interest::READABLE)
        .unwrap();
    let mut conns: slab::Slab<u64> = slab::Slab::with_capacity(1024);

    // Certificates: a CA and a server certificate signed by it (as the self-signed mode does).
    let t = Instant::now();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let srv_key = rcgen::KeyPair::generate().unwrap();
    let srv_params = rcgen::CertificateParams::new(vec!["fleet.test".to_string()]).unwrap();
    let srv_cert = srv_params.signed_by(&srv_key, &issuer).unwrap();
    stage("rcgen_ca_and_server_cert", t, ca_cert.pem().len() as u64);

    // Encrypted key (PBES2): the startup cost of a passphrase-protected key.
    let t = Instant::now();
    let (_, der) = pkcs8::der::pem::decode_vec(ENCRYPTED_KEY.as_bytes()).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let plain = info.decrypt("probe").unwrap();
    stage("pkcs8_pbes2_decrypt", t, plain.as_bytes().len() as u64);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(srv_key.serialize_der()));
    let server_cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![srv_cert.der().clone()], key)
            .unwrap(),
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_cert.der().to_vec())).unwrap();
    let client_cfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let name = ServerName::try_from("fleet.test").unwrap();
    let mut buf = Vec::with_capacity(1 << 16);

    // Full TLS 1.3 handshakes (ECDHE X25519 + ECDSA P-256 signature + chain verification).
    let handshakes = 200 / div;
    let t = Instant::now();
    let mut conn = None;
    for _ in 0..handshakes {
        let mut c = rustls::Connection::Client(
            rustls::ClientConnection::new(client_cfg.clone(), name.clone()).unwrap(),
        );
        let mut s =
            rustls::Connection::Server(rustls::ServerConnection::new(server_cfg.clone()).unwrap());
        while c.is_handshaking() || s.is_handshaking() {
            transfer(&mut c, &mut s, &mut buf);
            transfer(&mut s, &mut c, &mut buf);
        }
        conn = Some((c, s));
    }
    stage(&format!("tls_handshakes_x{handshakes}"), t, handshakes as u64);

    // TLS records: the server sends MiB of 16 KiB writes, the client decrypts them.
    let (mut c, mut s) = conn.unwrap();
    let mib = 64 / div as usize;
    let chunk = vec![0x5au8; 16 * 1024];
    let mut plain = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let t = Instant::now();
    for _ in 0..mib * 64 {
        s.writer().write_all(&chunk).unwrap();
        transfer(&mut s, &mut c, &mut buf);
        loop {
            match c.reader().read(&mut plain) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    stage(&format!("tls_records_{mib}MiB"), t, got);

    // JSON: a policy of 100 inputs (~60 KB) parsed and serialized, as on every policy revision.
    let doc = serde_json::to_vec(&policy(100)).unwrap();
    let rounds = 200 / div;
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        n += serde_json::to_vec(&v).unwrap().len() as u64;
    }
    stage(&format!("json_policy_{}KB_x{rounds}", doc.len() / 1000), t, n);

    // JSON with derive: a checkin body, as every agent sends every few minutes.
    let body = serde_json::to_vec(&serde_json::json!({
        "status": "online", "message": "Running", "ack_token": "1",
        "local_metadata": {"elastic": {"agent": {"id": "a", "version": "9.2.0", "snapshot": false}},
                           "host": {"hostname": "gw-01", "architecture": "aarch64", "ip": ["10.0.0.2"]},
                           "os": {"family": "debian", "kernel": "6.1.0", "platform": "debian"}},
        "components": (0..10).map(|i| serde_json::json!({
            "id": format!("log-{i}"), "type": "log", "status": "HEALTHY", "message": "Healthy",
            "units": [{"id": format!("log-{i}-unit"), "type": "input", "status": "HEALTHY",
                       "message": "Healthy", "payload": {"streams": {}}}]})).collect::<Vec<_>>()
    }))
    .unwrap();
    let rounds = 20_000 / div;
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        let ck: Checkin = serde_json::from_slice(&body).unwrap();
        n += ck.components.len() as u64 + serde_json::to_vec(&ck).unwrap().len() as u64;
    }
    stage(&format!("json_checkin_{}B_x{rounds}", body.len()), t, n);

    // gzip: compress the policy (responses) and decompress it (gzip request bodies).
    let rounds = 1000 / div;
    let t = Instant::now();
    let mut gz = Vec::new();
    for _ in 0..rounds {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        e.write_all(&doc).unwrap();
        gz = e.finish().unwrap();
    }
    stage(&format!("gzip_level1_{}KB_x{rounds}", doc.len() / 1000), t, gz.len() as u64);
    let rounds = 2000 / div;
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        let mut out = Vec::with_capacity(doc.len());
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        n += out.len() as u64;
    }
    stage(&format!("gunzip_{}KB_x{rounds}", doc.len() / 1000), t, n);

    // HTTP/1.1 heads and API keys, per request.
    let head = b"POST /api/fleet/agents/2b0a7c52-1d43-4a7e-9a4c-6f1d2e3f4a5b/checkin HTTP/1.1\r\n\
Host: fleet.test:8220\r\nUser-Agent: Elastic Agent v9.2.0\r\nAuthorization: ApiKey \
UEZIV2tJOEJZVWQ0cnVoNGRub3k6SWExVTRkc0xRRjZxblNZVE04UUlkdw==\r\nContent-Type: application/json\r\n\
Content-Encoding: gzip\r\nAccept-Encoding: gzip\r\nElastic-Api-Version: 2023-06-01\r\n\
Content-Length: 1234\r\n\r\n";
    let rounds = 500_000 / div;
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = req.parse(head) {
            let auth = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("authorization"));
            let key = auth.and_then(|h| h.value.strip_prefix(b"ApiKey ")).unwrap_or(b"");
            let raw = base64::engine::general_purpose::STANDARD.decode(key).unwrap_or_default();
            n += len as u64 + raw.len() as u64;
            let k = conns.insert(n);
            conns.remove(k);
        }
    }
    stage(&format!("http_head_and_apikey_x{rounds}"), t, n);

    log::info!("done");
    println!("total: {:.1} ms", total.elapsed().as_secs_f64() * 1e3);
}
