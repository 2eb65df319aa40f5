//! Faults and startup: Elasticsearch down mid-run (Unavailable, then recovery with no restart and
//! no extra follower threads), retries bounded on 503 and 429, failover to a second host,
//! startup waiting for Elasticsearch, the startup timeout, bad credentials, a server that is
//! not Elasticsearch, an old version; and the wire form of the requests (headers, bodies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use es_standin::{Options, StandIn};
use serde_json::{json, Map};

use super::{pair, quick, settings};
use crate::backend::es::{EsError, EsStore};
use crate::backend::{ApiKey, Cursor, Store, StoreError};
use crate::config::Secret;
use crate::model::Agent;

fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn es_down_mid_run_is_unavailable_then_recovers() {
    let (es, store) = pair();
    store
        .create_agent(&Agent {
            id: "d1".into(),
            active: true,
            ..Agent::default()
        })
        .unwrap();
    let first = store
        .changes(Cursor::START, SystemTime::now(), Duration::from_millis(10))
        .unwrap();
    let cursor = first.cursor.unwrap_or(Cursor::START);
    wait_until("followers", Duration::from_secs(5), || {
        store.follower_threads() == 2
    });

    es.faults().down(None);
    let began = Instant::now();
    assert!(matches!(store.agent("d1"), Err(StoreError::Unavailable(_))));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "retries are bounded: {:?}",
        began.elapsed()
    );
    let mut f = Map::new();
    f.insert("last_checkin_status".into(), json!("online"));
    assert!(matches!(
        store.update_agents(&[("d1".into(), f.clone())]),
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.changes(cursor, SystemTime::now(), Duration::from_millis(10)),
        Err(StoreError::Unavailable(_))
    ));
    let bogus = ApiKey {
        id: "k".into(),
        secret: "s".into(),
    };
    assert!(
        matches!(store.authenticate(&bogus), Err(StoreError::Unavailable(_))),
        "down is never unauthorized"
    );

    es.faults().up();
    assert_eq!(store.agent("d1").unwrap().unwrap().id, "d1");
    assert_eq!(
        store.update_agents(&[("d1".into(), f)]).unwrap(),
        vec![Ok(())]
    );
    es.seed().agent_policy("after-outage").unwrap();
    let got = store
        .changes(cursor, SystemTime::now(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        got.policies
            .iter()
            .map(|p| p.policy_id.as_str())
            .collect::<Vec<_>>(),
        ["after-outage"]
    );
    assert_eq!(
        store.follower_threads(),
        2,
        "recovery reuses the two followers"
    );
}

#[test]
fn retryable_statuses_are_retried_and_bounded() {
    let (es, store) = pair();
    es.faults().fail_next(2, 503);
    assert_eq!(
        store.agent("x"),
        Ok(None),
        "two 503s are absorbed by the retries"
    );
    es.faults().fail_next(100, 503);
    let began = Instant::now();
    assert!(matches!(store.agent("x"), Err(StoreError::Unavailable(m)) if m.contains("503")));
    assert!(began.elapsed() < Duration::from_secs(3));
    es.faults().clear();
    es.faults().fail_next(100, 429);
    assert_eq!(store.agent("x"), Err(StoreError::TooManyRequests));
    es.faults().clear();
    es.faults().fail_next(1, 500);
    assert!(
        matches!(
            store.agent("x"),
            Err(StoreError::Failed { status: 500, .. })
        ),
        "500 is not retried"
    );
    assert_eq!(store.agent("x"), Ok(None));
}

#[test]
fn a_dead_first_host_fails_over_to_the_next() {
    let es = StandIn::start(Options::default()).unwrap();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut s = settings(&es);
    s.hosts = vec![dead_url, es.url()];
    let store = EsStore::connect_with(&s, Some(Duration::from_secs(10)), quick()).unwrap();
    assert_eq!(store.agent("x"), Ok(None));
    assert_eq!(store.latest_policies().unwrap(), Vec::new());
}

