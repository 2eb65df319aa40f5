//! Mapping conformance: a whole agent life (enroll with a replace token, checkins written by the
//! bulk writer, output keys, acks of an action, a policy, an upgrade, and an unenroll) runs
//! through the protocol operations over `EsStore`, and every document and partial document the
//! store wrote is checked against `../shared/reference/es/mappings`: each field is mapped (with
//! a value of the mapped type), lies under an `enabled: false` or `dynamic: true` object, is
//! agent-reported content (`local_metadata`, `upgrade_details`), or is one of the source-only
//! fields es-contract.md §4 (agents) and fleet-protocol.md §4.2 (results' `namespaces`) name as
//! written by Fleet Server although unmapped. Skips, saying so,
//! when `../shared` is absent.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use es_standin::mapping::{collect_leaves, Mapping};
use serde_json::{json, Value};

use super::EsTestStore;
use crate::backend::conformance::TestStore;
use crate::backend::interface::{AckInput, CheckinInput, EnrollInput};
use crate::backend::ops::ack::ack;
use crate::backend::ops::checkin::checkin_start;
use crate::backend::ops::enroll::enroll;
use crate::backend::ops::outputs::ensure_output_keys;
use crate::backend::ops::testkit::remotes;
use crate::backend::relay::prepare_policy;
use crate::backend::{ApiKey, Store};
use crate::model::Action;

/// Source-only fields Fleet Server writes to `.fleet-agents` (es-contract.md §4).
const AGENT_SOURCE_ONLY: &[&str] = &[
    "outputs",
    "agent_policy_id",
    "health",
    "capabilities",
    "effective_config",
    "sequence_num",
    "upgrade.rollbacks",
    "policy_base_id",
    "replace_token",
];

/// Source-only fields Fleet Server writes to `.fleet-actions-results`: the action's
/// `namespaces` (fleet-protocol.md §4.2), absent from the results template.
const RESULT_SOURCE_ONLY: &[&str] = &["namespaces"];

/// Agent-reported objects stored as sent; their unmapped members are the agent's, not ours.
const AGENT_REPORTED: &[&str] = &["local_metadata", "upgrade_details"];

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/es/mappings")
}

/// A reference mapping file, placeholders (`${...}`) replaced as ES would.
fn reference(file: &str) -> Option<Mapping> {
    let text = std::fs::read_to_string(reference_dir().join(file)).ok()?;
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
        out.push_str(if out.ends_with('"') { "x" } else { "1" });
        rest = &rest[end..];
    }
    out.push_str(rest);
    let v: Value = serde_json::from_str(&out).ok()?;
    let m = v
        .get("mappings")
        .or_else(|| v.pointer("/template/mappings"))
        .cloned()?;
    Mapping::from_es_json(m.get("_doc").unwrap_or(&m)).ok()
}

fn under(path: &str, prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| path == *p || (path.starts_with(p) && path[p.len()..].starts_with('.')))
}

