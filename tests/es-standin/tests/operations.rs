//! Security flows (API keys, service tokens, secrets), fault injection (library and control
//! endpoint), HTTPS with client certificates, the seeding helper, and the binary's command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{fleet, ndjson, start};
use es_standin::{Client, ClientAuth, ClientTls, Options, StandIn, TlsSettings};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

#[test]
fn api_key_lifecycle_as_fleet_uses_it() {
    let es = start(1000);
    let c = fleet(&es);
    let body = json!({"name": "agent-1", "role_descriptors": {"fleet-apikey-access": {"cluster": [], "applications": [{"application": "fleet", "privileges": ["no-privileges"], "resources": ["*"]}]}}, "metadata": {"agent_id": "agent-1", "managed": true, "managed_by": "fleet-server", "type": "access"}});
    let (s, k) = c
        .json("POST", "/_security/api_key?refresh=false", Some(&body))
        .unwrap();
    assert_eq!(s, 200, "{k}");
    let id = k["id"].as_str().unwrap().to_string();
    let encoded = k["encoded"].as_str().unwrap().to_string();
    assert_eq!(k["api_key"].as_str().unwrap().len(), 22);
    // _authenticate with the agent's key replaces the bearer token
    let r = c
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {encoded}"))],
            None,
        )
        .unwrap();
    let a = r.json();
    assert_eq!(
        (
            a["username"].clone(),
            a["enabled"].clone(),
            a["authentication_type"].clone()
        ),
        (json!("elastic/fleet-server"), json!(true), json!("api_key"))
    );
    assert_eq!(a["api_key"], json!({"id": id, "name": "agent-1"}));
    assert_eq!(a["roles"], json!([]));
    // the access key can do nothing else
    let r = c
        .request(
            "POST",
            "/_mget",
            &[("Authorization", &format!("ApiKey {encoded}"))],
            Some(b"{\"docs\":[{\"_index\":\".fleet-agents\",\"_id\":\"x\"}]}"),
        )
        .unwrap();
    assert_eq!(r.status, 403);
    let (s, g) = c
        .json(
            "GET",
            &format!("/_security/api_key?id={id}&owner=true"),
            None,
        )
        .unwrap();
    assert_eq!(s, 200);
    let rd = &g["api_keys"][0]["role_descriptors"]["fleet-apikey-access"];
    assert_eq!(rd["run_as"], json!([]));
    assert_eq!(rd["transient_metadata"], json!({"enabled": true}));
    assert_eq!(g["api_keys"][0]["metadata"]["type"], "access");
    let (_, none) = c
        .json("GET", "/_security/api_key?id=unknown&owner=true", None)
        .unwrap();
    assert_eq!(none, json!({"api_keys": []}));
    // bulk update: new roles updated, same roles noop
    let roles = json!({"r1": {"cluster": ["monitor"]}});
    let (_, u) = c
        .json(
            "POST",
            "/_security/api_key/_bulk_update",
            Some(&json!({"ids": [id], "role_descriptors": roles})),
        )
        .unwrap();
    assert_eq!(u, json!({"updated": [id], "noops": []}));
    let (_, u) = c
        .json(
            "POST",
            "/_security/api_key/_bulk_update",
            Some(&json!({"ids": [id], "role_descriptors": roles})),
        )
        .unwrap();
    assert_eq!(u, json!({"updated": [], "noops": [id]}));
    let (_, inv) = c
        .json(
            "DELETE",
            "/_security/api_key",
            Some(&json!({"ids": [id, "unknown"], "owner": true})),
        )
        .unwrap();
    assert_eq!(
        inv,
        json!({"invalidated_api_keys": [id], "previously_invalidated_api_keys": [], "error_count": 0})
    );
    let r = c
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {encoded}"))],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["additional_unsuccessful_credentials"],
        format!("API key: api key [{id}] has been invalidated")
    );
    let (_, g) = c
        .json(
            "GET",
            &format!("/_security/api_key?id={id}&owner=true"),
            None,
        )
        .unwrap();
    assert_eq!(g["api_keys"][0]["invalidated"], true);
    // expiration
    let (_, k) = es
        .client()
        .json(
            "POST",
            "/_security/api_key",
            Some(&json!({"name": "short", "expiration": "1ms"})),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let r = c
        .request(
            "GET",
            "/",
            &[(
                "Authorization",
                &format!("ApiKey {}", k["encoded"].as_str().unwrap()),
            )],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["additional_unsuccessful_credentials"],
        "API key: api key is expired"
    );
}

