//! Elastic Defend's artifact downloads, `GET /api/fleet/artifacts/{id}/{sha2}` (fleet-protocol.md
//! §8), on every store: the policy-based authorization rows (403 for an artifact the agent's
//! policy does not list), 404 for a listed artifact the store lacks, 500 for a malformed digest,
//! 401 without a good key, and the encoded bytes for a listed one.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::protocol::{checks, policy, start};
use crate::support::agent::{once, raw_request, Agent, VERSION};
use crate::support::stores::Fixture;

const EXCEPTIONS: &str = "endpoint-exceptionlist-linux-v1";
const TRUSTED: &str = "endpoint-trustlist-linux-v1";
const MISSING: &str = "endpoint-blocklist-linux-v1";

fn manifest(entries: &[(&str, &str)]) -> serde_json::Value {
    let artifacts: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(id, sha)| {
            (
                id.to_string(),
                json!({"decoded_sha256": sha, "relative_url": format!("/api/fleet/artifacts/{id}/{sha}")}),
            )
        })
        .collect();
    json!([{"id": "defend-1", "type": "endpoint", "artifact_manifest": {"manifest_version": "1.0.2", "schema_version": "v1", "artifacts": artifacts}}])
}

fn endpoint_artifacts_are_authorized_by_policy(fixture: Box<dyn Fixture>) {
    let exceptions =
        fleet_edge::files::endpoint::document(EXCEPTIONS, br#"{"entries":[{"type":"simple"}]}"#);
    let trusted = fleet_edge::files::endpoint::document(TRUSTED, br#"{"entries":[]}"#);
    let missing_sha = "ab".repeat(32);
    fixture.add_artifact(&exceptions);
    fixture.add_artifact(&trusted);

    let mut defend = policy("defend-policy", 1, checks());
    defend.data["inputs"] = manifest(&[
        (EXCEPTIONS, &exceptions.decoded_sha256),
        (MISSING, &missing_sha),
    ]);
    fixture.add_policy(defend);
    let mut other = policy("other-policy", 1, checks());
    other.data["inputs"] = manifest(&[(TRUSTED, "00".repeat(32).as_str())]);
    fixture.add_policy(other);
    let defend_token = fixture.add_token("defend-policy");
    let other_token = fixture.add_token("other-policy");
    let server = start(&*fixture, "1s");
    let (a, _) = Agent::enroll(server.addr, server.tls(), &defend_token.encoded(), &[]);
    let (b, _) = Agent::enroll(server.addr, server.tls(), &other_token.encoded(), &[]);

    let get = |key: Option<&str>, id: &str, sha: &str| {
        once(
            server.addr,
            server.tls(),
            &raw_request(
                "GET",
                &format!("/api/fleet/artifacts/{id}/{sha}"),
                key,
                b"",
                false,
                &format!("Elastic Agent v{VERSION}"),
            ),
        )
    };
    let error = |resp: &crate::support::HttpResponse| {
        let body = resp.json();
        (
            resp.status,
            body["error"].as_str().unwrap_or_default().to_owned(),
            body["message"].as_str().unwrap_or_default().to_owned(),
        )
    };

    // The agent is found by its key through a search: Elasticsearch makes a new agent visible
    // to search within its refresh interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ok = loop {
        let resp = get(Some(&a.access_key), EXCEPTIONS, &exceptions.decoded_sha256);
        if resp.status != 404 || Instant::now() > deadline {
            break resp;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    let encoded = base64::engine::general_purpose::STANDARD
        .decode(&exceptions.body)
        .unwrap();
    assert!(ok.body == encoded, "the encoded (zlib) bytes");
    assert!(
        ok.header("content-type").is_none(),
        "no explicit Content-Type"
    );

    // Row 8: stored, but not in the agent's policy; and another policy's agent.
    let r = get(Some(&a.access_key), TRUSTED, &trusted.decoded_sha256);
    assert_eq!(
        error(&r),
        (
            403,
            "Forbidden".into(),
            "agent not authorized for artifact".into()
        )
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = get(Some(&b.access_key), EXCEPTIONS, &exceptions.decoded_sha256);
        if r.status != 404 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        error(&r),
        (
            403,
            "Forbidden".into(),
            "agent not authorized for artifact".into()
        )
    );
    // The right digest under another identifier is not the artifact.
    let r = get(Some(&a.access_key), TRUSTED, &exceptions.decoded_sha256);
    assert_eq!(r.status, 403);

    // Row 7: listed but not stored.
    let r = get(Some(&a.access_key), MISSING, &missing_sha);
    assert_eq!(error(&r), (404, "NotFound".into(), "not found".into()));

    // A malformed digest is the catch-all 500.
    let r = get(Some(&a.access_key), EXCEPTIONS, "abc");
    assert_eq!(
        error(&r),
        (500, "BadRequest".into(), "malformed sha256".into())
    );

    // Keys: none, and one nobody has.
    let r = get(None, EXCEPTIONS, &exceptions.decoded_sha256);
    assert_eq!(r.status, 401);
    let forged = base64::engine::general_purpose::STANDARD.encode("nokey:nosecret");
    let r = get(Some(&forged), EXCEPTIONS, &exceptions.decoded_sha256);
    assert_eq!(r.status, 401);
}

on_every_store!(endpoint_artifacts_are_authorized_by_policy);

/// `fleet-edge artifacts add-endpoint` installs a checked document where the embedded store
/// reads it, and refuses one whose digests do not match.
#[test]
fn add_endpoint_installs_checked_documents_in_the_data_dir() {
    let data = crate::support::TempDir::new("defend");
    let staging = crate::support::TempDir::new("defend-staging");
    let doc = fleet_edge::files::endpoint::document(EXCEPTIONS, b"{\"entries\":[]}");
    let good = staging.join("good.json");
    std::fs::write(&good, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut tampered = doc.clone();
    tampered.decoded_sha256 = "cd".repeat(32);
    let bad = staging.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let dir = data.path().to_str().unwrap();

    let (status, _, err) = crate::support::run_to_exit(
        &[
            "artifacts",
            "add-endpoint",
            bad.to_str().unwrap(),
            "--data-dir",
            dir,
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("decoded_sha256"), "{err}");
    let (status, out, err) = crate::support::run_to_exit(
        &[
            "artifacts",
            "add-endpoint",
            good.to_str().unwrap(),
            "--data-dir",
            dir,
        ],
        &[],
    );
    assert_eq!(status.code(), Some(0), "{err}");
    let installed = data
        .join("endpoint-artifacts")
        .join(EXCEPTIONS)
        .join(format!("{}.json", doc.decoded_sha256));
    assert!(out.contains(installed.to_str().unwrap()), "{out}");
    let store = fleet_edge::backend::local::LocalStore::open(data.path()).unwrap();
    let found = fleet_edge::backend::Store::artifact(&store, EXCEPTIONS, &doc.decoded_sha256)
        .unwrap()
        .unwrap();
    assert_eq!(found, doc);
}