/// Problems of one written (partial) document.
fn violations(index: &str, doc: &Value, mapping: &Mapping) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = mapping.check(doc, "written") {
        out.push(format!(
            "{index}: a value does not fit its mapped type: {e:?}"
        ));
    }
    let mut leaves = Vec::new();
    collect_leaves(doc, "", &mut leaves);
    let allowed: &[&str] = if index == ".fleet-agents" {
        AGENT_SOURCE_ONLY
    } else {
        RESULT_SOURCE_ONLY
    };
    for (path, value) in leaves {
        if value.is_null()
            || mapping.lookup(&path).is_some()
            || under(
                &path,
                &mapping
                    .disabled
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            || under(
                &path,
                &mapping
                    .dynamic_objects
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            || under(&path, allowed)
            || (index == ".fleet-agents" && under(&path, AGENT_REPORTED))
        {
            continue;
        }
        out.push(format!("{index}: field {path} is not in the mapping"));
    }
    out
}

fn key_of(encoded: &str) -> ApiKey {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let (id, secret) = std::str::from_utf8(&raw).unwrap().split_once(':').unwrap();
    ApiKey {
        id: id.into(),
        secret: secret.into(),
    }
}

/// Drives an agent through its life over the store; returns the agent id.
fn agent_life(t: &EsTestStore) -> String {
    let now = SystemTime::now();
    t.es.seed().agent_policy("edge").unwrap();
    let token = t.seed_enrollment_key("edge");
    let body = json!({"type": "PERMANENT", "id": "", "replace_token": "r3pl4ce", "metadata": {
        "local": {"elastic": {"agent": {"id": "", "version": "9.2.1", "snapshot": false}},
                  "host": {"hostname": "gw-01", "architecture": "arm64"}, "os": {"family": "debian"}},
        "user_provided": {}, "tags": ["edge"]}});
    let resp = enroll(
        &t.store,
        &EnrollInput {
            key: token,
            agent_version: Ok("9.2.1".into()),
            body: crate::api::enroll::parse(&serde_json::to_vec(&body).unwrap()),
            pbkdf2_iterations: 1000,
            enrollment_id: None,
            client_ip: None,
        },
        now,
    )
    .unwrap();
    let id = resp["item"]["id"].as_str().unwrap().to_owned();
    let key = key_of(resp["item"]["access_api_key"].as_str().unwrap());

    let checkin = json!({"status": "DEGRADED", "message": "output degraded", "agent_policy_id": "edge",
        "policy_revision_idx": 1, "local_metadata": body["metadata"]["local"],
        "components": [{"id": "c1", "type": "log", "status": "DEGRADED", "message": "m",
                        "units": [{"id": "u1", "type": "output", "status": "DEGRADED", "message": "x"}]}],
        "upgrade_details": {"action_id": "up-1", "state": "UPG_DOWNLOADING", "target_version": "9.2.2",
                            "metadata": {"download_percent": 12.5}}});
    let start = checkin_start(
        &t.store,
        &remotes(),
        &CheckinInput {
            key: key.clone(),
            agent_id: id.clone(),
            agent_version: Ok("9.2.1".into()),
            body: crate::api::checkin::parse(&serde_json::to_vec(&checkin).unwrap()),
            deferred: None,
        },
        now,
    )
    .unwrap();
    let written = t
        .store
        .update_agents(&[(id.clone(), start.state.clone())])
        .unwrap();
    assert_eq!(written, vec![Ok(())]);

    let policy = t
        .store
        .latest_policies()
        .unwrap()
        .into_iter()
        .find(|p| p.policy_id == "edge")
        .unwrap();
    let prepared = prepare_policy(&t.store, &policy).unwrap();
    let agent = t.store.agent(&id).unwrap().unwrap();
    ensure_output_keys(&t.store, &remotes(), &agent, &prepared, now).unwrap();

    let settings = t.seed_action(Action {
        action_id: "act-settings".into(),
        action_type: "SETTINGS".into(),
        agents: vec![id.clone()],
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        data: json!({"log_level": "debug"}),
        namespaces: vec!["default".into()],
        ..Action::default()
    });
    let upgrade = t.seed_action(Action {
        action_id: "act-upgrade".into(),
        action_type: "UPGRADE".into(),
        agents: vec![id.clone()],
        data: json!({"version": "9.2.2"}),
        ..Action::default()
    });
    let events = json!({"events": [
        {"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED", "agent_id": id, "action_id": settings.action_id,
         "message": "ok", "timestamp": "2026-08-21T19:00:01.734912345Z"},
        {"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED", "agent_id": id, "action_id": upgrade.action_id,
         "message": "ok", "timestamp": "2026-08-21T19:00:02Z", "error": "download failed"},
        {"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED", "agent_id": id, "action_id": "policy:edge:1",
         "message": "ok", "timestamp": "2026-08-21T19:00:03Z"}]});
    ack(
        &t.store,
        &remotes(),
        &AckInput {
            key: key.clone(),
            agent_id: id.clone(),
            body: crate::api::ack::parse(&serde_json::to_vec(&events).unwrap()),
        },
        now,
    )
    .unwrap();

    let unenroll = t.seed_action(Action {
        action_id: "act-unenroll".into(),
        action_type: "UNENROLL".into(),
        agents: vec![id.clone()],
        ..Action::default()
    });
    let events = json!({"events": [{"type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED", "agent_id": id,
        "action_id": unenroll.action_id, "message": "ok", "timestamp": "2026-08-21T19:00:04Z"}]});
    ack(
        &t.store,
        &remotes(),
        &AckInput {
            key,
            agent_id: id.clone(),
            body: crate::api::ack::parse(&serde_json::to_vec(&events).unwrap()),
        },
        now,
    )
    .unwrap();
    id
}

#[test]
fn every_written_document_fits_the_reference_mappings() {
    let Some(agents) = reference("fleet-agents.json") else {
        println!(
            "mapping conformance skipped: {} not present",
            reference_dir().display()
        );
        return;
    };
    let results = reference("fleet-actions-results.json").expect("results mapping");
    let t = EsTestStore::new();
    let id = agent_life(&t);
    let written = t.store.written.lock().unwrap().clone();
    let indices: Vec<&str> = written.iter().map(|(i, _)| i.as_str()).collect();
    assert!(
        indices.contains(&".fleet-agents") && indices.contains(&".fleet-actions-results"),
        "{indices:?}"
    );
    assert!(
        written.len() >= 8,
        "the life wrote {} documents",
        written.len()
    );
    let mut problems = Vec::new();
    for (index, doc) in &written {
        let mapping = match index.as_str() {
            ".fleet-agents" => &agents,
            ".fleet-actions-results" => &results,
            other => panic!("unexpected index {other}"),
        };
        problems.extend(violations(index, doc, mapping));
    }
    assert!(problems.is_empty(), "{problems:#?}\nwritten: {written:#?}");
    let final_doc = t.es.document(".fleet-agents", &id).unwrap();
    assert_eq!(final_doc["active"], false, "the life ended unenrolled");
    problems.extend(violations(".fleet-agents", &final_doc, &agents));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_checker_catches_unmapped_fields_and_bad_types() {
    let Some(agents) = reference("fleet-agents.json") else {
        println!(
            "mapping conformance skipped: {} not present",
            reference_dir().display()
        );
        return;
    };
    let bad = json!({"invented_field": 1, "last_checkin": "not a date", "outputs": {"x": {"api_key": "k"}}});
    let found = violations(".fleet-agents", &bad, &agents);
    assert!(
        found.iter().any(|p| p.contains("invented_field")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("mapped type")), "{found:?}");
    assert!(!found.iter().any(|p| p.contains("outputs")), "{found:?}");
}
