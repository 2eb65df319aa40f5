//! `GET /api/fleet/artifacts/{id}/{sha2}` (fleet-protocol.md §8, Elastic's `handleArtifacts.go`)
//! on a backend worker: the agent is found by its access key (404 `AgentNotFound`, inactive 401),
//! `sha2` must be 64 hex digits (500 "malformed sha256"), the agent's policy (`policy_id`, else
//! `agent_policy_id`; neither → 403 "agent has no policy ID") must list the artifact with that
//! `decoded_sha256` in an input's `artifact_manifest` (else 403 "agent not authorized for
//! artifact"), then the `.fleet-artifacts` document (404 `NotFound`), its body base64-decoded
//! and checked against `encoded_sha256`. Documents are cached 24 h ([`ArtifactCache`]); at most 8
//! store fetches run at once, one per digest (else 429 `TooManyRequests`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::authenticate;
use crate::backend::{ApiKey, OpError, Store};
use crate::model::Artifact;

/// `ttl_artifact` (§10.4).
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// Concurrent store fetches (Fleet Server's `defaultMaxParallel`).
pub const MAX_PARALLEL: usize = 8;
/// Documents kept; the oldest goes first beyond it (Endpoint uses a handful per policy).
const MAX_CACHED: usize = 256;

/// What an artifact download needs besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInput {
    /// The access key.
    pub key: ApiKey,
    /// `{id}`: the artifact identifier.
    pub identifier: String,
    /// `{sha2}`: its decoded SHA-256.
    pub sha2: String,
}

/// The artifact document cache and the fetch throttle, shared by the workers.
#[derive(Debug, Default)]
pub struct ArtifactCache {
    documents: Mutex<HashMap<(String, String), (Artifact, Instant)>>,
    fetching: Mutex<HashSet<String>>,
}

impl ArtifactCache {
    fn cached(&self, key: &(String, String), now: Instant) -> Option<Artifact> {
        let documents = self.documents.lock().ok()?;
        let (doc, at) = documents.get(key)?;
        (now.duration_since(*at) < TTL).then(|| doc.clone())
    }

    fn keep(&self, key: (String, String), doc: Artifact, now: Instant) {
        if let Ok(mut documents) = self.documents.lock() {
            documents.retain(|_, (_, at)| now.duration_since(*at) < TTL);
            if documents.len() >= MAX_CACHED {
                let oldest = documents
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    documents.remove(&oldest);
                }
            }
            documents.insert(key, (doc, now));
        }
    }

    /// The document, from the cache or the store (through the throttle).
    fn document(
        &self,
        store: &dyn Store,
        identifier: &str,
        sha2: &str,
        now: Instant,
    ) -> Result<Artifact, OpError> {
        let key = (identifier.to_owned(), sha2.to_owned());
        if let Some(doc) = self.cached(&key, now) {
            return Ok(doc);
        }
        {
            let mut fetching = self
                .fetching
                .lock()
                .map_err(|_| OpError::Refused("artifact throttle poisoned".into()))?;
            if fetching.len() >= MAX_PARALLEL || !fetching.insert(sha2.to_owned()) {
                return Err(OpError::Throttled);
            }
        }
        let fetched = store.artifact(identifier, sha2);
        if let Ok(mut fetching) = self.fetching.lock() {
            fetching.remove(sha2);
        }
        let doc = fetched.map_err(OpError::from)?.ok_or(OpError::NotFound)?;
        self.keep(key, doc.clone(), now);
        Ok(doc)
    }
}

/// Whether a policy lists the artifact `identifier` with decoded digest `sha2` in an input's
/// `artifact_manifest` (Fleet Server 9.5's authorization).
pub fn policy_lists(policy: &Value, identifier: &str, sha2: &str) -> bool {
    policy["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|input| {
            input["artifact_manifest"]["artifacts"][identifier]["decoded_sha256"].as_str()
                == Some(sha2)
        })
}

