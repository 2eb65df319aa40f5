//! Agent mode through the real binary against the Elasticsearch stand-in: the Fleet Server
//! policy's overrides (port, Elasticsearch hosts) applied at startup and live on a new revision,
//! "must be CLI" settings in the policy ignored and logged, and self-registration with
//! `/api/status` following the self-monitor (fleet-protocol.md §6.5, seeds' precedence tables).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::agent::{once, raw_request, Agent};
use crate::support::client::tls_config;
use crate::support::{FleetEdge, TempDir};

/// The monitor reads the policy every 5 s; a change shows within two rounds.
const MONITOR_ROUNDS: Duration = Duration::from_secs(15);

fn standin() -> es_standin::StandIn {
    es_standin::StandIn::start(es_standin::Options {
        refresh_interval: Some(Duration::from_millis(100)),
        ..es_standin::Options::default()
    })
    .unwrap()
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Fleet Server policy as Kibana writes it, with `server` settings and an output.
fn fleet_server_data(revision: i64, server: Value, output: Value) -> Value {
    json!({
        "id": "fs-policy", "revision": revision,
        "outputs": {"default": output},
        "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
        "inputs": [{"id": "fleet_server-fs", "type": "fleet-server", "use_output": "default",
                    "meta": {"package": {"name": "fleet_server", "version": "1.6.0"}},
                    "server": server}]
    })
}

fn start(es: &es_standin::StandIn, extra: &[&str]) -> FleetEdge {
    let argv = args(es, extra);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    FleetEdge::start(&argv)
}

fn args(es: &es_standin::StandIn, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--fleet-server-es",
        "",
        "--fleet-server-service-token",
        "",
        "--fleet-server-policy",
        "fs-policy",
    ];
    args.extend_from_slice(extra);
    let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    args[1] = es.url();
    args[3] = es.service_token();
    args
}

fn roots(server: &FleetEdge) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(server.data_dir.join("certs/ca.crt")).unwrap();
    tls_config(
        &[rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap()],
        None,
    )
}