#[test]
fn service_tokens_and_secrets() {
    let es = start(1000);
    let su = es.client();
    let (s, t) = su
        .json(
            "POST",
            "/_security/service/elastic/fleet-server/credential/token/fleet-token-1",
            None,
        )
        .unwrap();
    assert_eq!(s, 200);
    let token = t["token"]["value"].as_str().unwrap().to_string();
    let c = Client::new(&es.url(), None)
        .unwrap()
        .with_auth(&format!("Bearer {token}"));
    let (_, a) = c.json("GET", "/_security/_authenticate", None).unwrap();
    assert_eq!(
        a["token"],
        json!({"name": "fleet-token-1", "type": "_service_account_index"})
    );
    let (s, p) = c
        .json("POST", "/_fleet/secret", Some(&json!({"value": "id:key"})))
        .unwrap();
    assert_eq!(s, 200);
    let sid = p["id"].as_str().unwrap().to_string();
    let (_, g) = c
        .json("GET", &format!("/_fleet/secret/{sid}"), None)
        .unwrap();
    assert_eq!(g, json!({"id": sid, "value": "id:key"}));
    let (s, d) = c
        .json("DELETE", &format!("/_fleet/secret/{sid}"), None)
        .unwrap();
    assert_eq!((s, d), (200, json!({"deleted": true})));
    let (s, e) = c
        .json("GET", &format!("/_fleet/secret/{sid}"), None)
        .unwrap();
    assert_eq!(s, 404);
    assert_eq!(e["error"]["reason"], format!("No secret with id [{sid}]"));
    let bad = Client::new(&es.url(), None)
        .unwrap()
        .with_auth("Basic ZWxhc3RpYzp3cm9uZw==");
    assert_eq!(bad.json("GET", "/", None).unwrap().0, 401);
}

#[test]
fn faults_through_library_and_control_endpoint() {
    let es = start(1000);
    let c = fleet(&es);
    es.faults().fail_next(2, 429);
    for _ in 0..2 {
        let r = c.request("GET", "/", &[], None).unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.json()["error"]["type"], "es_rejected_execution_exception");
        assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    }
    assert_eq!(c.json("GET", "/", None).unwrap().0, 200);
    // control endpoint (no auth)
    let anon = Client::new(&es.url(), None).unwrap();
    assert_eq!(
        anon.json("POST", "/_standin/faults/fail?count=1&status=503", None)
            .unwrap()
            .0,
        200
    );
    let (s, v) = c.json("GET", "/", None).unwrap();
    assert_eq!(
        (s, v["error"]["type"].clone()),
        (503, json!("cluster_block_exception"))
    );
    anon.json("POST", "/_standin/faults/latency?ms=150", None)
        .unwrap();
    let t = Instant::now();
    c.json("GET", "/", None).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(140));
    anon.json("POST", "/_standin/faults/clear", None).unwrap();
    // hang: the request gets no answer until released
    es.faults().hang(true);
    let mut slow = c.clone();
    slow.timeout = Duration::from_millis(200);
    assert!(slow.request("GET", "/", &[], None).is_err());
    es.faults().hang(false);
    // down: connections refused, state intact after up
    ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"create": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"active": true}),
        ],
    );
    es.faults().down(None);
    assert!(common::eventually(Duration::from_secs(2), || c
        .request("GET", "/", &[], None)
        .is_err()));
    es.faults().up();
    assert!(common::eventually(Duration::from_secs(2), || c
        .request("GET", "/", &[], None)
        .is_ok()));
    assert_eq!(
        es.document(".fleet-agents", "A1"),
        Some(json!({"active": true}))
    );
    // timed down through the control endpoint
    anon.json("POST", "/_standin/faults/down?for=300ms", None)
        .unwrap();
    assert!(common::eventually(Duration::from_secs(2), || c
        .request("GET", "/", &[], None)
        .is_err()));
    assert!(common::eventually(Duration::from_secs(3), || c
        .request("GET", "/", &[], None)
        .is_ok()));
}

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let sk = KeyPair::generate().unwrap();
    let sc = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&sk, &issuer)
        .unwrap();
    let ck = KeyPair::generate().unwrap();
    let cc = CertificateParams::new(vec!["client".into()])
        .unwrap()
        .signed_by(&ck, &issuer)
        .unwrap();
    Pki {
        ca: ca.pem(),
        server: (sc.pem(), sk.serialize_pem()),
        client: (cc.pem(), ck.serialize_pem()),
    }
}

