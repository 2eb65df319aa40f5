//! Tests of the local store: the shared conformance suite, persistence across reopen, the
//! directory checks, group commit, and a kill -9 crash test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::LocalStore;
use crate::backend::conformance::TestStore;
use crate::backend::{ApiKey, Store};
use crate::model::{Action, PolicyDoc};

impl TestStore for LocalStore {
    fn store(&self) -> &dyn Store {
        self
    }
    fn seed_enrollment_key(&self, policy_id: &str) -> ApiKey {
        self.add_enrollment_key(policy_id, "test").unwrap()
    }
    fn seed_policy(&self, doc: PolicyDoc) {
        self.add_policy(doc).unwrap()
    }
    fn seed_action(&self, action: Action) -> Action {
        self.add_action(action).unwrap()
    }
    fn seed_secret(&self, id: &str, value: &str) {
        self.add_secret(id, value).unwrap()
    }
    fn latest_output_health(&self, output: &str) -> Option<crate::model::OutputHealth> {
        self.output_health(output)
    }
    fn agent_document(&self, id: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        LocalStore::agent_document(self, id).unwrap()
    }
}

mod crash;
mod directory;
mod files;
mod group_commit;
mod migration;
mod persistence;

use crate::tls::test_support::TempDir;

/// A store in its own temp data dir (kept alive beside it).
pub(super) struct Fresh {
    pub store: LocalStore,
    pub dir: TempDir,
}

impl Fresh {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let store = LocalStore::open(dir.path()).unwrap();
        Fresh { store, dir }
    }
}

#[test]
fn conformance() {
    // The dirs outlive the stores `run_all` drops one by one; all are removed at the end.
    let dirs = std::cell::RefCell::new(Vec::new());
    crate::backend::conformance::run_all(&|| {
        let dir = TempDir::new("local-conformance");
        let store = LocalStore::open(dir.path()).unwrap();
        dirs.borrow_mut().push(dir);
        Box::new(store) as Box<dyn TestStore>
    });
}