fn status(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> (u16, Value) {
    let raw = raw_request("GET", "/api/status", None, b"", false, "curl/8");
    let resp = once(addr, tls, &raw);
    (resp.status, resp.json())
}

/// Polls `probe` until it returns `Some`, failing with `what` after `within`.
fn eventually<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn policy_port_and_es_hosts_override_the_bootstrap_and_must_be_cli_settings_are_ignored() {
    let es = standin();
    let port = free_port();
    // The same cluster under another name: the log shows which URL is used.
    let policy_es = es.url().replace("127.0.0.1", "localhost");
    let mut output = json!({"type": "elasticsearch", "hosts": [policy_es],
                            "service_token": "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3N0b2xlbg",
                            "ssl.ca_trusted_fingerprint": "ab:cd"});
    output["ssl"] = json!({"verification_mode": "none"});
    es.seed()
        .policy_with_data(
            "fs-policy",
            fleet_server_data(1, json!({"port": port, "host": "127.0.0.1"}), output),
        )
        .unwrap();
    let server = start(&es, &[]);
    let log = server.log();
    assert!(
        server.url.ends_with(&format!(":{port}")),
        "the policy's port is not the one served: {}\n{log}",
        server.url
    );
    for needle in [
        format!("sets server.port: 0 -> {port}").as_str(),
        &format!("output.elasticsearch.hosts: {} -> {policy_es}", es.url()),
        &format!("connected to Elasticsearch 9.6.0 at {policy_es}"),
        "output default: service_token is not used",
        "ssl.ca_trusted_fingerprint is not used",
        "--fleet-server-es-insecure",
    ] {
        assert!(log.contains(needle), "{needle:?} not logged:\n{log}");
    }
    assert!(
        !log.contains("AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3N0b2xlbg"),
        "the policy's service token reached the log"
    );
    // Agents are served on the policy's port, through the policy's Elasticsearch URL.
    let token = es
        .seed()
        .enrollment_key("fs-policy", "Default")
        .unwrap()
        .api_key;
    let (mut agent, _) = Agent::enroll(server.addr, roots(&server), &token, &[]);
    let (resp, _) = agent.checkin();
    assert_eq!(resp.status, 200);
}

#[test]
fn a_new_revision_that_moves_the_port_is_applied_live_and_logged() {
    let es = standin();
    es.seed()
        .policy_with_data(
            "fs-policy",
            fleet_server_data(
                1,
                json!({"timeouts": {"checkin_long_poll": "30s"}}),
                json!({"type": "elasticsearch", "hosts": [es.url()]}),
            ),
        )
        .unwrap();
    let server = start(&es, &[]);
    let first = server.addr;
    let token = es
        .seed()
        .enrollment_key("fs-policy", "Default")
        .unwrap()
        .api_key;
    Agent::enroll(first, roots(&server), &token, &[]);

    let port = free_port();
    es.seed()
        .policy_with_data(
            "fs-policy",
            fleet_server_data(
                2,
                json!({"port": port, "timeouts": {"checkin_long_poll": "30s"}}),
                json!({"type": "elasticsearch", "hosts": [es.url()]}),
            ),
        )
        .unwrap();
    let moved = format!("listening on https://127.0.0.1:{port}");
    server
        .wait_for_log(&moved, MONITOR_ROUNDS)
        .unwrap_or_else(|| panic!("not restarted on the new port:\n{}", server.log()));
    let log = server.log();
    assert!(
        log.contains(
            "policy fs-policy revision 2 changes this server's settings: restarting the listener"
        ),
        "{log}"
    );
    // Changes are stated against the bootstrap settings (here a free port, 0).
    assert!(
        log.contains(&format!("sets server.port: 0 -> {port}")),
        "{log}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut agent, _) = Agent::enroll(addr, roots(&server), &token, &[]);
    assert_eq!(agent.checkin().0.status, 200);
    // The old port is closed.
    assert!(std::net::TcpStream::connect(first).is_err());
    // The first server's backend was joined: one set of threads, not two (src/lib.rs budget).
    let names = crate::threads::threads(server.pid());
    assert!(names.len() <= 7, "after the restart: {names:?}");
}

#[test]
fn the_server_enrolls_itself_into_its_policy_and_status_follows_the_self_monitor() {
    let es = standin();
    let data = TempDir::new("selfreg");
    let argv = args(&es, &[]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let server = FleetEdge::start_in(data.path(), &argv, &[]);
    let tls = roots(&server);
    // No Fleet Server policy yet: STARTING, 503.
    let (code, body) = status(server.addr, Arc::clone(&tls));
    assert_eq!(
        (code, body["status"].as_str()),
        (503, Some("STARTING")),
        "{body}"
    );
    assert!(server
        .log()
        .contains("Waiting on policy with Fleet Server integration: fs-policy"));

    es.seed()
        .policy_with_data(
            "fs-policy",
            fleet_server_data(
                1,
                json!({"host": "127.0.0.1"}),
                json!({"type": "elasticsearch", "hosts": [es.url()]}),
            ),
        )
        .unwrap();
    es.seed()
        .enrollment_key("fs-policy", "Fleet Server")
        .unwrap();
    eventually(MONITOR_ROUNDS, "HEALTHY status", || {
        let (code, body) = status(server.addr, Arc::clone(&tls));
        (code == 200 && body["status"] == "HEALTHY").then_some(())
    });
    let line = server
        .wait_for_log(
            "enrolled itself into policy fs-policy as agent ",
            Duration::ZERO,
        )
        .unwrap_or_else(|| panic!("{}", server.log()));
    let id = line.rsplit(' ').next().unwrap().to_owned();
    let doc = es
        .document(".fleet-agents", &id)
        .expect("own agent document");
    let source = &doc;
    assert_eq!(source["policy_id"], "fs-policy");
    assert_eq!(source["active"], true);
    assert_eq!(source["last_checkin_status"], "online");
    assert_eq!(
        source["last_checkin_message"],
        "Running on policy with Fleet Server integration: fs-policy"
    );
    assert_eq!(source["policy_revision_idx"], 1);
    let meta = &source["local_metadata"];
    assert!(meta["elastic"]["agent"]["build"]["original"]
        .as_str()
        .is_some_and(|s| s.starts_with("fleet-edge ")));
    assert_eq!(meta["host"]["architecture"], std::env::consts::ARCH);
    assert_eq!(source["components"][0]["type"], "fleet-server");
    assert_eq!(source["components"][0]["status"], "HEALTHY");
    // Its identity survives a restart: the same agent checks in again, no second enrollment.
    drop(server);
    let again = FleetEdge::start_in(data.path(), &argv, &[]);
    eventually(MONITOR_ROUNDS, "HEALTHY status after a restart", || {
        let (code, _) = status(again.addr, roots(&again));
        (code == 200).then_some(())
    });
    assert!(
        !again.log().contains("enrolled itself"),
        "enrolled a second time:\n{}",
        again.log()
    );
}

#[test]
fn sighup_reloads_in_agent_mode_and_does_not_stop_the_server() {
    let es = standin();
    let mut server = start(&es, &[]);
    std::fs::write(server.data_dir.join("log-level"), "debug\n").unwrap();
    server.sighup();
    let line = server
        .wait_for_log("reloaded:", MONITOR_ROUNDS)
        .unwrap_or_else(|| panic!("no reload line:\n{}", server.log()));
    assert!(line.contains("log level INFO -> DEBUG"), "{line}");
    let (code, _) = status(server.addr, roots(&server));
    assert!(code == 200 || code == 503, "status answered {code}");
    assert!(server.wait_exit(Duration::from_millis(200)).is_none());
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(30)).unwrap().success());
}

/// The monitoring endpoint from the Fleet Server policy's `http.*` keys (Elastic's `http.enabled`,
/// `http.host`, `http.port`, nested or dotted): started by the first revision, moved by a new
/// port, stopped by `enabled: false`, each time with the listener's restart.
#[test]
fn the_policys_http_keys_start_move_and_stop_the_monitoring_endpoint() {
    let es = standin();
    let with_http = |revision: i64, http: Value| {
        let mut data = fleet_server_data(
            revision,
            json!({"timeouts": {"checkin_long_poll": "30s"}}),
            json!({"type": "elasticsearch", "hosts": [es.url()]}),
        );
        let input = data["inputs"][0].as_object_mut().unwrap();
        for (k, v) in http.as_object().unwrap() {
            input.insert(k.clone(), v.clone());
        }
        data
    };
    let get = |port: u16, path: &str| {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        crate::support::Client::plain(addr)
            .and_then(|mut c| {
                c.request(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            })
            .map(|r| r.status)
            .ok()
    };
    let first = free_port();
    es.seed()
        .policy_with_data(
            "fs-policy",
            with_http(
                1,
                json!({"http": {"enabled": true, "host": "127.0.0.1", "port": first}}),
            ),
        )
        .unwrap();
    let server = start(&es, &[]);
    server
        .wait_for_log(
            &format!("monitoring endpoint on http://127.0.0.1:{first}"),
            MONITOR_ROUNDS,
        )
        .unwrap_or_else(|| panic!("no endpoint from the policy:\n{}", server.log()));
    assert_eq!(get(first, "/state"), Some(200));
    assert!(server.log().contains("sets http.enabled: false -> true"));

    let second = free_port();
    es.seed()
        .policy_with_data(
            "fs-policy",
            with_http(
                2,
                json!({"http.enabled": true, "http.host": "127.0.0.1", "http.port": second}),
            ),
        )
        .unwrap();
    server
        .wait_for_log(
            &format!("monitoring endpoint on http://127.0.0.1:{second}"),
            MONITOR_ROUNDS,
        )
        .unwrap_or_else(|| panic!("the endpoint did not move:\n{}", server.log()));
    assert_eq!(get(second, "/stats"), Some(200));
    eventually(MONITOR_ROUNDS, "the old endpoint closed", || {
        get(first, "/state").is_none().then_some(())
    });

    es.seed()
        .policy_with_data(
            "fs-policy",
            with_http(3, json!({"http": {"enabled": false}})),
        )
        .unwrap();
    assert!(server.wait_for_log_count(
        "changes this server's settings: restarting the listener",
        2,
        MONITOR_ROUNDS
    ));
    eventually(MONITOR_ROUNDS, "the endpoint stopped", || {
        get(second, "/state").is_none().then_some(())
    });
    // Agents are still served.
    let token = es
        .seed()
        .enrollment_key("fs-policy", "Default")
        .unwrap()
        .api_key;
    let (mut agent, _) = Agent::enroll(server_addr(&server), roots(&server), &token, &[]);
    assert_eq!(agent.checkin().0.status, 200);
}

/// Where the server listens now (its last `listening on` line).
fn server_addr(server: &FleetEdge) -> SocketAddr {
    let log = server.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("listening on https://"))
        .unwrap();
    line.split("https://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}