/// The encoded artifact bytes for the agent holding `input.key`.
pub fn artifact_download(
    store: &dyn Store,
    cache: &ArtifactCache,
    input: &ArtifactInput,
    now: Instant,
) -> Result<Vec<u8>, OpError> {
    authenticate(store, &input.key)?;
    let agent = store
        .agent_by_access_key(&input.key.id)
        .map_err(OpError::from)?
        .ok_or(OpError::AgentNotFound)?;
    if !agent.active {
        return Err(OpError::AgentInactive);
    }
    if !crate::files::endpoint::is_sha256_hex(&input.sha2) {
        return Err(OpError::Refused("malformed sha256".into()));
    }
    let policy_id = [&agent.policy_id, &agent.agent_policy_id]
        .into_iter()
        .find(|p| !p.is_empty())
        .ok_or_else(|| OpError::Forbidden("agent has no policy ID".into()))?;
    let listed = store
        .latest_policies()
        .map_err(OpError::from)?
        .iter()
        .any(|p| {
            p.policy_id == *policy_id && policy_lists(&p.data, &input.identifier, &input.sha2)
        });
    if !listed {
        log::warn!(
            "agent {} asked for artifact {} {} its policy {policy_id} does not list",
            agent.id,
            input.identifier,
            input.sha2
        );
        return Err(OpError::Forbidden(
            "agent not authorized for artifact".into(),
        ));
    }
    let doc = cache.document(store, &input.identifier, &input.sha2, now)?;
    if doc.identifier != input.identifier || doc.decoded_sha256 != input.sha2 {
        return Err(OpError::Refused("artifact record mismatch".into()));
    }
    crate::files::endpoint::encoded_bytes(&doc).map_err(OpError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;

    #[test]
    fn documents_are_cached_and_fetches_throttled() {
        let store = MemoryStore::new();
        let doc = crate::files::endpoint::document("endpoint-exceptionlist-linux-v1", b"{}");
        store.add_artifact(doc.clone()).unwrap();
        let cache = ArtifactCache::default();
        let now = Instant::now();
        let fetch = |cache: &ArtifactCache, at| {
            cache.document(&store, &doc.identifier, &doc.decoded_sha256, at)
        };
        // The same digest already being fetched, or eight fetches running: 429.
        cache
            .fetching
            .lock()
            .unwrap()
            .insert(doc.decoded_sha256.clone());
        assert_eq!(fetch(&cache, now), Err(OpError::Throttled));
        cache.fetching.lock().unwrap().clear();
        for i in 0..MAX_PARALLEL {
            cache.fetching.lock().unwrap().insert(format!("other-{i}"));
        }
        assert_eq!(fetch(&cache, now), Err(OpError::Throttled));
        cache.fetching.lock().unwrap().clear();
        assert_eq!(fetch(&cache, now).unwrap(), doc);
        assert!(
            cache.fetching.lock().unwrap().is_empty(),
            "released after the fetch"
        );
        // Cached: served while every fetch slot is taken, until the TTL ends.
        for i in 0..MAX_PARALLEL {
            cache.fetching.lock().unwrap().insert(format!("other-{i}"));
        }
        assert_eq!(fetch(&cache, now + Duration::from_secs(3600)).unwrap(), doc);
        assert_eq!(fetch(&cache, now + TTL), Err(OpError::Throttled));
    }

    #[test]
    fn manifests_list_artifacts_by_identifier_and_digest() {
        let policy = serde_json::json!({"inputs": [
            {"type": "logfile"},
            {"type": "endpoint", "artifact_manifest": {"artifacts": {"a": {"decoded_sha256": "s1"}}}}
        ]});
        assert!(policy_lists(&policy, "a", "s1"));
        assert!(!policy_lists(&policy, "a", "s2"));
        assert!(!policy_lists(&policy, "b", "s1"));
        assert!(!policy_lists(&serde_json::json!({}), "a", "s1"));
    }
}
