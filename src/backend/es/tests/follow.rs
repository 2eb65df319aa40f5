//! The followers deliver the change feed themselves (`follow.rs`): every policy at once after
//! `follow` + `catch_up`, actions written afterwards by the actions follower, and nothing to a
//! sink once `unfollow` has returned.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::EsTestStore;
use crate::backend::conformance::TestStore;
use crate::backend::relay::FeedSink;
use crate::backend::Store;
use crate::model::{Action, PolicyDoc};

/// Policy revisions and action ids delivered so far.
type Seen = (Vec<(String, i64)>, Vec<String>);

/// Records what reaches it.
#[derive(Default)]
struct Recording {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl FeedSink for Recording {
    fn policies(&self, docs: &[PolicyDoc]) -> bool {
        let mut seen = self.seen.lock().unwrap();
        seen.0
            .extend(docs.iter().map(|d| (d.policy_id.clone(), d.revision_idx)));
        self.changed.notify_all();
        true
    }
    fn actions(&self, actions: Vec<Action>) -> bool {
        let mut seen = self.seen.lock().unwrap();
        seen.1.extend(actions.into_iter().map(|a| a.action_id));
        self.changed.notify_all();
        true
    }
    fn reachable(&self, _: bool) -> bool {
        true
    }
}

impl Recording {
    fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = self.seen.lock().unwrap();
        while !done(&seen) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{what} was not delivered: {:?}", *seen));
            seen = self.changed.wait_timeout(seen, left).unwrap().0;
        }
    }
}

fn policy(id: &str, revision: i64) -> PolicyDoc {
    PolicyDoc {
        timestamp: "2026-01-01T00:00:00.000Z".into(),
        policy_id: id.into(),
        revision_idx: revision,
        data: json!({"id": id, "revision": revision, "outputs": {}}),
        ..PolicyDoc::default()
    }
}

fn action(id: &str) -> Action {
    Action {
        action_id: id.into(),
        action_type: "SETTINGS".into(),
        agents: vec!["a1".into()],
        ..Action::default()
    }
}

#[test]
fn followers_deliver_policies_then_new_actions_and_nothing_after_unfollow() {
    let t = EsTestStore::new();
    t.seed_policy(policy("p1", 1));
    t.seed_action(action("before"));
    let sink = Arc::new(Recording::default());
    assert!(t.store.follow(Arc::clone(&sink) as Arc<dyn FeedSink>));
    t.store.catch_up();
    sink.wait_for("the policy present at follow", |s| {
        s.0.contains(&("p1".into(), 1))
    });

    t.seed_policy(policy("p1", 2));
    t.seed_action(action("after"));
    sink.wait_for("the new revision and the new action", |s| {
        s.0.contains(&("p1".into(), 2)) && s.1.contains(&"after".to_owned())
    });
    assert!(
        !sink.seen.lock().unwrap().1.contains(&"before".to_owned()),
        "an action older than follow is for the pending query"
    );

    t.store.unfollow();
    let before = sink.seen.lock().unwrap().clone();
    t.seed_policy(policy("p1", 3));
    t.seed_action(action("unfollowed"));
    t.store.catch_up();
    assert_eq!(*sink.seen.lock().unwrap(), before, "nothing after unfollow");
}