#[test]
fn startup_waits_for_elasticsearch_to_come_up() {
    let es = StandIn::start(Options::default()).unwrap();
    es.faults().down(Some(Duration::from_millis(1500)));
    let began = Instant::now();
    let store =
        EsStore::connect_with(&settings(&es), Some(Duration::from_secs(20)), quick()).unwrap();
    assert!(
        began.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(store.agent("x"), Ok(None));
}

#[test]
fn startup_gives_up_after_the_timeout_naming_the_cause() {
    let es = StandIn::start(Options::default()).unwrap();
    es.faults().down(None);
    let began = Instant::now();
    let err =
        EsStore::connect_with(&settings(&es), Some(Duration::from_secs(1)), quick()).unwrap_err();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, EsError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot reach Elasticsearch at http://127.0.0.1:"),
        "{err}"
    );
    es.faults().up();
    es.faults().fail_next(1000, 503);
    let err = EsStore::connect_with(&settings(&es), Some(Duration::from_millis(500)), quick())
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[test]
fn a_bad_service_token_fails_at_once() {
    let es = StandIn::start(Options::default()).unwrap();
    let mut s = settings(&es);
    s.service_token = Some(Secret::new(
        "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuMTp3cm9uZw".into(),
    ));
    let began = Instant::now();
    let err = EsStore::connect_with(&s, Some(Duration::from_secs(30)), quick()).unwrap_err();
    assert!(began.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, EsError::Unauthorized { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("rejected the service token (401 Unauthorized)"),
        "{err}"
    );
    assert!(
        !format!("{s:?}").contains("AAEAAW"),
        "the token is redacted in Debug"
    );
}

#[test]
fn an_old_elasticsearch_is_refused() {
    let es = StandIn::start(Options {
        version: "9.5.2".into(),
        ..Options::default()
    })
    .unwrap();
    let err =
        EsStore::connect_with(&settings(&es), Some(Duration::from_secs(30)), quick()).unwrap_err();
    assert!(matches!(err, EsError::UnsupportedVersion { .. }), "{err:?}");
    assert!(
        err.to_string().contains("version 9.5.2") && err.to_string().contains("9.6.0 or newer"),
        "{err}"
    );
}

/// One recorded request: head lines (lower-case names) and body.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fake server answering every request with `answer` (status, with or without the product
/// header, body), recording what it got.
fn fake(status: u16, product: bool, body: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    let mut b = vec![0; len];
                    reader.read_exact(&mut b).unwrap();
                    log.lock().unwrap().push(Seen {
                        line: line.trim_end().to_owned(),
                        headers,
                        body: String::from_utf8(b).unwrap(),
                    });
                    let product = if product {
                        "X-elastic-product: Elasticsearch\r\n"
                    } else {
                        ""
                    };
                    let resp = format!("HTTP/1.1 {status} X\r\n{product}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    (&stream).write_all(resp.as_bytes()).unwrap();
                }
            });
        }
    });
    (url, seen)
}

fn fake_settings(url: &str) -> crate::config::EsSettings {
    crate::config::EsSettings {
        hosts: vec![url.to_owned()],
        ca: Vec::new(),
        ca_certs: Vec::new(),
        ca_trusted_fingerprint: None,
        client_cert: None,
        insecure: false,
        service_token: Some(Secret::new("c2VydmljZS10b2tlbg".into())),
        headers: vec![("X-Custom".into(), "yes".into())],
        server_version: crate::server_version::BUILT_IN,
    }
}

#[test]
fn a_server_that_is_not_elasticsearch_is_refused() {
    let (url, _) = fake(200, false, r#"{"version":{"number":"9.6.0"}}"#);
    let err = EsStore::connect_with(&fake_settings(&url), Some(Duration::from_secs(30)), quick())
        .unwrap_err();
    assert!(matches!(err, EsError::NotElasticsearch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("lacks the header X-elastic-product: Elasticsearch"),
        "{err}"
    );
}

#[test]
fn requests_carry_the_fleet_server_headers_and_exact_bodies() {
    let (url, seen) = fake(
        200,
        true,
        r#"{"version":{"number":"9.6.0"},"items":[{"update":{"status":200}}],"responses":[{"status":200,"hits":{"hits":[]}}],"enabled":true}"#,
    );
    let store = EsStore::connect_with(&fake_settings(&url), Some(Duration::from_secs(30)), quick())
        .unwrap();
    let mut f = Map::new();
    f.insert("policy_revision_idx".into(), json!(2));
    store.update_agent("a1", &f).unwrap();
    store
        .authenticate(&ApiKey {
            id: "kid".into(),
            secret: "ks".into(),
        })
        .unwrap();
    store.enrollment_key("kid").unwrap();
    let seen = seen.lock().unwrap().clone();
    let root = &seen[0];
    assert_eq!(root.line, "GET / HTTP/1.1");
    assert_eq!(
        root.header("authorization"),
        Some("Bearer c2VydmljZS10b2tlbg")
    );
    assert_eq!(root.header("x-elastic-product-origin"), Some("fleet"));
    assert!(root
        .header("user-agent")
        .unwrap()
        .starts_with("Elastic-Fleet-Server/9.6.0 ("));
    assert_eq!(root.header("x-custom"), Some("yes"));
    assert_eq!(root.header("accept"), None, "no Accept header by default");
    assert_eq!(root.header("accept-encoding"), None);
    assert_eq!(root.header("content-type"), None);
    let bulk = &seen[1];
    assert_eq!(bulk.line, "POST /_bulk?refresh=true HTTP/1.1");
    assert_eq!(bulk.header("content-type"), Some("application/json"));
    assert_eq!(
        bulk.body,
        "{\"update\":{\"_id\":\"a1\",\"retry_on_conflict\":3,\"_index\":\".fleet-agents\"}}\n{\"doc\":{\"policy_revision_idx\":2}}\n"
    );
    let auth = &seen[2];
    assert_eq!(auth.line, "GET /_security/_authenticate HTTP/1.1");
    assert_eq!(
        auth.header("authorization"),
        Some("ApiKey a2lkOmtz"),
        "the caller's own key, no Bearer"
    );
    assert_eq!(
        seen[3].line,
        "GET /_security/api_key?id=kid&owner=true HTTP/1.1"
    );
    let msearch = &seen[4];
    assert_eq!(msearch.line, "POST /_msearch HTTP/1.1");
    assert_eq!(
        msearch.body,
        "{\"index\": \".fleet-enrollment-api-keys\"}\n{\"query\":{\"bool\":{\"filter\":[{\"term\":{\"api_key_id\":\"kid\"}},{\"term\":{\"active\":true}}]}}}\n"
    );
    assert!(
        !format!("{store:?}").contains("c2VydmljZS10b2tlbg"),
        "token redacted in Debug"
    );
}
