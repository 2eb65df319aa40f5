//! The Fleet operations that need the store, written once against [`Store`] and run on backend
//! worker threads: enroll, checkin start, output keys, acks, status authentication. Each is a
//! sequence of blocking store calls ending in a value the event loop turns into a response;
//! errors come out as [`OpError`]s, which `api::errors` maps to the wire.

// The operations take `now` from the worker: no clock here (clippy.toml), unlike the rest of
// `backend`.
#![cfg_attr(not(test), warn(clippy::disallowed_methods))]

pub mod ack;
pub mod artifacts;
pub mod audit;
#[cfg(test)]
mod body_tests;
pub mod checkin;
pub mod delivery;
pub mod enroll;
pub mod opamp;
pub mod outputs;
pub mod replace_token;
pub mod rollbacks;
pub mod uploads;

use super::{ApiKey, ApiKeyInfo, Store, StoreError};
use crate::backend::{OpError, Why};
use crate::model::Agent;

/// Validates an API key (§1.4 "apiKey" scheme).
pub fn authenticate(store: &dyn Store, key: &ApiKey) -> Result<ApiKeyInfo, OpError> {
    match store.authenticate(key) {
        Ok(Some(info)) if info.enabled => Ok(info),
        Ok(Some(_)) => Err(OpError::Unauthorized(Why::KeyDisabled)),
        Ok(None) => Err(OpError::Unauthorized(Why::KeyUnknown)),
        Err(StoreError::TooManyRequests) => Err(OpError::AuthRateLimited),
        Err(e) => Err(e.into()),
    }
}

/// Validates an access key and binds it to the agent of the path (§1.4 "agentApiKey").
pub fn authenticate_agent(
    store: &dyn Store,
    key: &ApiKey,
    agent_id: &str,
) -> Result<Agent, OpError> {
    authenticate_agent_read(store, key, agent_id, |store, id| {
        store.agent_for_request(id)
    })
}

/// [`authenticate_agent`] for an ack: the agent is read without the members an ack never uses
/// ([`Store::agent_for_ack`]); the checks and their answers are the same.
pub fn authenticate_agent_for_ack(
    store: &dyn Store,
    key: &ApiKey,
    agent_id: &str,
) -> Result<Agent, OpError> {
    authenticate_agent_read(store, key, agent_id, |store, id| store.agent_for_ack(id))
}

fn authenticate_agent_read(
    store: &dyn Store,
    key: &ApiKey,
    agent_id: &str,
    read: impl Fn(&dyn Store, &str) -> Result<Option<Agent>, StoreError>,
) -> Result<Agent, OpError> {
    if let Err(err) = authenticate(store, key) {
        // The access key of an unenrolled agent (disabled, or unknown to Elasticsearch once
        // invalidated) answers as Go's key cache makes it answer: the agent is inactive. Key ids
        // are not secrets (they are in every agent document); nothing else is revealed.
        if matches!(err, OpError::Unauthorized(_)) {
            let agent = read(store, agent_id).map_err(OpError::from)?;
            if agent.is_some_and(|a| a.access_api_key_id == key.id && !a.active) {
                return Err(OpError::AgentInactive);
            }
        }
        return Err(err);
    }
    let agent = read(store, agent_id).map_err(OpError::from)?;
    let Some(agent) = agent.filter(|a| a.access_api_key_id == key.id) else {
        return Err(OpError::AgentIdentity);
    };
    if agent.agent.is_none() {
        return Err(OpError::AgentCorrupted);
    }
    if agent.id != agent_id {
        return Err(OpError::AgentIdentity);
    }
    if !agent.active {
        return Err(OpError::AgentInactive);
    }
    Ok(agent)
}

/// A random UUIDv4 from the OS random source.
pub fn uuid_v4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::backend::local::agent_ids::format_uuid(u128::from_be_bytes(b))
}

#[cfg(test)]
pub(crate) mod testkit {
    //! A memory store with one policy and enrollment token, and helpers to drive operations.
    use std::sync::Arc;

    use crate::backend::memory::MemoryStore;
    use crate::backend::{ApiKey, NewApiKey, Store};
    use crate::model::{Agent, AgentInfo, PolicyDoc};

    /// A remote-cluster registry over memory clusters (no remote output is used unless a test
    /// puts one in a policy).
    pub fn remotes() -> crate::backend::remote::RemoteClusters {
        crate::backend::remote::testkit::registry().1
    }

    /// A memory store with one active agent `id` (policy `p`, revision 1) and its access key.
    pub fn store_with_agent(id: &str) -> (MemoryStore, ApiKey) {
        let store = MemoryStore::new();
        let key = store
            .create_api_key(&NewApiKey {
                name: id.into(),
                role_descriptors: serde_json::json!({}),
                metadata: serde_json::json!({}),
            })
            .unwrap();
        store
            .create_agent(&Agent {
                id: id.into(),
                active: true,
                access_api_key_id: key.id.clone(),
                agent: Some(AgentInfo {
                    id: id.into(),
                    version: "9.2.1".into(),
                    kind: String::new(),
                }),
                policy_id: "p".into(),
                policy_revision_idx: 1,
                ..Agent::default()
            })
            .unwrap();
        (store, key)
    }

    pub fn store_with_policy(policy_id: &str) -> (Arc<MemoryStore>, ApiKey) {
        let store = Arc::new(MemoryStore::new());
        store
            .add_policy(PolicyDoc {
                timestamp: "2026-08-21T18:59:00.000Z".into(),
                policy_id: policy_id.into(),
                revision_idx: 1,
                data: serde_json::json!({
                    "id": policy_id, "revision": 1,
                    "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]}},
                    "output_permissions": {"default": {"_elastic_agent_checks": {"cluster": ["monitor"]}}},
                    "inputs": []
                }),
                ..PolicyDoc::default()
            })
            .unwrap();
        let token = store.add_enrollment_key(policy_id).unwrap();
        (store, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid_v4(), u);
    }
}
