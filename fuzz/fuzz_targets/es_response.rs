//! Fuzz target `es_response`: arbitrary bytes as the body (and an arbitrary status) of
//! Elasticsearch's answer to each request the Elasticsearch backend makes, through the real
//! `backend::es::EsStore` over HTTP: `_security/_authenticate` (authenticate), `_mget` and search
//! hits (agent, enrollment tokens, actions, secrets, policies), `_bulk` items (agent and action
//! result writes), API key creation and invalidation, and error bodies of every status. A stand-in
//! on a loopback socket answers `GET /` as Elasticsearch 9.6.0 and every other request with the
//! input. No input may panic; every refusal is a `StoreError`.
//!
//! Input layout: byte 0 picks the store operation, byte 1 the status; the rest is the body.
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use fleet_edge::backend::es::{EsOptions, EsStore};
use fleet_edge::backend::{ApiKey, NewApiKey, PolicyAck, Store};
use fleet_edge::config::{EsSettings, Secret};
use fleet_edge::model::{ActionResult, Agent};
use fleet_edge::server_version::ServerVersion;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map};

/// The answer every request but `GET /` gets: status and body.
static ANSWER: Mutex<(u16, Vec<u8>)> = Mutex::new((200, Vec::new()));

const ROOT: &[u8] = br#"{"name":"standin","cluster_name":"fuzz","version":{"number":"9.6.0"},"tagline":"You Know, for Search"}"#;

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    stream.set_nodelay(true)?;
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (status, answer) = if request_line.starts_with("GET / ") {
            (200, ROOT.to_vec())
        } else {
            ANSWER.lock().map(|a| a.clone()).unwrap_or_default()
        };
        // One write per answer: a head and body in two segments would meet the client's
        // delayed ACK (40 ms per request).
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nX-Elastic-Product: Elasticsearch\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        out.extend_from_slice(&answer);
        writer.write_all(&out)?;
        writer.flush()?;
    }
}

fn store() -> &'static EsStore {
    static STORE: OnceLock<EsStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        let settings = EsSettings {
            hosts: vec![format!("http://127.0.0.1:{port}")],
            ca: Vec::new(),
            ca_certs: Vec::new(),
            ca_trusted_fingerprint: None,
            client_cert: None,
            insecure: false,
            service_token: Some(Secret::new("fuzz-service-token".into())),
            headers: Vec::new(),
            server_version: ServerVersion::default(),
        };
        let options = EsOptions {
            max_retries: 0,
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            poll_timeout: Duration::from_secs(5),
        };
        EsStore::connect_with(&settings, Some(Duration::from_secs(10)), options)
            .expect("the stand-in answers as Elasticsearch")
    })
}

const STATUSES: [u16; 8] = [200, 201, 400, 401, 404, 409, 429, 500];

fuzz_target!(|data: &[u8]| {
    let [op, status, body @ ..] = data else {
        return;
    };
    let store = store();
    if let Ok(mut answer) = ANSWER.lock() {
        *answer = (STATUSES[usize::from(status % 8)], body.to_vec());
    }
    let key = ApiKey {
        id: "kid".into(),
        secret: "ksecret".into(),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = match op % 16 {
        0 => store.authenticate(&key).map(drop),
        1 => store
            .create_api_key(&NewApiKey {
                name: "n".into(),
                role_descriptors: json!({}),
                metadata: json!({"agent_id": "a1"}),
            })
            .map(drop),
        2 => store.api_key_roles("kid").map(drop),
        3 => store.invalidate_api_keys(&["kid".into()]),
        4 => store.enrollment_key("kid").map(drop),
        5 => store.policy_enrollment_key("p").map(drop),
        6 => store.agent("a1").map(drop),
        7 => store.agent_by_enrollment_id("e1").map(drop),
        8 => store.create_agent(&Agent {
            id: "a1".into(),
            active: true,
            ..Agent::default()
        }),
        9 => {
            let mut fields = Map::new();
            fields.insert("last_checkin_status".into(), json!("online"));
            store.update_agent("a1", &fields)
        }
        10 => store.delete_agent("a1"),
        11 => store.policy_acked(
            "a1",
            &PolicyAck {
                policy_id: "p".into(),
                revision: 2,
                updated_at: "2027-01-15T08:00:00Z".into(),
                outputs: None,
            },
        ),
        12 => store.pending_actions("a1", 0, now, 10).map(drop),
        13 => store
            .action("act-1")
            .and(store.action_seq_no("act-1:a1"))
            .map(drop),
        14 => store
            .create_action_result(&ActionResult {
                action_id: "act-1".into(),
                agent_id: "a1".into(),
                ..ActionResult::default()
            })
            .map(drop),
        _ => store
            .secret("s1")
            .and(store.latest_policies().map(drop))
            .map(drop),
    }
    .map_err(|e| e.to_string());
});
