//! One forwarding layer for [`Store`], written once: a type that changes a few operations of the
//! store it wraps implements [`Layer`] (its `inner` store and the operations it changes), and the
//! blanket `impl Store for L` forwards every other operation. Adding a `Store` method means
//! writing it in the trait, in the real stores (`memory`, `local`, `es`) and as one forwarding
//! line below, never in each wrapper. Today's one layer is the API-key cache (`auth_cache`);
//! test doubles are hooks on the memory store (`hooks`), not layers.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError,
};
use crate::model::{Action, ActionResult, Agent, EnrollmentKey, OutputHealth, PolicyDoc};

/// A [`Store`] in front of another: the operations a layer changes have default methods here
/// that forward; everything else forwards through the blanket implementation.
pub trait Layer: Send + Sync {
    /// The store this layer wraps.
    fn inner(&self) -> &dyn Store;

    /// [`Store::authenticate`].
    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.inner().authenticate(key)
    }

    /// [`Store::invalidate_api_keys`].
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        self.inner().invalidate_api_keys(ids)
    }
}

impl<L: Layer> Store for L {
    fn files(&self) -> Option<&dyn super::files::FileStore> {
        self.inner().files()
    }
    fn mints_output_keys(&self) -> bool {
        self.inner().mints_output_keys()
    }
    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        Layer::authenticate(self, key)
    }
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        self.inner().create_api_key(key)
    }
    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        self.inner().api_key_roles(id)
    }
    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        self.inner().update_api_key_roles(id, roles)
    }
    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        Layer::invalidate_api_keys(self, ids)
    }
    fn enrollment_key(&self, api_key_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.inner().enrollment_key(api_key_id)
    }
    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        self.inner().policy_enrollment_key(policy_id)
    }
    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner().agent(id)
    }
    fn agent_for_request(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner().agent_for_request(id)
    }
    fn agent_for_ack(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner().agent_for_ack(id)
    }
    fn agent_by_enrollment_id(&self, enrollment_id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner().agent_by_enrollment_id(enrollment_id)
    }
    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        self.inner().create_agent(agent)
    }
    fn update_agent(&self, id: &str, fields: &Map<String, Value>) -> Result<(), StoreError> {
        self.inner().update_agent(id, fields)
    }
    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        self.inner().delete_agent(id)
    }
    fn update_agents(
        &self,
        updates: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.inner().update_agents(updates)
    }
    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError> {
        self.inner().policy_acked(id, ack)
    }
    fn pending_actions(
        &self,
        agent_id: &str,
        after_seq: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        self.inner()
            .pending_actions(agent_id, after_seq, now, limit)
    }
    fn action(&self, action_id: &str) -> Result<Option<Action>, StoreError> {
        self.inner().action(action_id)
    }
    fn action_seq_no(&self, doc_id: &str) -> Result<Option<i64>, StoreError> {
        self.inner().action_seq_no(doc_id)
    }
    fn create_action_result(&self, result: &ActionResult) -> Result<Created, StoreError> {
        self.inner().create_action_result(result)
    }
    fn write_output_health(&self, doc: &OutputHealth) -> Result<(), StoreError> {
        self.inner().write_output_health(doc)
    }
    fn secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.inner().secret(id)
    }
    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError> {
        self.inner().latest_policies()
    }
    fn agent_by_access_key(&self, api_key_id: &str) -> Result<Option<Agent>, StoreError> {
        self.inner().agent_by_access_key(api_key_id)
    }
    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<crate::model::Artifact>, StoreError> {
        self.inner().artifact(identifier, decoded_sha256)
    }
    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        self.inner().changes(since, now, wait)
    }
    fn follow(&self, sink: std::sync::Arc<dyn super::relay::FeedSink>) -> bool {
        self.inner().follow(sink)
    }
    fn unfollow(&self) {
        self.inner().unfollow()
    }
    fn catch_up(&self) {
        self.inner().catch_up()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::auth_cache::{AuthCacheSettings, CachedAuth};
    use crate::backend::conformance::{run_all, TestStore};
    use crate::backend::memory::MemoryStore;

    /// A layer that changes nothing, or the API-key cache, over a memory store it can seed.
    struct Over<L> {
        layer: L,
        seeds: Arc<MemoryStore>,
        /// What `TestStore::answers_key_metadata` says.
        key_metadata: bool,
    }

    struct Nothing(Arc<MemoryStore>);

    impl Layer for Nothing {
        fn inner(&self) -> &dyn Store {
            &*self.0
        }
    }

    impl<L: Layer> TestStore for Over<L> {
        fn store(&self) -> &dyn Store {
            &self.layer
        }
        fn seed_enrollment_key(&self, policy_id: &str) -> ApiKey {
            self.seeds.add_enrollment_key(policy_id).unwrap()
        }
        fn seed_policy(&self, doc: PolicyDoc) {
            self.seeds.add_policy(doc).unwrap()
        }
        fn seed_action(&self, action: Action) -> Action {
            self.seeds.add_action(action).unwrap()
        }
        fn seed_secret(&self, id: &str, value: &str) {
            self.seeds.add_secret(id, value).unwrap()
        }
        fn latest_output_health(&self, output: &str) -> Option<OutputHealth> {
            self.seeds.output_health(output)
        }
        fn agent_document(&self, id: &str) -> Option<Map<String, Value>> {
            self.seeds.agent_document(id)
        }
        fn answers_key_metadata(&self) -> bool {
            self.key_metadata
        }
    }

    #[test]
    fn a_layer_that_changes_nothing_is_the_store_it_wraps() {
        run_all(&|| {
            let seeds = Arc::new(MemoryStore::new());
            Box::new(Over {
                layer: Nothing(Arc::clone(&seeds)),
                seeds,
                key_metadata: true,
            }) as Box<dyn TestStore>
        });
    }

    #[test]
    fn the_api_key_cache_keeps_the_store_contract() {
        run_all(&|| {
            let seeds = Arc::new(MemoryStore::new());
            let cache = CachedAuth::new(
                Arc::clone(&seeds) as Arc<dyn Store>,
                AuthCacheSettings::default(),
            );
            Box::new(Over {
                layer: cache,
                seeds,
                key_metadata: false,
            }) as Box<dyn TestStore>
        });
    }
}