fn tls_standin(p: &Pki, auth: Option<ClientAuth>) -> StandIn {
    let tls = TlsSettings {
        cert_pem: p.server.0.clone().into_bytes(),
        key_pem: p.server.1.clone().into_bytes(),
        client_ca_pem: auth.map(|_| p.ca.clone().into_bytes()),
        client_auth: auth.unwrap_or(ClientAuth::Optional),
    };
    StandIn::start(Options {
        tls: Some(tls),
        ..Options::default()
    })
    .unwrap()
}

#[test]
fn https_and_client_certificates() {
    let p = pki();
    let es = tls_standin(&p, None);
    assert!(es.url().starts_with("https://127.0.0.1:"));
    let ca_only = ClientTls {
        ca_pem: Some(p.ca.clone().into_bytes()),
        ..ClientTls::default()
    };
    let c = Client::new(&es.url(), Some(ca_only.clone()))
        .unwrap()
        .with_auth(&es.superuser_auth());
    assert_eq!(c.json("GET", "/", None).unwrap().0, 200);
    let untrusting = Client::new(&es.url(), Some(ClientTls::default())).unwrap();
    assert!(
        untrusting.json("GET", "/", None).is_err(),
        "unknown CA is rejected by the client"
    );
    drop(es);
    let es = tls_standin(&p, Some(ClientAuth::Required));
    let no_cert = Client::new(&es.url(), Some(ca_only.clone()))
        .unwrap()
        .with_auth(&es.superuser_auth());
    assert!(
        no_cert.json("GET", "/", None).is_err(),
        "required client certificate"
    );
    let with_cert = ClientTls {
        client_cert: Some((
            p.client.0.clone().into_bytes(),
            p.client.1.clone().into_bytes(),
        )),
        ..ca_only.clone()
    };
    let c = Client::new(&es.url(), Some(with_cert))
        .unwrap()
        .with_auth(&es.superuser_auth());
    assert_eq!(c.json("GET", "/", None).unwrap().0, 200);
    drop(es);
    let es = tls_standin(&p, Some(ClientAuth::Optional));
    let c = Client::new(&es.url(), Some(ca_only))
        .unwrap()
        .with_auth(&es.superuser_auth());
    assert_eq!(
        c.json("GET", "/", None).unwrap().0,
        200,
        "optional client certificate"
    );
}

