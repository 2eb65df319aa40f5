//! `POST /api/fleet/agents/enroll` against the store (fleet-protocol.md §2.2-§2.6): validate the
//! enrollment token, resolve its record, answer the body's refusal (`api::enroll` parsed it), create or replace the agent, mint its access key, and
//! answer the §2.6 body. A failure after the key was minted invalidates it again.

use std::time::SystemTime;

// Moved to `backend::interface`; this path stays for the branches developed alongside the move.
// To be removed.
use crate::backend::interface::EnrollInput;

use serde_json::{json, Map, Value};

use super::{authenticate, replace_token, uuid_v4};
use crate::backend::OpError;
use crate::backend::{NewApiKey, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::model::{Agent, AgentInfo};

/// Enrolls an agent; returns the 200 body.
pub fn enroll(store: &dyn Store, input: &EnrollInput, now: SystemTime) -> Result<Value, OpError> {
    authenticate(store, &input.key)?;
    let version = input.agent_version.clone()?;
    let record = store
        .enrollment_key(&input.key.id)
        .map_err(OpError::from)?
        .ok_or_else(|| OpError::Refused("FindEnrollmentAPIKey: hit count mismatch 0".into()))?;
    let body = *input.body.clone()?;
    let tags = body.tags;
    let requested_id = body.id.filter(|id| !id.is_empty());
    let replace = body.replace_token.filter(|t| !t.is_empty());
    let enrolled_at = rfc3339_seconds(now);

    // Identity: a caller-chosen id may create, recreate (inactive) or replace (active + token).
    let mut replaced: Option<Agent> = None;
    let agent_id = match &requested_id {
        None => uuid_v4(),
        Some(id) => {
            match store.agent(id).map_err(OpError::from)? {
                None => {}
                Some(existing) if !existing.active => {
                    store.delete_agent(id).map_err(OpError::from)?
                }
                Some(existing) => {
                    let allowed = !existing.replace_token.is_empty()
                        && replace
                            .as_deref()
                            .is_some_and(|t| replace_token::verify(t, &existing.replace_token))
                        && existing.policy_id == record.policy_id;
                    if !allowed {
                        return Err(OpError::NotReplaceable);
                    }
                    replaced = Some(existing);
                }
            }
            id.clone()
        }
    };
    // §2.3: an earlier enroll with the same enrollment_id whose agent never checked in failed on
    // the agent's side; its key is invalidated and its document replaced by this enrollment.
    if let Some(enrollment_id) = body.enrollment_id.as_deref().filter(|e| !e.is_empty()) {
        if let Some(stale) = store
            .agent_by_enrollment_id(enrollment_id)
            .map_err(OpError::from)?
        {
            if stale.last_checkin.is_empty() && stale.id != agent_id {
                store
                    .invalidate_api_keys(std::slice::from_ref(&stale.access_api_key_id))
                    .map_err(OpError::from)?;
                store.delete_agent(&stale.id).map_err(OpError::from)?;
                log::info!(
                    "enrollment {enrollment_id}: replaced agent {} that never checked in",
                    stale.id
                );
            }
        }
    }
    let local_metadata = body.local_metadata.map(|m| rewrite_agent_id(m, &agent_id));

    let access = store
        .create_api_key(&NewApiKey {
            name: agent_id.clone(),
            role_descriptors: json!({"fleet-apikey-access": {"cluster": [], "applications": [
                {"application": "fleet", "privileges": ["no-privileges"], "resources": ["*"]}]}}),
            metadata: json!({"agent_id": agent_id, "managed": true, "managed_by": "fleet-server", "type": "access"}),
        })
        .map_err(OpError::from)?;

    let written = match &replaced {
        Some(old) => {
            let mut fields = Map::new();
            fields.insert("namespaces".into(), json!(record.namespaces));
            fields.insert(
                "local_metadata".into(),
                local_metadata.clone().unwrap_or(Value::Null),
            );
            fields.insert("access_api_key_id".into(), json!(access.id));
            fields.insert("agent".into(), json!({"id": agent_id, "version": version}));
            fields.insert("tags".into(), json!(tags));
            fields.insert("policy_revision_idx".into(), json!(0));
            fields.insert(
                "policy_base_id".into(),
                json!(base_policy_id(&record.policy_id)),
            );
            for cleared in [
                "audit_unenrolled_time",
                "audit_unenrolled_reason",
                "unenrolled_at",
                "unenrolled_reason",
            ] {
                fields.insert(cleared.into(), Value::Null);
            }
            fields.insert("updated_at".into(), json!(enrolled_at));
            store.update_agent(&agent_id, &fields).and_then(|()| {
                store.invalidate_api_keys(std::slice::from_ref(&old.access_api_key_id))
            })
        }
        None => {
            let agent = Agent {
                id: agent_id.clone(),
                active: true,
                access_api_key_id: access.id.clone(),
                action_seq_no: Some(vec![-1]),
                agent: Some(AgentInfo {
                    id: agent_id.clone(),
                    version: version.clone(),
                    kind: String::new(),
                }),
                agent_type: body.enroll_type.clone(),
                enrolled_at: enrolled_at.clone(),
                enrollment_id: body.enrollment_id.clone().unwrap_or_default(),
                local_metadata: local_metadata.clone(),
                namespaces: record.namespaces.clone(),
                policy_id: record.policy_id.clone(),
                policy_base_id: base_policy_id(&record.policy_id).to_owned(),
                replace_token: replace
                    .as_deref()
                    .map(|t| replace_token::hash(t, input.pbkdf2_iterations))
                    .unwrap_or_default(),
                tags: tags.clone(),
                ..Agent::default()
            };
            match store.create_agent(&agent) {
                // A concurrent create of the same id already did the work (§2.5: 409 is success).
                Err(StoreError::Conflict) => Ok(()),
                other => other,
            }
        }
    };
    if let Err(e) = written {
        let _ = store.invalidate_api_keys(std::slice::from_ref(&access.id));
        return Err(e.into());
    }

    log::info!(
        "audit: event.action=agent-enroll event.outcome=success fleet.agent.id={agent_id} fleet.policy.id={} host.name={} agent.version={version} client.ip={}{}",
        record.policy_id,
        local_metadata
            .as_ref()
            .and_then(|m| m.pointer("/host/hostname"))
            .and_then(Value::as_str)
            .unwrap_or("-"),
        input
            .client_ip
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        if replaced.is_some() { " (replaced)" } else { "" }
    );
    let (enrolled_at, agent_type, policy_id, user_provided) = match &replaced {
        Some(old) => (
            old.enrolled_at.clone(),
            old.agent_type.clone(),
            old.policy_id.clone(),
            old.user_provided_metadata.clone().unwrap_or(Value::Null),
        ),
        None => (enrolled_at, body.enroll_type, record.policy_id, Value::Null),
    };
    Ok(json!({
        "action": "created",
        "item": {
            "access_api_key": access.encoded(),
            "access_api_key_id": access.id,
            "active": true,
            "enrolled_at": enrolled_at,
            "id": agent_id,
            "local_metadata": local_metadata.unwrap_or(Value::Null),
            "policy_id": policy_id,
            "status": "online",
            "tags": tags,
            "type": agent_type,
            "user_provided_metadata": user_provided,
        }
    }))
}

/// The policy id without any `#suffix`.
fn base_policy_id(policy_id: &str) -> &str {
    policy_id.split('#').next().unwrap_or(policy_id)
}

/// Sets `elastic.agent.id` to the final id, only when that key path already exists.
fn rewrite_agent_id(mut local: Value, agent_id: &str) -> Value {
    if let Some(agent) = local
        .get_mut("elastic")
        .and_then(|e| e.get_mut("agent"))
        .and_then(Value::as_object_mut)
    {
        if agent.contains_key("id") {
            agent.insert("id".into(), Value::from(agent_id));
        }
    }
    local
}

#[cfg(test)]
mod tests {
    use super::super::testkit::store_with_policy;
    use super::*;
    use crate::backend::ApiKey;

    fn input(key: &ApiKey, body: Value) -> EnrollInput {
        EnrollInput {
            key: key.clone(),
            agent_version: Ok("9.2.1".into()),
            body: crate::api::enroll::parse(&serde_json::to_vec(&body).unwrap()),
            pbkdf2_iterations: 1000,
            enrollment_id: None,
            client_ip: None,
        }
    }

    #[test]
    fn enrollment_id_replaces_an_agent_that_never_checked_in() {
        let (store, token) = store_with_policy("p");
        let mut body = real_body();
        body["enrollment_id"] = json!("enr-1");
        let first = enroll(&*store, &input(&token, body.clone()), SystemTime::now()).unwrap();
        let first_id = first["item"]["id"].as_str().unwrap().to_owned();
        let first_key = access_key(&first);
        let second = enroll(&*store, &input(&token, body.clone()), SystemTime::now()).unwrap();
        let second_id = second["item"]["id"].as_str().unwrap().to_owned();
        assert_ne!(first_id, second_id);
        assert!(
            store.agent(&first_id).unwrap().is_none(),
            "the half-enrolled agent is gone"
        );
        assert!(
            store
                .authenticate(&first_key)
                .unwrap()
                .is_none_or(|i| !i.enabled),
            "its key invalidated"
        );
        assert_eq!(
            store.agent(&second_id).unwrap().unwrap().enrollment_id,
            "enr-1"
        );

        // Once the agent has checked in, a new enroll with the same id is a new agent.
        let mut seen = Map::new();
        seen.insert("last_checkin".into(), json!("2026-01-01T00:00:00Z"));
        store.update_agent(&second_id, &seen).unwrap();
        let third = enroll(&*store, &input(&token, body), SystemTime::now()).unwrap();
        assert!(
            store.agent(&second_id).unwrap().is_some(),
            "a live agent is never removed"
        );
        assert_ne!(third["item"]["id"], second["item"]["id"]);
    }

    fn real_body() -> Value {
        json!({"type": "PERMANENT", "id": "", "replace_token": "", "metadata": {
            "local": {"elastic": {"agent": {"id": "", "version": "9.2.1"}}, "host": {"hostname": "gw-01"}},
            "user_provided": {}, "tags": ["site-7", "edge", "edge"]}})
    }

    #[test]
    fn happy_path_matches_the_spec_response_and_document() {
        let (store, token) = store_with_policy("edge-policy");
        let resp = enroll(&*store, &input(&token, real_body()), SystemTime::now()).unwrap();
        assert_eq!(resp["action"], "created");
        let item = &resp["item"];
        let id = item["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(item["type"], "PERMANENT");
        assert_eq!(item["policy_id"], "edge-policy");
        assert_eq!(item["status"], "online");
        assert_eq!(item["tags"], json!(["edge", "site-7"]));
        assert_eq!(
            item["local_metadata"]["elastic"]["agent"]["id"], id,
            "id rewritten"
        );
        assert_eq!(item["user_provided_metadata"], Value::Null);
        assert!(crate::model::time::parse_rfc3339(item["enrolled_at"].as_str().unwrap()).is_some());

        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(item["access_api_key"].as_str().unwrap())
            .unwrap();
        let (kid, secret) = std::str::from_utf8(&decoded)
            .unwrap()
            .split_once(':')
            .unwrap();
        assert_eq!(kid, item["access_api_key_id"]);
        let key = ApiKey {
            id: kid.into(),
            secret: secret.into(),
        };
        let info = store.authenticate(&key).unwrap().unwrap();
        assert_eq!(info.metadata["type"], "access");

        let doc = store.agent(id).unwrap().unwrap();
        assert!(doc.active);
        assert_eq!(doc.action_seq_no, Some(vec![-1]));
        assert_eq!(doc.version(), "9.2.1");
        assert_eq!(doc.policy_id, "edge-policy");
        assert_eq!(doc.access_api_key_id, kid);
    }

    /// §2.5: the new-agent document has exactly the listed members (tags given, no
    /// `enrollment_id`, `replace_token` or namespaces) — `policy_revision_idx` is not one.
    #[test]
    fn the_new_agent_document_has_the_spec_members() {
        let (store, token) = store_with_policy("edge-policy");
        let resp = enroll(&*store, &input(&token, real_body()), SystemTime::now()).unwrap();
        let id = resp["item"]["id"].as_str().unwrap();
        let doc = store.agent_document(id).unwrap();
        let members: Vec<&str> = doc.keys().map(String::as_str).collect();
        assert_eq!(
            members,
            [
                "access_api_key_id",
                "action_seq_no",
                "active",
                "agent",
                "enrolled_at",
                "local_metadata",
                "policy_base_id",
                "policy_id",
                "tags",
                "type"
            ]
        );
    }

    /// §2.5 replacement: the listed members set (`policy_revision_idx: 0`, the audit and unenroll
    /// members cleared), `enrolled_at`, `type`, `policy_id`, `replace_token` kept.
    #[test]
    fn a_replacement_resets_the_spec_members() {
        let (store, token) = store_with_policy("p");
        let mut body = real_body();
        body["id"] = json!("fixed-id");
        body["replace_token"] = json!("s3cret");
        enroll(&*store, &input(&token, body.clone()), SystemTime::now()).unwrap();
        let mut seen = Map::new();
        seen.insert("policy_revision_idx".into(), json!(4));
        seen.insert("audit_unenrolled_reason".into(), json!("uninstall"));
        seen.insert(
            "audit_unenrolled_time".into(),
            json!("2026-01-01T00:00:00Z"),
        );
        store.update_agent("fixed-id", &seen).unwrap();
        let before = store.agent_document("fixed-id").unwrap();
        enroll(&*store, &input(&token, body), SystemTime::now()).unwrap();
        let doc = store.agent_document("fixed-id").unwrap();
        assert_eq!(doc["policy_revision_idx"], 0);
        assert!(!doc.contains_key("audit_unenrolled_reason"));
        assert!(!doc.contains_key("audit_unenrolled_time"));
        assert!(doc.contains_key("updated_at"));
        assert_eq!(doc["agent"]["id"], "fixed-id");
        for kept in ["enrolled_at", "type", "policy_id", "replace_token"] {
            assert_eq!(doc[kept], before[kept], "{kept}");
        }
    }

    #[test]
    fn token_errors_in_the_spec_order() {
        let (store, token) = store_with_policy("p");
        let bogus = ApiKey {
            id: token.id.clone(),
            secret: "wrong".into(),
        };
        assert_eq!(
            enroll(&*store, &input(&bogus, real_body()), SystemTime::now()),
            Err(OpError::Unauthorized(crate::backend::Why::KeyUnknown))
        );
        let mut bad_ua = input(&token, real_body());
        bad_ua.agent_version = Err(OpError::InvalidUserAgent);
        assert_eq!(
            enroll(&*store, &bad_ua, SystemTime::now()),
            Err(OpError::InvalidUserAgent)
        );
        let mut bad_json = input(&token, real_body());
        bad_json.body = crate::api::enroll::parse(b"{not json");
        assert!(
            matches!(enroll(&*store, &bad_json, SystemTime::now()), Err(OpError::Invalid(m)) if m.starts_with("unable to decode enroll request"))
        );
        let wrong_type = input(&token, json!({"type": "SOMETHING"}));
        assert_eq!(
            enroll(&*store, &wrong_type, SystemTime::now()),
            Err(OpError::Refused("unknown enroll request type".into()))
        );
        store.revoke_enrollment_key(&token.id).unwrap();
        assert_eq!(
            enroll(&*store, &input(&token, real_body()), SystemTime::now()),
            Err(OpError::Unauthorized(crate::backend::Why::KeyDisabled))
        );
    }

    #[test]
    fn access_key_used_on_enroll_is_500() {
        let (store, token) = store_with_policy("p");
        let resp = enroll(&*store, &input(&token, real_body()), SystemTime::now()).unwrap();
        let access = access_key(&resp);
        assert!(matches!(
            enroll(&*store, &input(&access, real_body()), SystemTime::now()),
            Err(OpError::Refused(_))
        ));
    }

    fn access_key(resp: &Value) -> ApiKey {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(resp["item"]["access_api_key"].as_str().unwrap())
            .unwrap();
        let (id, secret) = std::str::from_utf8(&decoded)
            .unwrap()
            .split_once(':')
            .unwrap();
        ApiKey {
            id: id.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn replace_token_rules() {
        let (store, token) = store_with_policy("p");
        let mut body = real_body();
        body["id"] = json!("fixed-id");
        body["replace_token"] = json!("s3cret");
        let first = enroll(&*store, &input(&token, body.clone()), SystemTime::now()).unwrap();
        assert_eq!(first["item"]["id"], "fixed-id");
        let old_key = access_key(&first);

        let mut wrong = body.clone();
        wrong["replace_token"] = json!("nope");
        assert_eq!(
            enroll(&*store, &input(&token, wrong), SystemTime::now()),
            Err(OpError::NotReplaceable)
        );
        let mut missing = body.clone();
        missing["replace_token"] = json!("");
        assert_eq!(
            enroll(&*store, &input(&token, missing), SystemTime::now()),
            Err(OpError::NotReplaceable)
        );

        let second = enroll(&*store, &input(&token, body), SystemTime::now()).unwrap();
        assert_eq!(second["item"]["id"], "fixed-id");
        assert_eq!(
            second["item"]["enrolled_at"], first["item"]["enrolled_at"],
            "kept from the old doc"
        );
        let new_key = access_key(&second);
        assert_ne!(new_key.id, old_key.id);
        assert!(
            store
                .authenticate(&old_key)
                .unwrap()
                .is_none_or(|i| !i.enabled),
            "old key rejected"
        );
        assert_eq!(
            store.agent("fixed-id").unwrap().unwrap().access_api_key_id,
            new_key.id
        );
    }

    #[test]
    fn an_inactive_agent_with_the_same_id_is_recreated() {
        let (store, token) = store_with_policy("p");
        let mut body = real_body();
        body["id"] = json!("again");
        enroll(&*store, &input(&token, body.clone()), SystemTime::now()).unwrap();
        let mut off = Map::new();
        off.insert("active".into(), json!(false));
        store.update_agent("again", &off).unwrap();
        let resp = enroll(&*store, &input(&token, body), SystemTime::now()).unwrap();
        assert_eq!(resp["item"]["id"], "again");
        assert!(store.agent("again").unwrap().unwrap().active);
    }

    #[test]
    fn store_down_is_503_never_401() {
        let (store, token) = store_with_policy("p");
        store.set_failure(Some(StoreError::Unavailable("down".into())));
        assert_eq!(
            enroll(&*store, &input(&token, real_body()), SystemTime::now()),
            Err(OpError::Unavailable)
        );
    }
}