#[test]
fn seeding_like_kibana() {
    let es = start(1000);
    let seed = es.seed();
    seed.fleet_server_policy("fleet-server-policy").unwrap();
    seed.agent_policy("agent-policy").unwrap();
    let rev = seed.new_revision("agent-policy").unwrap();
    assert_eq!(rev["revision_idx"], 2);
    assert_eq!(rev["data"]["revision"], 2);
    let key = seed.enrollment_key("agent-policy", "Default").unwrap();
    let action = seed
        .action(
            "UPGRADE",
            &["agent-1", "agent-2"],
            json!({"version": "9.6.0"}),
        )
        .unwrap();
    let c = fleet(&es);
    let (_, v) = ndjson(
        &c,
        "/_msearch",
        &[
            json!({"index": ".fleet-enrollment-api-keys"}),
            json!({"query": {"bool": {"filter": [{"term": {"api_key_id": key.api_key_id}}, {"term": {"active": true}}]}}}),
            json!({"index": ".fleet-actions"}),
            json!({"_source": {"excludes": ["agents"]}, "query": {"bool": {"filter": [{"term": {"action_id": action}}]}}}),
            json!({"index": ".fleet-policies", "ignore_unavailable": true}),
            json!({"aggs": {"policy_id": {"aggs": {"revision_idx": {"top_hits": {"size": 1, "sort": [{"revision_idx": "desc"}]}}}, "terms": {"field": "policy_id", "size": 10000}}}, "size": 0}),
        ],
    );
    assert_eq!(
        v["responses"][0]["hits"]["hits"][0]["_source"]["policy_id"],
        "agent-policy"
    );
    assert_eq!(
        v["responses"][1]["hits"]["hits"][0]["_source"]["type"],
        "UPGRADE"
    );
    let buckets = v["responses"][2]["aggregations"]["policy_id"]["buckets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(buckets.len(), 2);
    let agent = buckets.iter().find(|b| b["key"] == "agent-policy").unwrap();
    assert_eq!(
        agent["revision_idx"]["hits"]["hits"][0]["_source"]["revision_idx"],
        2
    );
    let fs = buckets
        .iter()
        .find(|b| b["key"] == "fleet-server-policy")
        .unwrap();
    assert_eq!(
        fs["revision_idx"]["hits"]["hits"][0]["_source"]["data"]["inputs"][0]["type"],
        "fleet-server"
    );
    // the enrollment key authenticates
    let r = c
        .request(
            "GET",
            "/_security/_authenticate",
            &[("Authorization", &format!("ApiKey {}", key.api_key))],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn binary_prints_url_first_and_seeds() {
    let exe = env!("CARGO_BIN_EXE_es-standin");
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            "elastic:pw123456",
            "--service-token",
            "t1:s1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    out.read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    println!("binary ready in {:?}", t.elapsed());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut token_line = String::new();
    out.read_line(&mut token_line).unwrap();
    let token = token_line
        .trim()
        .strip_prefix("service_token=")
        .unwrap()
        .to_string();
    let c = Client::new(&url, None)
        .unwrap()
        .with_auth(&format!("Bearer {token}"));
    assert_eq!(c.json("GET", "/", None).unwrap().0, 200);
    let seed = std::process::Command::new(exe)
        .args([
            "seed",
            "--url",
            &url,
            "--user",
            "elastic:pw123456",
            "enrollment-key",
            "--policy-id",
            "p1",
        ])
        .output()
        .unwrap();
    assert!(
        seed.status.success(),
        "{}",
        String::from_utf8_lossy(&seed.stderr)
    );
    let v: Value = serde_json::from_slice(&seed.stdout).unwrap();
    assert_eq!(v["policy_id"], "p1");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn control_listener_survives_down() {
    let es = StandIn::start(Options {
        control_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Options::default()
    })
    .unwrap();
    let ctl = Client::new(&es.control_url().unwrap(), None).unwrap();
    let c = fleet(&es);
    assert_eq!(
        ctl.json("GET", "/", None).unwrap().0,
        404,
        "the control listener serves /_standin/* only"
    );
    assert_eq!(
        ctl.json("POST", "/_standin/faults/down", None).unwrap().0,
        200
    );
    assert!(common::eventually(Duration::from_secs(2), || c
        .request("GET", "/", &[], None)
        .is_err()));
    assert_eq!(
        ctl.json("GET", "/_standin/faults", None).unwrap().1["faults"]["down"],
        true
    );
    assert_eq!(
        ctl.json("POST", "/_standin/faults/up", None).unwrap().0,
        200
    );
    assert!(common::eventually(Duration::from_secs(2), || c
        .request("GET", "/", &[], None)
        .is_ok()));
}

#[test]
fn binary_control_listen_prints_its_url_and_survives_down() {
    let exe = env!("CARGO_BIN_EXE_es-standin");
    let mut child = std::process::Command::new(exe)
        .args(["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_string());
    }
    let url = lines[0].clone();
    let control = lines[2]
        .strip_prefix("control=")
        .unwrap_or_else(|| panic!("third line is the control URL: {lines:?}"))
        .to_string();
    assert_ne!(url, control);
    let ctl = Client::new(&control, None).unwrap();
    let es = Client::new(&url, None).unwrap();
    assert_eq!(
        ctl.json("POST", "/_standin/faults/down", None).unwrap().0,
        200
    );
    assert!(common::eventually(Duration::from_secs(2), || es
        .request("GET", "/", &[], None)
        .is_err()));
    assert_eq!(
        ctl.json("POST", "/_standin/faults/up", None).unwrap().0,
        200
    );
    assert!(common::eventually(Duration::from_secs(2), || es
        .request("GET", "/", &[], None)
        .is_ok()));
    let _ = child.kill();
    let _ = child.wait();
}
